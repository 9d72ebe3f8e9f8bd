"""The Telegram adapter: python-telegram-bot behind the neutral `ChatPort`.

It only translates. Updates from long polling become `IncomingMessage`s (commands with or
without `@botname`, a mention of the bot in a group, `text_link` targets and captions,
button presses); port calls become Bot API calls, paced to stay inside Telegram's limits;
`telegram.error` exceptions become the errors of `bot.errors`.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import warnings
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram import error as tg_error
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from bot.errors import (
    ChatError,
    ChatUnavailable,
    FileIdRejected,
    Forbidden,
    InvalidChatToken,
    MessageGone,
    NotModified,
    RateLimited,
    TooLarge,
)
from bot.pacing import Pacer
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
from config.settings import Settings

_log = logging.getLogger(__name__)

PLATFORM = "telegram"
TOKEN_VARIABLE = "TELEGRAM_BOT_TOKEN"

# Long polling: how long one getUpdates waits on Telegram's side.
POLL_TIMEOUT_SECS = 10
# Ordinary calls; an upload may take its time writing.
CONNECT_TIMEOUT_SECS = 10.0
READ_TIMEOUT_SECS = 30.0
WRITE_TIMEOUT_SECS = 30.0
MEDIA_WRITE_TIMEOUT_SECS = 600.0
POOL_TIMEOUT_SECS = 10.0
# Telegram refuses longer message texts.
MAX_TEXT_CHARS = 4096
# Bytes in one of Telegram's megabytes.
MEGABYTE = 1024 * 1024
# Edits in a group share its 20 messages a minute, so they are spaced further apart.
GROUP_EDIT_INTERVAL_SECS = 6.0
# Extensions Telegram plays as music; anything else goes up as a document.
_AUDIO_SUFFIXES = frozenset({".mp3", ".m4a", ".ogg", ".opus"})
BUTTONS_PER_ROW = 2

MessageHandler = Callable[[IncomingMessage], Awaitable[None]]


class TelegramAdapter:
    """The `ChatPort` for Telegram; `start` begins long polling, `stop` ends it."""

    platform = PLATFORM

    def __init__(self, settings: Settings, *, pacer: Pacer | None = None) -> None:
        if settings.telegram_bot_token is None:
            raise ValueError(f"{TOKEN_VARIABLE} is not set")
        self._settings = settings
        self._pacer = pacer or Pacer()
        # PTB 22 warns on every RetryAfter it builds, inside its own request code. The
        # filter ends with PTB 23, where `retry_after` is a timedelta without opting in.
        warnings.filterwarnings(
            "ignore", message=r".*`retry_after`", category=PTBDeprecationWarning
        )
        self._handler: MessageHandler | None = None
        self._app: Application[Any, Any, Any, Any, Any, Any] = (
            ApplicationBuilder()
            .token(settings.telegram_bot_token.get_secret_value())
            .base_url(settings.telegram_api_base_url)
            .base_file_url(settings.telegram_file_base_url)
            .request(
                HTTPXRequest(
                    connect_timeout=CONNECT_TIMEOUT_SECS,
                    read_timeout=READ_TIMEOUT_SECS,
                    write_timeout=WRITE_TIMEOUT_SECS,
                    media_write_timeout=MEDIA_WRITE_TIMEOUT_SECS,
                    pool_timeout=POOL_TIMEOUT_SECS,
                )
            )
            .get_updates_request(
                HTTPXRequest(
                    connection_pool_size=1,
                    connect_timeout=CONNECT_TIMEOUT_SECS,
                    read_timeout=READ_TIMEOUT_SECS,
                    pool_timeout=POOL_TIMEOUT_SECS,
                )
            )
            .concurrent_updates(True)
            .job_queue(None)
            .build()
        )
        self._app.add_handler(TypeHandler(Update, self._on_update))
        self._app.add_error_handler(self._on_error)
        self.bot_username = ""
        self.bot_id = ""

    async def start(self, handler: MessageHandler, commands: Sequence[Command] = ()) -> None:
        """Check the token, register the command menu and begin long polling.

        Raises `InvalidChatToken` when Telegram rejects the token.
        """
        self._handler = handler

        # Check the token: getMe answers 401 for a token Telegram does not know.
        try:
            await self._app.initialize()
        except tg_error.InvalidToken as exc:
            raise InvalidChatToken(TOKEN_VARIABLE, "Telegram") from exc
        except tg_error.TelegramError as exc:
            raise _translate(exc) from exc
        self.bot_username = self._app.bot.username or ""
        self.bot_id = str(self._app.bot.id)
        _log.info("Telegram bot @%s connected", self.bot_username)

        # Register the command menu.
        if commands:
            with _translating():
                await self._app.bot.set_my_commands(
                    [BotCommand(command.name, command.description) for command in commands]
                )
            _log.info("Telegram command menu registered (%d commands)", len(commands))

        # Poll.
        await self._app.start()
        assert self._app.updater is not None
        await self._app.updater.start_polling(
            timeout=dtm.timedelta(seconds=POLL_TIMEOUT_SECS),
            allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY],
            error_callback=self._on_polling_error,
        )
        _log.info("Telegram long polling started")

    async def stop(self) -> None:
        """Stop polling, let running handlers finish, and close the HTTP clients."""
        if self._app.updater is not None and self._app.updater.running:
            await self._app.updater.stop()
        if self._app.running:
            await self._app.stop()
        await self._app.shutdown()
        _log.info("Telegram adapter stopped")

    # -- ChatPort --------------------------------------------------------------------------

    def limits(self, chat: ChatRef) -> ChatLimits:
        interval = self._settings.progress_edit_interval_secs
        if not chat.is_private:
            interval = max(interval, GROUP_EDIT_INTERVAL_SECS)
        return ChatLimits(
            upload_limit_bytes=self._settings.telegram_upload_limit_mb * MEGABYTE,
            edit_interval_secs=interval,
        )

    async def send_text(
        self,
        chat: ChatRef,
        text: str,
        *,
        reply_to: str | None = None,
        buttons: list[Button] | None = None,
    ) -> MessageRef:
        await self._wait_turn(chat)
        with self._translating_for(chat):
            message = await self._app.bot.send_message(
                chat_id=int(chat.chat_id),
                text=_fit(text),
                reply_parameters=_reply(reply_to),
                reply_markup=_keyboard(buttons),
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        return MessageRef(chat=chat, message_id=str(message.message_id))

    async def edit_text(
        self, message: MessageRef, text: str, *, buttons: list[Button] | None = None
    ) -> None:
        await self._wait_turn(message.chat)
        with self._translating_for(message.chat):
            await self._app.bot.edit_message_text(
                chat_id=int(message.chat.chat_id),
                message_id=int(message.message_id),
                text=_fit(text),
                reply_markup=_keyboard(buttons),
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )

    async def send_audio(
        self, chat: ChatRef, audio: AudioFile, *, reply_to: str | None = None
    ) -> SentAudio:
        as_audio = audio.path.suffix.lower() in _AUDIO_SUFFIXES
        if audio.remembered_id:
            media: str | InputFile = audio.remembered_id
        else:
            data = await asyncio.to_thread(audio.path.read_bytes)
            media = InputFile(data, filename=audio.path.name)
        await self._wait_turn(chat)
        try:
            with self._translating_for(chat):
                sent = await self._post_file(chat, audio, media, as_audio, reply_to)
        except ChatError as exc:
            if audio.remembered_id and _names_file_id(exc):
                raise FileIdRejected(audio.remembered_id) from exc
            raise
        attachment = sent.audio if as_audio else sent.document
        return SentAudio(
            message=MessageRef(chat=chat, message_id=str(sent.message_id)),
            file_id=attachment.file_id if attachment is not None else None,
        )

    # -- inside ----------------------------------------------------------------------------

    async def _post_file(
        self,
        chat: ChatRef,
        audio: AudioFile,
        media: str | InputFile,
        as_audio: bool,
        reply_to: str | None,
    ) -> Message:
        bot = self._app.bot
        thumbnail = audio.thumbnail if not audio.remembered_id else None
        if as_audio:
            return await bot.send_audio(
                chat_id=int(chat.chat_id),
                audio=media,
                title=audio.title,
                performer=audio.performer,
                duration=dtm.timedelta(seconds=audio.duration_secs),
                thumbnail=thumbnail,
                reply_parameters=_reply(reply_to),
            )
        return await bot.send_document(
            chat_id=int(chat.chat_id),
            document=media,
            caption=_fit(f"{audio.performer} - {audio.title}"),
            thumbnail=thumbnail,
            reply_parameters=_reply(reply_to),
        )

    async def _wait_turn(self, chat: ChatRef) -> None:
        await self._pacer.wait_turn(chat.chat_id, is_group=not chat.is_private)

    @contextmanager
    def _translating_for(self, chat: ChatRef) -> Iterator[None]:
        """Translate Telegram's errors; a flood wait also holds this chat's later calls."""
        try:
            with _translating():
                yield
        except RateLimited as exc:
            self._pacer.block(chat.chat_id, exc.retry_after_secs)
            _log.warning(
                "Telegram asked chat %s to wait %.0f s", chat.chat_id, exc.retry_after_secs
            )
            raise

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.callback_query is not None:
            # Answer at once, so the button stops spinning whatever the handler does.
            with _translating():
                await update.callback_query.answer()
        incoming = to_incoming(update, self.bot_username)
        if incoming is None or self._handler is None:
            return
        await self._handler(incoming)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        _log.error("Handling a Telegram update failed", exc_info=context.error)

    def _on_polling_error(self, exc: tg_error.TelegramError) -> None:
        _log.warning("Telegram polling failed, retrying: %s", exc)


def to_incoming(update: Update, bot_username: str) -> IncomingMessage | None:
    """The neutral message for an update, or None when it is not for this bot."""
    query = update.callback_query
    if query is not None:
        if query.message is None or query.data is None:
            return None
        chat = query.message.chat
        return IncomingMessage(
            chat=ChatRef(PLATFORM, str(chat.id), chat.type == "private"),
            user_id=str(query.from_user.id),
            user_name=_user_name(query.from_user),
            text="",
            message_id=str(query.message.message_id),
            button=query.data,
            addressed=True,
        )

    message = update.message
    if message is None or message.from_user is None:
        return None
    text = message.text or message.caption or ""
    entities = message.entities or message.caption_entities
    is_private = message.chat.type == "private"
    command, rest, addressed = None, text, is_private
    mention = f"@{bot_username}".lower()

    # Telegram counts entity offsets in UTF-16 code units: PTB slices them, never `text[...]`.
    parse = message.parse_entity if message.text else message.parse_caption_entity

    # A leading /command, maybe /command@botname; one for another bot is not ours.
    first = entities[0] if entities else None
    if first is not None and first.type == MessageEntity.BOT_COMMAND and first.offset == 0:
        command_text = parse(first)
        name, _, target = command_text[1:].partition("@")
        if target and target.lower() != bot_username.lower():
            return None
        command = name.lower()
        rest = text[len(command_text) :].strip()
        addressed = True

    # A mention of the bot, or a reply to one of its messages, addresses it in a group.
    for entity in entities:
        if entity.type == MessageEntity.MENTION:
            addressed = addressed or parse(entity).lower() == mention
    reply = message.reply_to_message
    if reply is not None and reply.from_user is not None and reply.from_user.is_bot:
        addressed = addressed or (reply.from_user.username or "").lower() == bot_username.lower()

    return IncomingMessage(
        chat=ChatRef(PLATFORM, str(message.chat.id), is_private),
        user_id=str(message.from_user.id),
        user_name=_user_name(message.from_user),
        text=rest,
        message_id=str(message.message_id),
        command=command,
        hidden_urls=tuple(
            entity.url
            for entity in entities
            if entity.type == MessageEntity.TEXT_LINK and entity.url
        ),
        addressed=addressed,
    )


@contextmanager
def _translating() -> Iterator[None]:
    """Turn `telegram.error` exceptions raised inside into `bot.errors` ones."""
    try:
        yield
    except tg_error.TelegramError as exc:
        raise _translate(exc) from exc


def _translate(exc: tg_error.TelegramError) -> ChatError:
    text = exc.message.lower()
    if isinstance(exc, tg_error.RetryAfter):
        return RateLimited(_retry_after_secs(exc))
    if isinstance(exc, tg_error.InvalidToken):
        return InvalidChatToken(TOKEN_VARIABLE, "Telegram")
    if isinstance(exc, tg_error.Forbidden):
        return Forbidden(exc.message)
    if "entity too large" in text or "file is too big" in text:
        return TooLarge(exc.message)
    if isinstance(exc, tg_error.BadRequest):
        if "not modified" in text:
            return NotModified(exc.message)
        if "message to edit not found" in text or "message to delete not found" in text:
            return MessageGone(exc.message)
        if "chat not found" in text or "not enough rights" in text:
            return Forbidden(exc.message)
        return ChatError(f"Telegram refused the call: {exc.message}")
    return ChatUnavailable(f"Telegram did not answer: {exc.message}")


def _retry_after_secs(exc: tg_error.RetryAfter) -> float:
    # PTB 22 gives int seconds (warning, filtered above) or a timedelta when opted in.
    value = exc.retry_after
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return float(value)


def _names_file_id(exc: ChatError) -> bool:
    """True when Telegram refused a call because it does not know the file id sent."""
    text = str(exc).lower()
    return (
        "wrong file identifier" in text or "file reference" in text or "wrong remote file" in text
    )


def _fit(text: str) -> str:
    return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 1] + "…"


def _reply(reply_to: str | None) -> ReplyParameters | None:
    if reply_to is None:
        return None
    return ReplyParameters(message_id=int(reply_to), allow_sending_without_reply=True)


def _keyboard(buttons: list[Button] | None) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    keys = [InlineKeyboardButton(button.label, callback_data=button.data) for button in buttons]
    rows = [keys[i : i + BUTTONS_PER_ROW] for i in range(0, len(keys), BUTTONS_PER_ROW)]
    return InlineKeyboardMarkup(rows)


def _user_name(user: Any) -> str:
    return str(user.username or user.full_name or user.id)
