"""The Discord adapter: discord.py behind the neutral `ChatPort`.

It only translates. DMs, server messages that mention the bot, slash commands and button
presses become `IncomingMessage`s; port calls become Discord REST calls; discord.py's
exceptions become the errors of `bot.errors`.

A slash command is acknowledged at once ("SoundForge is thinking…"), and the first reply
to it becomes the interaction's response. Later messages and edits go through the
interaction's token while it lives (15 minutes, and it needs no channel permission), then
through the channel, so a long album still reaches its final state. discord.py waits out
short 429s itself, guided by Discord's rate-limit headers; a longer wait comes back as
`RateLimited`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import io
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.errors import (
    ChatError,
    ChatUnavailable,
    Forbidden,
    InvalidChatToken,
    MessageGone,
    NotModified,
    RateLimited,
    TooLarge,
)
from bot.port import (
    AudioFile,
    Button,
    ChatLimits,
    ChatRef,
    Command,
    IncomingMessage,
    MessageRef,
    SentAudio,
)
from bot.render import length
from config.settings import Settings

_log = logging.getLogger(__name__)

PLATFORM = "discord"
TOKEN_VARIABLE = "DISCORD_BOT_TOKEN"

# Discord refuses longer message texts, command descriptions and button fields.
MAX_TEXT_CHARS = 2000
MAX_DESCRIPTION_CHARS = 100
MAX_BUTTON_LABEL_CHARS = 80
MAX_CUSTOM_ID_CHARS = 100
MAX_FILENAME_CHARS = 100
MAX_EMBED_TITLE_CHARS = 256
# Bytes in one of Discord's megabytes (its 10 MB limit is 10 MiB).
MEGABYTE = 1024 * 1024
# An interaction token works for 15 minutes; it is not used in its last minute.
INTERACTION_TOKEN_SECS = 15 * 60
TOKEN_MARGIN_SECS = 60
# discord.py waits out a 429 up to this long and raises beyond it (30 s is its minimum).
MAX_RATELIMIT_WAIT_SECS = 30.0
# discord.py holds READY this long after the last GUILD_CREATE (its own default).
GUILD_READY_TIMEOUT_SECS = 2.0
# How long start waits for the gateway's READY: discord.py keeps reconnecting to a gateway
# that never completes a session, so a wrong DISCORD_GATEWAY_URL could hold the start for ever.
READY_TIMEOUT_SECS = 60.0
# On stop, running handlers get this long to finish before they are cancelled.
HANDLER_GRACE_SECS = 10.0
# How many messages and interactions the adapter remembers for edits and answers.
REMEMBERED_ITEMS = 10_000
COVER_FILENAME = "cover.jpg"
# Discord error codes: an interaction token that no longer works, and a file too large.
_DEAD_TOKEN_CODES = frozenset({10015, 10062, 50027})
_TOO_LARGE_CODE = 40005
_FILENAME_UNSAFE = re.compile(r'[\x00-\x1f\\/:*?"<>|]+')

MESSAGE_CONTENT_HINT = (
    "Discord has not granted this bot the Message Content intent: it gets the text of DMs "
    "and of messages that mention it, but not of other server messages, and slash commands "
    "work either way. To grant it, enable Bot > Privileged Gateway Intents > Message Content "
    "Intent in the Discord Developer Portal and restart."
)

MessageHandler = Callable[[IncomingMessage], Awaitable[None]]
Clock = Callable[[], float]
_V = TypeVar("_V")


def aim_discord_py(api_base_url: str, gateway_url: str) -> None:
    """Point discord.py at `api_base_url` (REST) and `gateway_url` (websocket).

    This is the one place the two settings are applied. discord.py reads both from class
    attributes, so they hold for the whole process: `Route.BASE` prefixes every REST call,
    interaction callbacks and webhook edits included, and `DiscordWebSocket.DEFAULT_GATEWAY`
    is where a session starts (a resumed one goes to READY's `resume_gateway_url`).
    """
    Route.BASE = api_base_url.rstrip("/")
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


class _TokenState(enum.Enum):
    """Whether an interaction's token still carries our answers."""

    # Acknowledged: Discord shows "thinking" until the first answer replaces it.
    PENDING = "pending"
    # Answered: edits and follow-up messages may use the token.
    ANSWERED = "answered"
    # The acknowledgement failed, or Discord refused the token: use the channel.
    CLOSED = "closed"


@dataclass
class _Exchange:
    """One interaction, with the time its token stops being used (on the adapter's clock)."""

    interaction: discord.Interaction[Any]
    usable_until: float
    state: _TokenState
    # Held while the first answer replaces "thinking", so a second one becomes a follow-up.
    answering: asyncio.Lock = field(default_factory=asyncio.Lock)

    def usable(self, now: float) -> bool:
        return self.state is not _TokenState.CLOSED and now < self.usable_until


@dataclass
class _Outgoing:
    """One message to post: its text, buttons, embed, and a maker of fresh file handles."""

    content: str | None = None
    view: discord.ui.View | None = None
    embed: discord.Embed | None = None
    # discord.py closes the files it sent, so each attempt opens them again.
    files: Callable[[], list[discord.File]] = field(default=list)

    def fields(self, files_as: str) -> dict[str, Any]:
        """Keyword arguments for a discord.py send, files under `files_as`."""
        found: dict[str, Any] = {}
        if self.content is not None:
            found["content"] = self.content
        if self.view is not None:
            found["view"] = self.view
        if self.embed is not None:
            found["embed"] = self.embed
        files = self.files()
        if files:
            found[files_as] = files
        return found


class _Client(discord.Client):
    """discord.py's client, knowing the adapter that owns it, with the slash command tree."""

    def __init__(
        self, adapter: DiscordAdapter, intents: discord.Intents, guild_ready_timeout_secs: float
    ) -> None:
        super().__init__(
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),
            max_ratelimit_timeout=MAX_RATELIMIT_WAIT_SECS,
            guild_ready_timeout=guild_ready_timeout_secs,
            chunk_guilds_at_startup=False,
            member_cache_flags=discord.MemberCacheFlags.none(),
            max_messages=None,
        )
        self.adapter = adapter
        self.tree = app_commands.CommandTree(
            self,
            allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=True),
            allowed_installs=app_commands.AppInstallationType(guild=True),
        )

    async def on_message(self, message: discord.Message) -> None:
        await self.adapter._on_message(message)

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        # Slash commands reach their callbacks through the tree; buttons come here.
        if interaction.type is discord.InteractionType.component:
            await self.adapter._on_component(interaction)


