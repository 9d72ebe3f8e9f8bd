"""The Bot API stand-in itself, through the real python-telegram-bot `Bot`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram import Bot, InputMediaAudio
from telegram.error import BadRequest, RetryAfter

from tests.standins.telegram import TelegramLimits, TelegramStandIn

CHAT_ID = 501
GROUP_ID = -900


@pytest.fixture
async def bot(telegram_standin: TelegramStandIn) -> AsyncIterator[Bot]:
    bot = Bot(
        telegram_standin.token,
        base_url=telegram_standin.api_base_url,
        base_file_url=telegram_standin.file_base_url,
    )
    async with bot:
        yield bot


async def test_an_uploaded_file_can_be_fetched_back_by_get_file(bot: Bot) -> None:
    sent = await bot.send_document(CHAT_ID, b"some bytes", filename="a.bin")
    assert sent.document is not None

    file = await bot.get_file(sent.document.file_id)

    assert bytes(await file.download_as_bytearray()) == b"some bytes"


async def test_a_media_group_posts_one_message_per_item(
    telegram_standin: TelegramStandIn, bot: Bot
) -> None:
    media = [
        InputMediaAudio(b"first", filename="1.mp3", title="One"),
        InputMediaAudio(b"second", filename="2.mp3", title="Two"),
    ]

    await bot.send_media_group(CHAT_ID, media)

    shown = telegram_standin.audio_messages(CHAT_ID)
    assert [m.title for m in shown] == ["One", "Two"]
    assert shown[0].media_group_id == shown[1].media_group_id is not None


async def test_an_unknown_file_id_is_a_bad_request(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
        await bot.send_audio(CHAT_ID, "no-such-id")


def test_a_group_past_twenty_messages_a_minute_is_told_to_wait() -> None:
    limits = TelegramLimits()

    waits = [limits.retry_after(GROUP_ID, now=100.0 + n * 1.5) for n in range(21)]

    assert waits[:20] == [0.0] * 20
    assert waits[20] == pytest.approx(60.0 - 30.0)


def test_a_private_chat_gets_a_burst_then_about_one_message_a_second() -> None:
    limits = TelegramLimits()

    burst = [limits.retry_after(CHAT_ID, now=100.0) for _ in range(6)]

    assert burst == [0.0] * 5 + [pytest.approx(1.0)]
    assert limits.retry_after(CHAT_ID, now=101.0) == 0.0


@pytest.mark.filterwarnings("ignore:.*retry_after")
async def test_an_injected_flood_wait_answers_429_with_retry_after(
    telegram_standin: TelegramStandIn, bot: Bot
) -> None:
    telegram_standin.inject_flood_wait(12, chat_id=CHAT_ID)

    with pytest.raises(RetryAfter):
        await bot.send_message(CHAT_ID, "hi")

    [refused] = telegram_standin.rate_limited_calls
    assert refused.method == "sendMessage"
