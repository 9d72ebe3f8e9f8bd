"""`soundforge run`: the chat adapters, the file server and (when embedded) the workers.

Every chat platform with a token gets its own adapter and conversation; they share the
services (database, import service, event bus, queue) and the file server. Everything is
opened here with `async with` or a matching stop, and closed in reverse order when `stop`
is set (SIGINT or SIGTERM). Requests still open at shutdown stay open in the database;
the next start resumes them, each platform its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.conversation import COMMANDS, Conversation
from bot.discord import DiscordAdapter
from bot.errors import ChatError, ChatUnavailable, InvalidChatToken
from bot.files import LINK_TTL_SECS, FileServer, LinkSigner, job_file_lookup
from bot.port import ChatPort, Command, IncomingMessage
from bot.telegram import TelegramAdapter
from config.settings import Settings
from core.errors import ChatStartFailed
from soundforge.app import Services, open_services
from storage.chat import ChatMemory

_log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1

NO_CHAT_CONFIGURED = (
    "no chat is configured: set TELEGRAM_BOT_TOKEN (from @BotFather) and/or "
    "DISCORD_BOT_TOKEN (from the Discord developer portal); see the README."
)


class ChatAdapter(ChatPort, Protocol):
    """A `ChatPort` that `soundforge run` can start and stop."""

    async def start(
        self,
        handler: Callable[[IncomingMessage], Awaitable[None]],
        commands: Sequence[Command] = (),
    ) -> None:
        """Connect and hand every incoming message to `handler`; raises `ChatError`s."""
        ...

    async def stop(self) -> None:
        """Disconnect, letting running handlers finish first."""
        ...


@dataclass(frozen=True)
class ChatPlatform:
    """A chat platform `soundforge run` can serve, and how its adapter is made."""

    name: str
    # The settings that say where the platform is reached, named when it cannot be.
    addresses: str
    configured: Callable[[Settings], bool]
    adapter: Callable[[Settings], ChatAdapter]


PLATFORMS: tuple[ChatPlatform, ...] = (
    ChatPlatform(
        "Telegram",
        "TELEGRAM_API_BASE_URL",
        lambda settings: settings.telegram_bot_token is not None,
        TelegramAdapter,
    ),
    ChatPlatform(
        "Discord",
        "DISCORD_API_BASE_URL or DISCORD_GATEWAY_URL",
        lambda settings: settings.discord_bot_token is not None,
        DiscordAdapter,
    ),
)


def _start_failure(platform: ChatPlatform, exc: ChatError) -> ChatStartFailed:
    """The error that ends the run when `platform` refused to start, with its sentence."""
    if isinstance(exc, InvalidChatToken):
        sentence = exc.user_message
    elif isinstance(exc, ChatUnavailable):
        sentence = f"{platform.name} could not be reached at {platform.addresses} ({exc})."
    else:
        sentence = f"{platform.name} refused to start the bot ({exc})."
    return ChatStartFailed(platform.name, sentence)


async def run(settings: Settings, stop: asyncio.Event) -> int:
    """Run until `stop` is set; returns the process exit status.

    Raises `ChatStartFailed` when a configured platform refuses to start the bot.
    """
    platforms = [platform for platform in PLATFORMS if platform.configured(settings)]
    if not platforms:
        print(f"soundforge: {NO_CHAT_CONFIGURED}", file=sys.stderr)
        return EXIT_FAILED

    mode = "embedded workers" if settings.embedded else "Redis workers"
    _log.info("Starting SoundForge with %s", mode)
    try:
        async with open_services(settings, embedded_workers=settings.embedded) as services:
            _log.info("Database, queue and events are ready")
            files = FileServer(
                settings,
                job_file_lookup(services.db),
                LinkSigner(settings.resolved_secret_key()),
            )
            await files.start()
            try:
                return await _run_chats(settings, platforms, services, files, stop)
            finally:
                await files.stop()
    finally:
        _log.info("SoundForge stopped")


async def _run_chats(
    settings: Settings,
    platforms: Sequence[ChatPlatform],
    services: Services,
    files: FileServer,
    stop: asyncio.Event,
) -> int:
    memory = ChatMemory(services.db)
    try:
        async with contextlib.AsyncExitStack() as chats:
            # Start each platform in turn; one that refuses stops those already started.
            for platform in platforms:
                if stop.is_set():
                    break
                serving = _serving(platform, settings, services, memory, files, stop)
                await chats.enter_async_context(serving)

            # Serve until SIGINT or SIGTERM.
            await stop.wait()
            _log.info("Stopping: signal received")
            return EXIT_OK
    finally:
        _log.info("Chats stopped")


@contextlib.asynccontextmanager
async def _serving(
    platform: ChatPlatform,
    settings: Settings,
    services: Services,
    memory: ChatMemory,
    files: FileServer,
    stop: asyncio.Event,
) -> AsyncIterator[Conversation]:
    """One platform's adapter and conversation, running until the block ends."""
    adapter = platform.adapter(settings)
    conversation = Conversation(
        adapter,
        services.imports,
        services.bus,
        memory,
        files.link_for,
        link_ttl_secs=LINK_TTL_SECS,
    )
    follower = asyncio.create_task(
        conversation.run(), name=f"conversation:{adapter.platform}:events"
    )
    try:
        # Note what a crash left open, before new requests can arrive.
        left_open = await services.imports.open_requests(adapter.platform)

        # Connect; a rejected token or an unreachable platform stops the start.
        if await _connect(platform, adapter, conversation, stop):
            # Bring those requests to their final state.
            resumed = await conversation.resume(left_open)
            _log.info("%s bot is running (%d requests resumed)", platform.name, resumed)
        yield conversation
    finally:
        await adapter.stop()
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await conversation.close()


async def _connect(
    platform: ChatPlatform, adapter: ChatAdapter, conversation: Conversation, stop: asyncio.Event
) -> bool:
    """Start `adapter` unless `stop` is set first; True when it started.

    An adapter may wait for ever on a platform it cannot reach (discord.py retries its
    gateway without end), and a signal must still end the run.
    """
    starting = asyncio.create_task(
        adapter.start(conversation.handle, COMMANDS), name=f"{adapter.platform}:start"
    )
    stopping = asyncio.create_task(stop.wait(), name=f"{adapter.platform}:start:stop")
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (starting, stopping):
            task.cancel()
        await asyncio.gather(starting, stopping, return_exceptions=True)
    if starting.cancelled():
        _log.info("%s was still connecting when the stop came", platform.name)
        return False
    failure = starting.exception()
    if isinstance(failure, ChatError):
        raise _start_failure(platform, failure) from failure
    if failure is not None:
        raise failure
    return True