async def _run_command(interaction: discord.Interaction[Any]) -> None:
    """The callback of every slash command that takes no argument."""
    await _adapter_of(interaction)._on_command(interaction, "")


async def _run_command_with_argument(interaction: discord.Interaction[Any], argument: str) -> None:
    """The callback of every slash command that takes one text argument."""
    await _adapter_of(interaction)._on_command(interaction, argument)


def _adapter_of(interaction: discord.Interaction[Any]) -> DiscordAdapter:
    client = interaction.client
    if not isinstance(client, _Client):
        raise TypeError(f"interaction {interaction.id} reached a client SoundForge did not make")
    return client.adapter


class DiscordAdapter:
    """The `ChatPort` for Discord; `start` logs in and connects, `stop` disconnects."""

    platform = PLATFORM

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = time.monotonic,
        guild_ready_timeout_secs: float = GUILD_READY_TIMEOUT_SECS,
        ready_timeout_secs: float = READY_TIMEOUT_SECS,
    ) -> None:
        if settings.discord_bot_token is None:
            raise ValueError(f"{TOKEN_VARIABLE} is not set")
        self._settings = settings
        self._clock = clock
        self._guild_ready_timeout_secs = guild_ready_timeout_secs
        self._ready_timeout_secs = ready_timeout_secs
        # discord.py sends the very object it was given at IDENTIFY; Message Content is
        # switched on in it before connecting, once the application says it is granted.
        self._intents = discord.Intents.none()
        self._intents.guilds = True
        self._intents.dm_messages = True
        self._intents.guild_messages = True
        self._client: _Client | None = None
        self._handler: MessageHandler | None = None
        self._gateway: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Interactions by interaction id (slash commands) or by the pressed message's id.
        self._exchanges: OrderedDict[str, _Exchange] = OrderedDict()
        # Messages posted through an interaction token: (exchange, is its original response).
        self._sent_through: OrderedDict[str, tuple[_Exchange, bool]] = OrderedDict()
        # What each message shows now, so an edit that changes nothing is not sent.
        self._shown: OrderedDict[str, tuple[str, tuple[Button, ...]]] = OrderedDict()
        # The upload limit the latest interaction in each channel gave.
        self._upload_limits: OrderedDict[str, int] = OrderedDict()
        self.bot_id = ""
        self.message_content_granted: bool | None = None

    # -- life cycle --------------------------------------------------------------------------

    async def start(self, handler: MessageHandler, commands: Sequence[Command] = ()) -> None:
        """Log in, sync the slash commands, connect the gateway and wait for READY.

        Raises `InvalidChatToken` when Discord rejects the token and `ChatUnavailable`
        when it cannot be reached, or its gateway sends no READY within the ready timeout.
        """
        token = self._settings.discord_bot_token
        assert token is not None
        self._handler = handler
        aim_discord_py(self._settings.discord_api_base_url, self._settings.discord_gateway_url)
        # SoundForge never joins voice; discord.py's warnings about voice libraries mislead.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        client = _Client(self, self._intents, self._guild_ready_timeout_secs)
        for command in commands:
            client.tree.add_command(_slash_command(command))
        self._client = client

        # Log in: discord.py checks the token with users/@me, then reads the application.
        try:
            await client.login(token.get_secret_value())
        except discord.LoginFailure as exc:
            await client.close()
            raise InvalidChatToken(TOKEN_VARIABLE, "Discord") from exc
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            await client.close()
            raise ChatUnavailable(f"Discord could not be reached to log in: {exc}") from exc
        assert client.user is not None
        self.bot_id = str(client.user.id)
        _log.info("Discord bot %s (%s) logged in", client.user.name, self.bot_id)

        # Ask for Message Content only when the application has it, or Discord closes the
        # gateway with 4014; without it DMs, mentions and slash commands still work.
        flags = client.application_flags
        granted = flags.gateway_message_content or flags.gateway_message_content_limited
        self.message_content_granted = granted
        self._intents.message_content = granted
        if not granted:
            _log.warning(MESSAGE_CONTENT_HINT)

        # Sync the slash commands, so Discord offers exactly these.
        await self._sync_commands(client)

        # Connect, and wait for READY and the servers' GUILD_CREATE.
        gateway = asyncio.create_task(self._connect(client), name="discord:gateway")
        self._gateway = gateway
        ready = asyncio.create_task(client.wait_until_ready(), name="discord:ready")
        await asyncio.wait(
            {gateway, ready}, timeout=self._ready_timeout_secs, return_when=asyncio.FIRST_COMPLETED
        )
        if not ready.done():
            ready.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ready
            if not gateway.done():
                # Still retrying (connection refused, no websocket there, no answer).
                gateway.cancel()
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await gateway
                await client.close()
                raise ChatUnavailable(
                    f"the Discord gateway at {self._settings.discord_gateway_url} sent no READY "
                    f"within {self._ready_timeout_secs:g} s; check DISCORD_GATEWAY_URL"
                )
            await client.close()
            failure = gateway.exception() if not gateway.cancelled() else None
            raise _start_failure(failure, self._settings.discord_gateway_url)
        _log.info("Discord gateway ready (%d servers)", len(client.guilds))

    async def stop(self) -> None:
        """Let running handlers finish (briefly), then disconnect and close the HTTP client."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=HANDLER_GRACE_SECS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
        if self._gateway is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._gateway
            self._gateway = None
        _log.info("Discord adapter stopped")

    async def _sync_commands(self, client: _Client) -> None:
        try:
            synced = await client.tree.sync()
        except (discord.HTTPException, aiohttp.ClientError, OSError):
            _log.error(
                "Syncing the Discord slash commands failed; they stay as they were until the "
                "next start (was the bot invited with the applications.commands scope?)",
                exc_info=True,
            )
            return
        _log.info("Discord slash commands synced: %s", " ".join(f"/{c.name}" for c in synced))

    async def _connect(self, client: _Client) -> None:
        """Run the gateway connection; discord.py reconnects and resumes by itself."""
        try:
            await client.connect(reconnect=True)
        except discord.PrivilegedIntentsRequired:
            _log.error(
                "Discord refused the gateway intents %s; enable Message Content Intent in the "
                "Discord Developer Portal again, or restart so the bot stops asking for it",
                self._intents.value,
            )
            raise
        except Exception:
            _log.error("The Discord gateway connection ended", exc_info=True)
            raise

    # -- ChatPort --------------------------------------------------------------------------

    def limits(self, chat: ChatRef) -> ChatLimits:
        limit = self._upload_limits.get(chat.chat_id) or self._guild_upload_limit(chat)
        return ChatLimits(
            upload_limit_bytes=limit or self._settings.discord_upload_limit_mb * MEGABYTE,
            edit_interval_secs=self._settings.progress_edit_interval_secs,
            extra={"max_text_chars": MAX_TEXT_CHARS},
        )

    async def send_text(
        self,
        chat: ChatRef,
        text: str,
        *,
        reply_to: str | None = None,
        buttons: list[Button] | None = None,
    ) -> MessageRef:
        outgoing = _Outgoing(content=_fit(text), view=_view(buttons))
        message = await self._post(chat, reply_to, outgoing)
        _remember(self._shown, str(message.id), (text, tuple(buttons or ())))
        return MessageRef(chat=chat, message_id=str(message.id))

    async def edit_text(
        self, message: MessageRef, text: str, *, buttons: list[Button] | None = None
    ) -> None:
        shown = (text, tuple(buttons or ()))
        if self._shown.get(message.message_id) == shown:
            raise NotModified(f"message {message.message_id} already shows this")
        fields: dict[str, Any] = {"content": _fit(text), "view": _view(buttons)}

        # Through the interaction's token while it lives: that needs no channel permission.
        through = self._sent_through.get(message.message_id)
        if through is not None and through[0].usable(self._clock()):
            exchange, original = through
            try:
                with _raw_discord_errors():
                    if original:
                        await exchange.interaction.edit_original_response(**fields)
                    else:
                        followup = exchange.interaction.followup
                        await followup.edit_message(int(message.message_id), **fields)
            except discord.HTTPException as exc:
                if not _token_dead(exc):
                    raise _translate(exc, editing=True) from exc
                self._close_exchange(exchange, exc)
            else:
                _remember(self._shown, message.message_id, shown)
                return

        # Otherwise as the bot's own message in the channel.
        channel = self._channel(message.chat)
        with _translating(editing=True):
            await channel.get_partial_message(int(message.message_id)).edit(**fields)
        _remember(self._shown, message.message_id, shown)

    async def send_audio(
        self, chat: ChatRef, audio: AudioFile, *, reply_to: str | None = None
    ) -> SentAudio:
        size = audio.path.stat().st_size + len(audio.thumbnail or b"")
        limit = self.limits(chat).upload_limit_bytes
        if size > limit:
            raise TooLarge(f"{size} bytes is over channel {chat.chat_id}'s {limit}-byte limit")
        filename = _filename(audio)

        def files() -> list[discord.File]:
            made = [discord.File(audio.path, filename=filename)]
            if audio.thumbnail:
                made.append(discord.File(io.BytesIO(audio.thumbnail), filename=COVER_FILENAME))
            return made

        outgoing = _Outgoing(embed=_audio_embed(audio), files=files)
        message = await self._post(chat, reply_to, outgoing)
        return SentAudio(message=MessageRef(chat=chat, message_id=str(message.id)))

    # -- posting -------------------------------------------------------------------------------

    async def _post(
        self, chat: ChatRef, reply_to: str | None, outgoing: _Outgoing
    ) -> discord.Message | discord.WebhookMessage | discord.InteractionMessage:
        """Post `outgoing`: as the interaction's answer or follow-up while its token lives."""
        exchange = self._exchanges.get(reply_to) if reply_to is not None else None
        if exchange is not None and exchange.usable(self._clock()):
            try:
                with _raw_discord_errors():
                    return await self._post_through(exchange, outgoing)
            except discord.HTTPException as exc:
                if not _token_dead(exc):
                    raise _translate(exc) from exc
                self._close_exchange(exchange, exc)

        # A slash command has no message to reply to; anything else is quoted.
        fields = outgoing.fields("files")
        if reply_to is not None and not _is_command(exchange, reply_to):
            fields["reference"] = discord.MessageReference(
                message_id=int(reply_to), channel_id=int(chat.chat_id), fail_if_not_exists=False
            )
        channel = self._channel(chat)
        with _translating():
            return await channel.send(**fields)

    async def _post_through(
        self, exchange: _Exchange, outgoing: _Outgoing
    ) -> discord.WebhookMessage | discord.InteractionMessage:
        interaction = exchange.interaction
        async with exchange.answering:
            if exchange.state is _TokenState.PENDING:
                answer = await interaction.edit_original_response(**outgoing.fields("attachments"))
                exchange.state = _TokenState.ANSWERED
                _remember(self._sent_through, str(answer.id), (exchange, True))
                _log.debug("Discord interaction %s answered", interaction.id)
                return answer
        followup = await interaction.followup.send(**outgoing.fields("files"), wait=True)
        _remember(self._sent_through, str(followup.id), (exchange, False))
        return followup

    def _close_exchange(self, exchange: _Exchange, exc: discord.HTTPException) -> None:
        exchange.state = _TokenState.CLOSED
        _log.info(
            "Discord refused interaction %s's token (%s, code %s); using its channel",
            exchange.interaction.id,
            exc.status,
            exc.code,
        )

    def _channel(self, chat: ChatRef) -> discord.PartialMessageable:
        assert self._client is not None, "the Discord adapter was not started"
        return self._client.get_partial_messageable(int(chat.chat_id))

    def _guild_upload_limit(self, chat: ChatRef) -> int | None:
        if self._client is None or chat.is_private:
            return None
        channel = self._client.get_channel(int(chat.chat_id))
        guild = getattr(channel, "guild", None)
        return guild.filesize_limit if isinstance(guild, discord.Guild) else None

    # -- incoming ------------------------------------------------------------------------------

    async def _on_message(self, message: discord.Message) -> None:
        """A DM, or a server message that mentions the bot, goes to the handler."""
        client = self._client
        if client is None or client.user is None or message.author.bot:
            return
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        in_dm = message.guild is None
        me = client.user.id
        if not in_dm and all(user.id != me for user in message.mentions):
            return
        incoming = IncomingMessage(
            chat=ChatRef(PLATFORM, str(message.channel.id), is_private=in_dm),
            user_id=str(message.author.id),
            user_name=_user_name(message.author),
            text=_without_mention(message.content, me),
            message_id=str(message.id),
            hidden_urls=tuple(embed.url for embed in message.embeds if embed.url),
            addressed=True,
        )
        self._spawn(incoming, None)

    async def _on_command(self, interaction: discord.Interaction[Any], argument: str) -> None:
        """Acknowledge a slash command at once (Discord allows 3 s), then hand it over."""
        exchange = self._exchange(interaction, _TokenState.PENDING)
        try:
            with _raw_discord_errors():
                await interaction.response.defer(thinking=True)
        except discord.HTTPException as exc:
            exchange.state = _TokenState.CLOSED
            _log.warning(
                "Discord interaction %s could not be acknowledged (%s, code %s); its answers "
                "go to the channel",
                interaction.id,
                exc.status,
                exc.code,
            )
        else:
            _log.debug("Discord interaction %s deferred", interaction.id)
        _remember(self._exchanges, str(interaction.id), exchange)
        command = interaction.command.name if interaction.command is not None else ""
        incoming = IncomingMessage(
            chat=_chat_of(interaction),
            user_id=str(interaction.user.id),
            user_name=_user_name(interaction.user),
            text=argument.strip(),
            message_id=str(interaction.id),
            command=command,
            addressed=True,
        )
        self._spawn(incoming, exchange)

    async def _on_component(self, interaction: discord.Interaction[Any]) -> None:
        """A pressed button or a chosen menu item: acknowledge, then hand its data over."""
        data: dict[str, Any] = dict(interaction.data or {})
        values = data.get("values") or []
        choice = str(values[0]) if values else str(data.get("custom_id") or "")
        if interaction.message is None or not choice:
            return
        exchange = self._exchange(interaction, _TokenState.ANSWERED)
        try:
            with _raw_discord_errors():
                await interaction.response.defer()
        except discord.HTTPException as exc:
            self._close_exchange(exchange, exc)

        # The pressed message is edited, and answered, through this fresh token.
        message_id = str(interaction.message.id)
        _remember(self._exchanges, message_id, exchange)
        _remember(self._sent_through, message_id, (exchange, True))
        incoming = IncomingMessage(
            chat=_chat_of(interaction),
            user_id=str(interaction.user.id),
            user_name=_user_name(interaction.user),
            text="",
            message_id=message_id,
            button=choice,
            addressed=True,
        )
        self._spawn(incoming, None)

    def _exchange(self, interaction: discord.Interaction[Any], state: _TokenState) -> _Exchange:
        if interaction.channel_id is not None:
            _remember(self._upload_limits, str(interaction.channel_id), interaction.filesize_limit)
        usable_until = self._clock() + INTERACTION_TOKEN_SECS - TOKEN_MARGIN_SECS
        return _Exchange(interaction, usable_until, state)

    def _spawn(self, incoming: IncomingMessage, exchange: _Exchange | None) -> None:
        task = asyncio.create_task(
            self._handle(incoming, exchange), name=f"discord:message:{incoming.message_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, incoming: IncomingMessage, exchange: _Exchange | None) -> None:
        assert self._handler is not None
        try:
            await self._handler(incoming)
        except Exception:
            _log.error(
                "Handling Discord message %s in channel %s failed",
                incoming.message_id,
                incoming.chat.chat_id,
                exc_info=True,
            )

        # A command nothing answered would show "thinking" for 15 minutes: clear it.
        if exchange is not None and exchange.state is _TokenState.PENDING:
            exchange.state = _TokenState.CLOSED
            with contextlib.suppress(discord.HTTPException, aiohttp.ClientError, OSError):
                await exchange.interaction.delete_original_response()
            _log.debug("Discord interaction %s got no answer; cleared", exchange.interaction.id)


def _slash_command(command: Command) -> app_commands.Command[Any, Any, None]:
    """The slash command for one of the conversation's commands."""
    description = _clip(command.description, MAX_DESCRIPTION_CHARS)
    if command.argument is None:
        return app_commands.Command(
            name=command.name, description=description, callback=_run_command
        )
    slash: app_commands.Command[Any, Any, None] = app_commands.Command(
        name=command.name, description=description, callback=_run_command_with_argument
    )
    argument_help = _clip(command.argument_help or command.argument, MAX_DESCRIPTION_CHARS)
    app_commands.rename(argument=command.argument)(slash)
    app_commands.describe(argument=argument_help)(slash)
    return slash


def _start_failure(exc: BaseException | None, gateway_url: str) -> ChatError:
    """The error `start` raises when the gateway connection ended before READY."""
    if isinstance(exc, discord.ConnectionClosed) and exc.code == 4004:
        return InvalidChatToken(TOKEN_VARIABLE, "Discord")
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return ChatError(f"Discord refused the gateway intents: {exc}")
    # discord.py 2.x fails on its own retry after a first connection that never opened
    # (AttributeError on its missing websocket); the error it was handling says why.
    cause = exc.__context__ if isinstance(exc, AttributeError) and exc.__context__ else exc
    return ChatUnavailable(
        f"the Discord gateway at {gateway_url} ended before READY ({cause!r}); "
        "check DISCORD_GATEWAY_URL"
    )


@contextlib.contextmanager
def _raw_discord_errors() -> Iterator[None]:
    """Let discord.py's HTTP errors through for the caller to read; translate the rest."""
    try:
        yield
    except discord.HTTPException:
        raise
    except (TimeoutError, discord.RateLimited, aiohttp.ClientError, OSError) as exc:
        raise _translate(exc) from exc


@contextlib.contextmanager
def _translating(*, editing: bool = False) -> Iterator[None]:
    """Turn discord.py's exceptions raised inside into `bot.errors` ones."""
    try:
        yield
    except (discord.HTTPException, discord.RateLimited) as exc:
        raise _translate(exc, editing=editing) from exc
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise _translate(exc) from exc


def _translate(exc: BaseException, *, editing: bool = False) -> ChatError:
    """Our error for one of discord.py's (or the network's)."""
    if isinstance(exc, discord.RateLimited):
        return RateLimited(exc.retry_after)
    if not isinstance(exc, discord.HTTPException):
        return ChatUnavailable(f"Discord could not be reached: {exc!r}")
    detail = f"Discord answered {exc.status} (code {exc.code}): {exc.text}"
    if exc.status == 429:
        return RateLimited(_retry_after_secs(exc))
    if exc.status == 413 or exc.code == _TOO_LARGE_CODE:
        return TooLarge(detail)
    if isinstance(exc, discord.Forbidden):
        return Forbidden(detail)
    if isinstance(exc, discord.NotFound):
        # An edit's message is gone; a post's channel is gone, which no retry mends.
        return MessageGone(detail) if editing else Forbidden(detail)
    if exc.status >= 500:
        return ChatUnavailable(detail)
    return ChatError(detail)


def _retry_after_secs(exc: discord.HTTPException) -> float:
    """The wait a 429 asked for, when discord.py gave up retrying it."""
    headers = getattr(exc.response, "headers", None) or {}
    with contextlib.suppress(TypeError, ValueError):
        return float(headers.get("Retry-After", 1.0))
    return 1.0


def _token_dead(exc: discord.HTTPException) -> bool:
    """True when Discord refused a call because the interaction's token no longer works."""
    return exc.status == 401 or exc.code in _DEAD_TOKEN_CODES


def _is_command(exchange: _Exchange | None, reply_to: str) -> bool:
    """True when `reply_to` names a slash command, which has no message to quote."""
    if exchange is not None:
        return str(exchange.interaction.id) == reply_to
    return False


def _chat_of(interaction: discord.Interaction[Any]) -> ChatRef:
    return ChatRef(PLATFORM, str(interaction.channel_id), is_private=interaction.guild_id is None)


def _remember(store: OrderedDict[str, _V], key: str, value: _V) -> None:
    """Keep `value` under `key`, forgetting the oldest entries beyond `REMEMBERED_ITEMS`."""
    store[key] = value
    store.move_to_end(key)
    while len(store) > REMEMBERED_ITEMS:
        store.popitem(last=False)


def _fit(text: str) -> str:
    """`text` as Discord shows it literally (Markdown escaped), within its length limit."""
    escaped = discord.utils.escape_markdown(text, ignore_links=True)
    if len(escaped) <= MAX_TEXT_CHARS:
        return escaped
    cut = escaped[: MAX_TEXT_CHARS - 1]
    # Do not leave half an escape at the end.
    return cut.removesuffix("\\") + "…"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _view(buttons: list[Button] | None) -> discord.ui.View | None:
    """Buttons as discord.py's view; stopped, so presses reach `on_interaction` only."""
    if not buttons:
        return None
    view = discord.ui.View(timeout=None)
    for button in buttons:
        view.add_item(
            discord.ui.Button(
                label=_clip(button.label, MAX_BUTTON_LABEL_CHARS),
                custom_id=button.data[:MAX_CUSTOM_ID_CHARS],
                style=discord.ButtonStyle.secondary,
            )
        )
    view.stop()
    return view


def _audio_embed(audio: AudioFile) -> discord.Embed | None:
    """The cover beside the file, as an embed thumbnail; none without a cover."""
    if not audio.thumbnail:
        return None
    escape = discord.utils.escape_markdown
    embed = discord.Embed(
        title=_clip(escape(audio.title), MAX_EMBED_TITLE_CHARS),
        description=f"{escape(audio.performer)} · {length(audio.duration_secs * 1000)}",
    )
    embed.set_thumbnail(url=f"attachment://{COVER_FILENAME}")
    return embed


def _filename(audio: AudioFile) -> str:
    """`Performer - Title.ext`, safe for a download folder on any system."""
    stem = _FILENAME_UNSAFE.sub("_", f"{audio.performer} - {audio.title}").strip(" ._")
    suffix = audio.path.suffix
    return (stem or audio.path.stem)[: MAX_FILENAME_CHARS - len(suffix)] + suffix


def _without_mention(text: str, bot_id: int) -> str:
    return re.sub(rf"<@!?{bot_id}>", " ", text).strip()


def _user_name(user: discord.abc.User) -> str:
    return user.display_name or user.name or str(user.id)
