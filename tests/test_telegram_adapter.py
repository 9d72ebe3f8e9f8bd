"""The Telegram adapter with the real python-telegram-bot against the loopback Bot API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.errors import (
    FileIdRejected,
    InvalidChatToken,
    MessageGone,
    NotModified,
    RateLimited,
    TooLarge,
)
from bot.port import AudioFile, Button, ChatRef, Command, IncomingMessage
from bot.telegram import TelegramAdapter
from config.settings import Settings
from tests.fixtures.telegram import telegram_settings
from tests.standins.telegram import TelegramStandIn, TgChat, TgUser

ANN = TgUser(id=501, first_name="Ann", username="ann")
TRACK_URL = "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC"


class Inbox:
    """Collects what the adapter hands the conversation."""

    def __init__(self) -> None:
        self.messages: list[IncomingMessage] = []
        self._arrived = asyncio.Condition()

    async def handle(self, message: IncomingMessage) -> None:
        async with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()

    async def next(self, count: int = 1) -> list[IncomingMessage]:
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.messages) >= count), 20)
        return self.messages[:count]


@pytest.fixture
async def adapter(tg_settings: Settings) -> AsyncIterator[TelegramAdapter]:
    adapter = TelegramAdapter(tg_settings)
    yield adapter
    await adapter.stop()


@pytest.fixture
async def inbox(adapter: TelegramAdapter) -> Inbox:
    inbox = Inbox()
    await adapter.start(inbox.handle, [Command("get", "Fetch a Spotify link")])
    return inbox


def private(user: TgUser = ANN) -> ChatRef:
    return ChatRef("telegram", str(user.id), True)


def audio_file(tmp_path: Path, size: int = 2048, name: str = "Artist - Song.mp3") -> Path:
    path = tmp_path / name
    path.write_bytes(b"ID3" + bytes(range(256)) * (size // 256))
    return path


async def test_a_bare_link_in_a_private_chat_arrives_as_text(
    telegram_standin: TelegramStandIn, inbox: Inbox
) -> None:
    telegram_standin.send_text(TgChat.private_with(ANN), ANN, f"listen {TRACK_URL}")

    [message] = await inbox.next()

    assert message.text == f"listen {TRACK_URL}"
    assert message.command is None
    assert message.chat == private()
    assert message.user_id == "501"
    assert message.user_name == "ann"
    assert message.addressed


async def test_group_commands_name_this_bot_or_are_ignored(
    telegram_standin: TelegramStandIn, inbox: Inbox
) -> None:
    group = TgChat.group(900)
    other = f"/get@another_bot {TRACK_URL}"
    ours = f"/get@{telegram_standin.bot_username} {TRACK_URL}"

    telegram_standin.send_text(group, ANN, other)
    telegram_standin.send_text(group, ANN, ours)
    telegram_standin.send_text(group, ANN, "just chatting")

    messages = await inbox.next(2)
    assert [(m.command, m.text, m.addressed) for m in messages] == [
        ("get", TRACK_URL, True),
        (None, "just chatting", False),
    ]
    assert messages[0].chat == ChatRef("telegram", "-900", False)


async def test_a_mention_addresses_the_bot_in_a_group(
    telegram_standin: TelegramStandIn, inbox: Inbox
) -> None:
    mention = f"@{telegram_standin.bot_username}"
    text = f"{mention} {TRACK_URL}"
    entity = {"type": "mention", "offset": 0, "length": len(mention)}

    telegram_standin.send_text(TgChat.group(901), ANN, text, entities=[entity])

    [message] = await inbox.next()
    assert message.addressed
    assert TRACK_URL in message.text


async def test_text_link_targets_and_captions_are_read(
    telegram_standin: TelegramStandIn, inbox: Inbox
) -> None:
    chat = TgChat.private_with(ANN)

    telegram_standin.send_link_behind_text(chat, ANN, "this song", TRACK_URL)
    telegram_standin.send_text(chat, ANN, f"cover art {TRACK_URL}", as_caption=True)

    hidden, caption = await inbox.next(2)
    assert hidden.text == "this song"
    assert hidden.hidden_urls == (TRACK_URL,)
    assert caption.text == f"cover art {TRACK_URL}"


async def test_a_button_press_arrives_and_is_answered(
    telegram_standin: TelegramStandIn, adapter: TelegramAdapter, inbox: Inbox
) -> None:
    sent = await adapter.send_text(private(), "Pick one", buttons=[Button("High", "q:high")])
    [shown] = telegram_standin.transcript(ANN.id)

    callback_id = telegram_standin.press_button(ANN, shown, "q:high")

    [message] = await inbox.next()
    assert message.button == "q:high"
    assert message.message_id == sent.message_id
    assert message.user_id == "501"
    await telegram_standin.wait_for(
        lambda: callback_id in telegram_standin.answered_callbacks, what="the answer"
    )


async def test_start_registers_the_command_menu(
    telegram_standin: TelegramStandIn, inbox: Inbox
) -> None:
    assert telegram_standin.commands == [{"command": "get", "description": "Fetch a Spotify link"}]


async def test_edits_change_the_text_and_an_identical_edit_is_not_modified(
    telegram_standin: TelegramStandIn, adapter: TelegramAdapter, inbox: Inbox
) -> None:
    sent = await adapter.send_text(private(), "Found: Song", buttons=[Button("A", "a")])

    await adapter.edit_text(sent, "Downloading 40%")
    with pytest.raises(NotModified):
        await adapter.edit_text(sent, "Downloading 40%")

    [shown] = telegram_standin.transcript(ANN.id)
    assert shown.text == "Downloading 40%"
    assert shown.history == ["Found: Song", "Downloading 40%"]
    assert shown.buttons == []


async def test_editing_a_deleted_reply_says_the_message_is_gone(
    telegram_standin: TelegramStandIn, adapter: TelegramAdapter, inbox: Inbox
) -> None:
    sent = await adapter.send_text(private(), "Found: Song")
    telegram_standin.delete_message(ANN.id, int(sent.message_id))

    with pytest.raises(MessageGone):
        await adapter.edit_text(sent, "Downloading")


async def test_audio_goes_up_with_its_tags_and_comes_back_as_a_file_id(
    telegram_standin: TelegramStandIn, adapter: TelegramAdapter, inbox: Inbox, tmp_path: Path
) -> None:
    path = audio_file(tmp_path)
    audio = AudioFile(path, "Song", "Artist", 187, thumbnail=b"\xff\xd8jpeg")

    sent = await adapter.send_audio(private(), audio, reply_to=None)

    [shown] = telegram_standin.audio_messages(ANN.id)
    assert (shown.title, shown.performer, shown.duration) == ("Song", "Artist", 187)
    assert shown.file is not None and shown.file.data == path.read_bytes()
    assert shown.file.file_name == "Artist - Song.mp3"
    assert shown.thumbnail == b"\xff\xd8jpeg"
    assert sent.file_id == shown.file.file_id


async def test_a_remembered_file_id_is_sent_without_an_upload(
    telegram_standin: TelegramStandIn, adapter: TelegramAdapter, inbox: Inbox, tmp_path: Path
) -> None:
    audio = AudioFile(audio_file(tmp_path), "Song", "Artist", 187)
    first = await adapter.send_audio(private(), audio)

    again = await adapter.send_audio(
        private(), AudioFile(audio.path, "Song", "Artist", 187, remembered_id=first.file_id)
    )

    first_shown, second_shown = telegram_standin.audio_messages(ANN.id)
    assert first_shown.uploaded and not second_shown.uploaded
    assert again.file_id == first.file_id


async def test_an_unknown_file_id_is_rejected_so_delivery_can_upload(
    adapter: TelegramAdapter, inbox: Inbox, tmp_path: Path
) -> None:
    audio = AudioFile(audio_file(tmp_path), "Song", "Artist", 187, remembered_id="AUfile-old")

    with pytest.raises(FileIdRejected) as caught:
        await adapter.send_audio(private(), audio)
    assert caught.value.file_id == "AUfile-old"


async def test_a_flac_file_goes_up_as_a_document(
    telegram_standin: TelegramStandIn, adapter: TelegramAdapter, inbox: Inbox, tmp_path: Path
) -> None:
    path = audio_file(tmp_path, name="Artist - Song.flac")

    await adapter.send_audio(private(), AudioFile(path, "Song", "Artist", 187))

    [shown] = telegram_standin.audio_messages(ANN.id)
    assert shown.kind == "document"
    assert shown.caption == "Artist - Song"


async def test_a_file_over_telegrams_limit_is_too_large(tmp_path: Path) -> None:
    async with TelegramStandIn(upload_limit_bytes=1000) as stand_in:
        adapter = TelegramAdapter(telegram_settings(stand_in, tmp_path))
        try:
            await adapter.start(Inbox().handle)
            with pytest.raises(TooLarge):
                await adapter.send_audio(
                    private(), AudioFile(audio_file(tmp_path), "Song", "Artist", 187)
                )
        finally:
            await adapter.stop()


async def test_a_flood_wait_is_rate_limited_with_its_delay(
    telegram_standin: TelegramStandIn, adapter: TelegramAdapter, inbox: Inbox
) -> None:
    telegram_standin.inject_flood_wait(7, chat_id=ANN.id)

    with pytest.raises(RateLimited) as caught:
        await adapter.send_text(private(), "Found: Song")

    assert caught.value.retry_after_secs == 7


async def test_many_messages_to_one_chat_are_paced_without_a_429(
    telegram_standin: TelegramStandIn, adapter: TelegramAdapter, inbox: Inbox
) -> None:
    await asyncio.gather(*(adapter.send_text(private(), f"message {n}") for n in range(8)))

    assert len(telegram_standin.texts(ANN.id)) == 8
    assert telegram_standin.rate_limited_calls == []


async def test_a_rejected_token_is_said_in_one_sentence(
    telegram_standin: TelegramStandIn, tmp_path: Path
) -> None:
    settings = telegram_settings(
        telegram_standin, tmp_path, telegram_bot_token=SecretStr("42:wrong-token")
    )
    adapter = TelegramAdapter(settings)

    with pytest.raises(InvalidChatToken) as caught:
        await adapter.start(Inbox().handle)
    await adapter.stop()

    assert "TELEGRAM_BOT_TOKEN" in caught.value.user_message
    assert "wrong-token" not in caught.value.user_message
