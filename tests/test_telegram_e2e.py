"""`soundforge run` end to end on Telegram: the real command, PTB, spotdl, yt-dlp and ffmpeg.

Every address is loopback: the Bot API stand-in (with Telegram's pacing), the Spotify
stand-in and the audio source. Tests act as a person in the chat and assert what that
person sees.
"""

from __future__ import annotations

import asyncio
import io
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from mutagen.id3 import ID3
from PIL import Image

from core.errors import InvalidLink
from tests.fixtures.cli import ROOT, Soundforge
from tests.standins.audio import AudioSource
from tests.standins.spotify import Catalog
from tests.standins.telegram import BotMessage, TelegramStandIn, TgChat, TgUser

pytestmark = pytest.mark.e2e

ANN = TgUser(id=501, first_name="Ann", username="ann")
ANNS_CHAT = TgChat.private_with(ANN)
# Long enough for spotdl and a paced chat on a busy machine, short enough to fail clearly.
WAIT_SECS = 180.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningBot:
    """A `soundforge run` process and where its log goes."""

    process: asyncio.subprocess.Process
    log_path: Path
    http_port: int

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def stop(self) -> int:
        """SIGTERM, as a service manager would; returns the exit status."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 60)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
                pytest.fail(f"soundforge run did not stop on SIGTERM:\n{self.log[-3000:]}")
        return self.process.returncode or 0

    def kill_hard(self) -> None:
        """SIGKILL the bot and every process it started (spotdl, ffmpeg)."""
        children = psutil.Process(self.process.pid).children(recursive=True)
        self.process.send_signal(signal.SIGKILL)
        for child in children:
            if child.is_running():
                child.kill()


@dataclass
class Chat:
    """The test's side: a Telegram stand-in and the bots started against it."""

    telegram: TelegramStandIn
    soundforge: Soundforge
    catalog: Catalog
    audio: AudioSource
    started: list[RunningBot]

    async def start_bot(self, *, wait_polling: bool = True, **env: str) -> RunningBot:
        port = free_port()
        log_path = self.soundforge.data_dir / f"run-{len(self.started)}.log"
        values = {
            **self.soundforge.env,
            "TELEGRAM_BOT_TOKEN": self.telegram.token,
            "TELEGRAM_API_BASE_URL": self.telegram.api_base_url,
            "TELEGRAM_FILE_BASE_URL": self.telegram.file_base_url,
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(port),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "PROGRESS_EDIT_INTERVAL_SECS": "1",
            "SECRET_KEY": "e2e-secret-key",
            "PYTHONPATH": str(ROOT),
            **env,
        }
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "soundforge",
                "run",
                cwd=self.soundforge.data_dir,
                env=values,
                stdout=log,
                stderr=log,
            )
        bot = RunningBot(process, log_path, port)
        self.started.append(bot)
        if wait_polling:
            await self.telegram.wait_for(
                lambda: self.telegram.polls,
                within_secs=60,
                what="the bot to poll",
            )
        return bot

    def track_link(self, name: str = "Night Drive", tracks: int = 1) -> tuple[str, list[Any]]:
        artist = self.catalog.add_artist("Ørjan & The Sines", ["synthwave"])
        album = self.catalog.add_album(name, artist, tracks=tracks)
        found = self.catalog.album_tracks(album)
        return f"https://open.spotify.com/track/{found[0].spotify_id}", found

    def album_link(self, name: str = "Night Drive", tracks: int = 3) -> tuple[str, list[Any]]:
        artist = self.catalog.add_artist("Ørjan & The Sines", ["synthwave"])
        album = self.catalog.add_album(name, artist, tracks=tracks)
        return f"https://open.spotify.com/album/{album.spotify_id}", self.catalog.album_tracks(
            album
        )

    def reply_to(self, message_id: int, chat: TgChat = ANNS_CHAT) -> BotMessage | None:
        for shown in self.telegram.transcript(chat.id):
            if shown.reply_to == message_id and shown.kind == "text":
                return shown
        return None

    async def first_reply(self, message_id: int, chat: TgChat = ANNS_CHAT) -> BotMessage:
        reply: BotMessage = await self.telegram.wait_for(
            lambda: self.reply_to(message_id, chat), within_secs=WAIT_SECS, what="a reply"
        )
        return reply

    async def audio_count(self, count: int, chat: TgChat = ANNS_CHAT) -> list[BotMessage]:
        found: list[BotMessage] = await self.telegram.wait_for(
            lambda: (
                self.telegram.audio_messages(chat.id)
                if len(self.telegram.audio_messages(chat.id)) >= count
                else None
            ),
            within_secs=WAIT_SECS,
            what=f"{count} audio messages",
        )
        return found

    async def text_where(self, test: Callable[[str], bool], chat: TgChat = ANNS_CHAT) -> str:
        text: str = await self.telegram.wait_for(
            lambda: next((t for t in self.telegram.texts(chat.id) if test(t)), None),
            within_secs=WAIT_SECS,
            what="a text",
        )
        return text


