"""`soundforge run`: the chat adapters, the file server and (when embedded) the workers.

Everything is opened here with `async with` or a matching stop, and closed in reverse
order when `stop` is set (SIGINT or SIGTERM). Requests still open at shutdown stay open
in the database; the next start resumes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from bot.conversation import COMMANDS, Conversation
from bot.errors import ChatError, InvalidChatToken
from bot.files import LINK_TTL_SECS, FileServer, LinkSigner, job_file_lookup
from bot.telegram import TelegramAdapter
from config.settings import Settings
from soundforge.app import Services, open_services
from storage.chat import ChatMemory

_log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1


async def run(settings: Settings, stop: asyncio.Event) -> int:
    """Run until `stop` is set; returns the process exit status."""
    if settings.telegram_bot_token is None:
        print(
            "soundforge: no chat is configured: set TELEGRAM_BOT_TOKEN (from @BotFather); "
            "see the README.",
            file=sys.stderr,
        )
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
                return await _run_chats(settings, services, files, stop)
            finally:
                await files.stop()
    finally:
        _log.info("SoundForge stopped")


async def _run_chats(
    settings: Settings, services: Services, files: FileServer, stop: asyncio.Event
) -> int:
    # Connect to Telegram; a rejected token ends the run with one sentence.
    adapter = TelegramAdapter(settings)
    conversation = Conversation(
        adapter,
        services.imports,
        services.bus,
        ChatMemory(services.db),
        files.link_for,
        link_ttl_secs=LINK_TTL_SECS,
    )
    follower = asyncio.create_task(conversation.run(), name="conversation:telegram:events")
    try:
        try:
            await adapter.start(conversation.handle, COMMANDS)
        except InvalidChatToken as exc:
            print(f"soundforge: {exc.user_message}", file=sys.stderr)
            return EXIT_FAILED
        except ChatError as exc:
            print(
                f"soundforge: Telegram could not be reached at TELEGRAM_API_BASE_URL ({exc}).",
                file=sys.stderr,
            )
            return EXIT_FAILED

        # Bring requests a crash left open to their final state.
        resumed = await conversation.resume()
        _log.info("Telegram bot is running (%d requests resumed)", resumed)

        # Serve until SIGINT or SIGTERM.
        await stop.wait()
        _log.info("Stopping: signal received")
        return EXIT_OK
    finally:
        await adapter.stop()
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await conversation.close()
        _log.info("Chats stopped")
