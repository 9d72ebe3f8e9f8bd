"""Breaks found in the Telegram adapter, driven through the real PTB and the Bot API stand-in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.port import IncomingMessage
from bot.telegram import TelegramAdapter
from tests.fixtures.telegram import telegram_settings
from tests.standins.telegram import TelegramStandIn, TgChat, TgUser

ANN = TgUser(id=501, first_name="Ann", username="ann")
TRACK_URL = "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC"


def utf16_length(text: str) -> int:
    """How Telegram measures entity offsets and lengths: in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


@pytest.fixture
async def inbox(
    telegram_standin: TelegramStandIn, tmp_path: Path
) -> AsyncIterator[asyncio.Queue[IncomingMessage]]:
    """What a started adapter hands the conversation (no file server: any port will do)."""
    received: asyncio.Queue[IncomingMessage] = asyncio.Queue()
    adapter = TelegramAdapter(telegram_settings(telegram_standin, tmp_path, http_port=8080))

    async def handle(message: IncomingMessage) -> None:
        received.put_nowait(message)

    await adapter.start(handle)
    try:
        yield received
    finally:
        await adapter.stop()


@pytest.mark.parametrize("as_caption", [False, True], ids=["text", "caption"])
async def test_a_mention_after_an_emoji_still_addresses_the_bot_in_a_group(
    telegram_standin: TelegramStandIn,
    inbox: asyncio.Queue[IncomingMessage],
    as_caption: bool,
) -> None:
    # Given a group message that starts with an emoji (two UTF-16 code units) and then
    # mentions the bot, with the entity offsets Telegram itself sends
    before = "🎧 new one for you "
    mention = f"@{telegram_standin.bot_username}"
    entity = {"type": "mention", "offset": utf16_length(before), "length": len(mention)}

    # When it is posted in a group
    telegram_standin.send_text(
        TgChat.group(902),
        ANN,
        f"{before}{mention} {TRACK_URL}",
        entities=[entity],
        as_caption=as_caption,
    )

    # Then the bot sees that it was addressed, so the link is read
    message = await asyncio.wait_for(inbox.get(), 20)
    assert message.addressed
    assert TRACK_URL in message.text