@asynccontextmanager
async def chat_session(
    soundforge: Soundforge, catalog: Catalog, audio: AudioSource, **standin: Any
) -> AsyncIterator[Chat]:
    async with TelegramStandIn(**standin) as telegram:
        chat = Chat(telegram, soundforge, catalog, audio, [])
        try:
            yield chat
        finally:
            for bot in chat.started:
                if bot.process.returncode is None:
                    await bot.stop()


@pytest.fixture
async def chat(
    soundforge: Soundforge, spotify_catalog: Catalog, audio_source: AudioSource
) -> AsyncIterator[Chat]:
    async with chat_session(soundforge, spotify_catalog, audio_source) as session:
        yield session


async def test_a_pasted_track_arrives_as_tagged_audio_and_a_repeat_reuses_its_file_id(
    chat: Chat,
) -> None:
    link, _ = chat.track_link()
    bot = await chat.start_bot()
    assert chat.telegram.commands, "the command menu is registered"

    # when Ann pastes the link
    pasted = chat.telegram.send_text(ANNS_CHAT, ANN, f"listen {link}?si=xyz")

    # then one reply says what was found, and ends as done
    reply = await chat.first_reply(pasted)
    assert reply.history[0].startswith("Found: Ørjan & The Sines – Night Drive 1")
    assert "Album: Night Drive" in reply.history[0]
    [audio] = await chat.audio_count(1)
    await chat.telegram.wait_for(lambda: "Done" in reply.text, what="the final state")
    assert (audio.title, audio.performer) == ("Night Drive 1", "Ørjan & The Sines")
    assert audio.duration is not None and audio.duration > 0
    assert audio.file is not None and audio.uploaded
    tags = ID3(io.BytesIO(audio.file.data))
    assert tags["TIT2"].text == ["Night Drive 1"]
    assert audio.thumbnail is not None
    with Image.open(io.BytesIO(audio.thumbnail)) as cover:
        assert cover.format == "JPEG" and max(cover.size) <= 320
    assert len(audio.thumbnail) <= 200_000

    # when she pastes it again, the same file is re-sent by its file_id
    again = chat.telegram.send_text(ANNS_CHAT, ANN, link)
    await chat.first_reply(again)
    first, second = await chat.audio_count(2)
    assert not second.uploaded
    assert second.file is first.file
    assert chat.telegram.rate_limited_calls == []
    assert chat.telegram.token not in bot.log

    assert await bot.stop() == 0
    assert "Stopping" in bot.log


async def test_an_album_is_one_reply_and_one_audio_message_per_track(chat: Chat) -> None:
    link, tracks = chat.album_link(tracks=3)
    await chat.start_bot()

    pasted = chat.telegram.send_text(ANNS_CHAT, ANN, link)

    reply = await chat.first_reply(pasted)
    assert reply.history[0].startswith(
        "Found the album Night Drive by Ørjan & The Sines: 3 tracks"
    )
    audio = await chat.audio_count(3)
    assert [m.title for m in audio] == [t.name for t in tracks]
    await chat.telegram.wait_for(lambda: "3/3 done" in reply.text, what="the final count")
    texts = [m for m in chat.telegram.transcript(ANNS_CHAT.id) if m.kind == "text"]
    assert texts == [reply]
    assert chat.telegram.rate_limited_calls == []


async def test_a_file_over_the_limit_comes_as_a_link_whose_bytes_match(chat: Chat) -> None:
    link, [track] = chat.track_link()
    chat.audio.set_duration(track.spotify_id, 40)
    bot = await chat.start_bot(TELEGRAM_UPLOAD_LIMIT_MB="1")

    pasted = chat.telegram.send_text(ANNS_CHAT, ANN, link)

    await chat.first_reply(pasted)
    text = await chat.text_where(lambda t: "too large for this chat" in t)
    url = text.rsplit("\n", 1)[1]
    assert url.startswith(f"http://127.0.0.1:{bot.http_port}/files/")
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
        tampered = await client.get(url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB"))
        ranged = await client.get(url, headers={"Range": "bytes=0-99"})
    [stored] = [p for p in (chat.soundforge.download_dir).rglob("*.mp3")]
    assert response.status_code == 200
    assert response.content == stored.read_bytes()
    assert len(response.content) > 1024 * 1024
    assert "attachment" in response.headers["content-disposition"]
    assert tampered.status_code == 403
    assert ranged.status_code == 206 and ranged.content == stored.read_bytes()[:100]
    assert chat.telegram.audio_messages(ANNS_CHAT.id) == []


async def test_an_invalid_link_gets_one_sentence(chat: Chat) -> None:
    await chat.start_bot()

    pasted = chat.telegram.send_text(ANNS_CHAT, ANN, "https://example.com/track/nothing")

    reply = await chat.first_reply(pasted)
    assert reply.text == InvalidLink().user_message


async def test_status_quality_and_cancel(chat: Chat) -> None:
    link, [track] = chat.track_link()
    chat.audio.set_hanging(track.spotify_id)
    await chat.start_bot()

    # /quality offers four buttons, and the choice sticks
    asked = chat.telegram.send_text(ANNS_CHAT, ANN, "/quality")
    prompt = await chat.first_reply(asked)
    assert len(prompt.button_data) == 4
    chat.telegram.press_button(ANN, prompt, "quality:medium")
    await chat.telegram.wait_for(lambda: prompt.text.startswith("Quality set to Medium"))

    # a request that hangs in the download shows in /status
    pasted = chat.telegram.send_text(ANNS_CHAT, ANN, link)
    reply = await chat.first_reply(pasted)
    assert "Medium" in reply.history[0]
    await chat.telegram.wait_for(lambda: chat.audio.audio_requests[track.spotify_id])
    status_ask = chat.telegram.send_text(ANNS_CHAT, ANN, "/status")
    status = await chat.first_reply(status_ask)
    assert status.text.startswith("Running:")
    assert "Night Drive 1: downloading" in status.text

    # /cancel stops it, and the reply says so
    cancel_ask = chat.telegram.send_text(ANNS_CHAT, ANN, "/cancel")
    cancelled = await chat.first_reply(cancel_ask)
    assert cancelled.text == "Cancelled 1 download."
    await chat.telegram.wait_for(lambda: reply.text.endswith("Cancelled."), what="cancelled")
    assert chat.telegram.audio_messages(ANNS_CHAT.id) == []


async def test_a_flood_wait_is_waited_out_and_everything_still_arrives(chat: Chat) -> None:
    link, _ = chat.album_link(tracks=2)
    await chat.start_bot()

    pasted = chat.telegram.send_text(ANNS_CHAT, ANN, link)
    reply = await chat.first_reply(pasted)
    chat.telegram.inject_flood_wait(6, chat_id=ANNS_CHAT.id)

    await chat.audio_count(2)
    await chat.telegram.wait_for(lambda: "2/2 done" in reply.text, what="the final count")
    refused = chat.telegram.rate_limited_calls
    assert 1 <= len(refused) <= 2, "the bot stops calling once told to wait"


async def test_a_deleted_reply_still_gets_its_audio(chat: Chat) -> None:
    link, _ = chat.track_link()
    await chat.start_bot()

    pasted = chat.telegram.send_text(ANNS_CHAT, ANN, link)
    reply = await chat.first_reply(pasted)
    chat.telegram.delete_message(ANNS_CHAT.id, reply.message_id)

    await chat.audio_count(1)


async def test_a_group_command_with_the_bot_name_is_answered(chat: Chat) -> None:
    link, _ = chat.track_link()
    group = TgChat.group(777)
    await chat.start_bot()

    chat.telegram.send_text(group, ANN, link)
    asked = chat.telegram.send_text(group, ANN, f"/get@{chat.telegram.bot_username} {link}")

    reply = await chat.first_reply(asked, group)
    assert reply.history[0].startswith("Found:")
    await chat.audio_count(1, group)
    assert len([m for m in chat.telegram.transcript(group.id) if m.kind == "text"]) == 1


async def test_a_restart_after_sigkill_mid_download_still_delivers_once(chat: Chat) -> None:
    link, [track] = chat.track_link()
    chat.audio.set_hanging(track.spotify_id)
    bot = await chat.start_bot()
    pasted = chat.telegram.send_text(ANNS_CHAT, ANN, link)
    reply = await chat.first_reply(pasted)
    await chat.telegram.wait_for(lambda: chat.audio.audio_requests[track.spotify_id])

    bot.kill_hard()
    await bot.process.wait()
    chat.audio.clear(track.spotify_id)
    again = await chat.start_bot()

    await chat.audio_count(1)
    await chat.telegram.wait_for(lambda: "Done" in reply.text, what="the final state")
    assert await again.stop() == 0
    assert len(chat.telegram.audio_messages(ANNS_CHAT.id)) == 1


async def test_a_rejected_token_is_one_sentence_and_exit_1(chat: Chat) -> None:
    bot = await chat.start_bot(wait_polling=False, TELEGRAM_BOT_TOKEN="42:not-the-token")

    status = await asyncio.wait_for(bot.process.wait(), WAIT_SECS)

    assert status == 1
    assert "Telegram rejected the bot token in TELEGRAM_BOT_TOKEN" in bot.log
    assert "Traceback" not in bot.log
    assert "not-the-token" not in bot.log


async def test_without_a_token_run_says_which_variable_to_set(soundforge: Soundforge) -> None:
    env = {k: v for k, v in soundforge.env.items() if not k.startswith("TELEGRAM")}
    soundforge.env = env

    done = await soundforge.run("run")

    assert done.returncode == 1
    assert "TELEGRAM_BOT_TOKEN" in done.stderr
