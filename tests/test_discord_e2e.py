"""`soundforge run` end to end on Discord, beside Telegram in the same process.

The real command runs discord.py and python-telegram-bot against their loopback stand-ins,
and spotdl, yt-dlp and ffmpeg against the Spotify stand-in and the audio source. Tests act
as people in a DM, a server channel or a Telegram chat, and assert what they see.
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from mutagen.id3 import ID3
from PIL import Image

from core.errors import InvalidLink
from tests.fixtures.cli import ROOT, Soundforge
from tests.standins.audio import AudioSource
from tests.standins.discord import (
    CALLBACK_DEFERRED_MESSAGE,
    DcChannel,
    DiscordStandIn,
    StoredAttachment,
    StoredMessage,
)
from tests.standins.spotify import Catalog
from tests.standins.telegram import TelegramStandIn, TgChat, TgUser
from tests.test_telegram_e2e import WAIT_SECS, RunningBot, free_port

pytestmark = pytest.mark.e2e

TG_ANN = TgUser(id=501, first_name="Ann", username="ann")
TG_ANNS_CHAT = TgChat.private_with(TG_ANN)
ARTIST = "Ørjan & The Sines"
# Every platform is on unless a test leaves one out.
BOTH = ("telegram", "discord")
# How often a wait looks at something that signals no change.
POLL_SECS = 0.05


@dataclass
class Chats:
    """The test's side: both chat stand-ins, the music, and the bots started against them."""

    discord: DiscordStandIn
    telegram: TelegramStandIn
    soundforge: Soundforge
    catalog: Catalog
    audio: AudioSource
    started: list[RunningBot]

    async def start_bot(
        self, platforms: tuple[str, ...] = BOTH, *, wait_ready: bool = True, **env: str
    ) -> RunningBot:
        """Start `soundforge run` with a token for each of `platforms`."""
        port = free_port()
        log_path = self.soundforge.data_dir / f"run-{len(self.started)}.log"
        values = {
            **self.soundforge.env,
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(port),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "PROGRESS_EDIT_INTERVAL_SECS": "1",
            "SECRET_KEY": "e2e-secret-key",
            "PYTHONPATH": str(ROOT),
        }
        if "telegram" in platforms:
            values["TELEGRAM_BOT_TOKEN"] = self.telegram.token
            values["TELEGRAM_API_BASE_URL"] = self.telegram.api_base_url
            values["TELEGRAM_FILE_BASE_URL"] = self.telegram.file_base_url
        if "discord" in platforms:
            values["DISCORD_BOT_TOKEN"] = self.discord.token
            values["DISCORD_API_BASE_URL"] = self.discord.api_base_url
            values["DISCORD_GATEWAY_URL"] = self.discord.gateway_url
        values.update(env)
        readies = self.discord.readies
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
        if wait_ready and "telegram" in platforms:
            await self.telegram.wait_for(
                lambda: self.telegram.polls, within_secs=60, what="the bot to poll Telegram"
            )
        if wait_ready and "discord" in platforms:
            await self.until(lambda: self.discord.readies > readies, "READY on Discord")
        return bot

    def track_link(self, name: str = "Night Drive") -> tuple[str, Any]:
        artist = self.catalog.add_artist(ARTIST, ["synthwave"])
        [track] = self.catalog.album_tracks(self.catalog.add_album(name, artist, tracks=1))
        return f"https://open.spotify.com/track/{track.spotify_id}", track

    def album_link(self, name: str = "Night Drive", tracks: int = 3) -> tuple[str, list[Any]]:
        artist = self.catalog.add_artist(ARTIST, ["synthwave"])
        album = self.catalog.add_album(name, artist, tracks=tracks)
        return f"https://open.spotify.com/album/{album.spotify_id}", self.catalog.album_tracks(
            album
        )

    async def until(self, predicate: Callable[[], object], what: str) -> None:
        """Wait until `predicate()` holds on the Discord side; a hang fails with the log."""
        try:
            await self.discord.wait_until(lambda: bool(predicate()), guard_secs=WAIT_SECS)
        except TimeoutError:
            log = self.started[-1].log[-3000:] if self.started else ""
            pytest.fail(f"gave up waiting for {what}; the bot's log ends:\n{log}")

    async def fetched(self, track_id: str) -> None:
        """Wait until the audio source was asked for `track_id` (it has no change signal)."""
        async with asyncio.timeout(WAIT_SECS):
            while not self.audio.audio_requests[track_id]:  # noqa: ASYNC110 - no signal
                await asyncio.sleep(POLL_SECS)

    async def reply_to(self, message: StoredMessage) -> StoredMessage:
        """The bot's text reply that quotes `message`."""
        channel = self.discord.channels[message.channel_id]
        found: list[StoredMessage] = []

        def replied() -> bool:
            found[:] = [
                m
                for m in self.discord.bot_messages_in(channel)
                if m.reference_id == message.id and not m.attachments
            ]
            return bool(found)

        await self.until(replied, f"a reply to message {message.id}")
        return found[0]

    def first_text(self, reply: StoredMessage) -> str:
        """What `reply` said when it was first shown, before any edit."""
        if reply.via == "interaction" and reply.interaction_id is not None:
            # A deferred command's first answer replaces "thinking" with an edit.
            token = self.discord.interactions[reply.interaction_id].token
            calls = [
                call
                for call in self.discord.calls_to(
                    "/webhooks/{app}/{token}/messages/{message}", "PATCH"
                )
                if call.path.endswith(f"/{token}/messages/@original")
            ]
        else:
            calls = [
                call
                for call in self.discord.calls_to("/channels/{channel}/messages", "POST")
                if _quoted(call.payload) == str(reply.reference_id)
            ]
        for call in calls:
            if call.status == 200 and call.channel_id == reply.channel_id and not call.files:
                assert isinstance(call.payload, dict)
                return str(call.payload.get("content", ""))
        raise AssertionError(f"no call posted message {reply.id}")

    async def songs(self, channel: DcChannel, count: int) -> list[StoredAttachment]:
        """The first `count` audio attachments in `channel`, once that many are there."""

        def found() -> list[StoredAttachment]:
            return [
                attachment
                for message in self.discord.bot_messages_in(channel)
                for attachment in message.attachments
                if attachment.filename.endswith(".mp3")
            ]

        await self.until(lambda: len(found()) >= count, f"{count} songs in {channel.name}")
        return found()[:count]


def _quoted(payload: object) -> str | None:
    """The id of the message a create call quotes, if any."""
    if not isinstance(payload, dict):
        return None
    reference = payload.get("message_reference") or {}
    return str(reference["message_id"]) if "message_id" in reference else None


@pytest.fixture
async def chats(
    soundforge: Soundforge, spotify_catalog: Catalog, audio_source: AudioSource
) -> AsyncIterator[Chats]:
    # A new Discord app has no Message Content intent, and SoundForge needs none.
    standin = DiscordStandIn(message_content_granted=False)
    async with TelegramStandIn() as telegram, standin as discord:
        session = Chats(discord, telegram, soundforge, spotify_catalog, audio_source, [])
        try:
            yield session
        finally:
            for bot in session.started:
                if bot.process.returncode is None:
                    await bot.stop()


async def test_a_dm_link_arrives_as_a_tagged_attachment_with_its_cover(chats: Chats) -> None:
    link, _ = chats.track_link()
    bot = await chats.start_bot()
    discord = chats.discord
    dm = discord.dm_channel(discord.ann)

    # when Ann pastes the link in her DM with the bot
    pasted = await discord.send_dm(discord.ann, f"listen <{link}?si=xyz>")

    # then one reply says what was found and ends as done, and the song follows
    reply = await chats.reply_to(pasted)
    assert chats.first_text(reply).startswith(f"Found: {ARTIST} – Night Drive 1")
    [song] = await chats.songs(dm, 1)
    await chats.until(lambda: "Done" in reply.content, "the final state")
    assert song.filename == f"{ARTIST} - Night Drive 1.mp3"
    tags = ID3(io.BytesIO(song.data))
    assert tags["TIT2"].text == ["Night Drive 1"]
    assert tags["TPE1"].text == [ARTIST]
    assert tags["TALB"].text == ["Night Drive"]

    # and the cover shows beside it as the embed's thumbnail
    [posted] = [m for m in discord.bot_messages_in(dm) if song in m.attachments]
    [embed] = posted.embeds
    assert embed["title"] == "Night Drive 1"
    assert embed["thumbnail"]["url"] == "attachment://cover.jpg"
    [cover] = [a for a in posted.attachments if a.filename == "cover.jpg"]
    with Image.open(io.BytesIO(cover.data)) as image:
        assert image.format == "JPEG" and max(image.size) <= 320
    assert discord.rate_limited_calls == []
    assert discord.token not in bot.log

    # when the bot is stopped, both platforms are let go of cleanly
    assert await bot.stop() == 0
    assert "Discord adapter stopped" in bot.log
    assert "Telegram adapter stopped" in bot.log


async def test_get_in_a_server_channel_is_deferred_then_completed(chats: Chats) -> None:
    link, _ = chats.track_link()
    await chats.start_bot()
    discord = chats.discord
    [get] = [c for c in discord.global_commands if c["name"] == "get"]
    assert [(o["name"], o["required"]) for o in get["options"]] == [("link", True)]

    # when Ann runs /get with the link in #general
    record = await discord.slash(discord.ann, discord.general, "get", {"link": link})

    # then the command is acknowledged as "thinking", and that answer becomes the progress
    await chats.until(lambda: record.original_message_id is not None, "the acknowledgement")
    assert record.callbacks == [CALLBACK_DEFERRED_MESSAGE]
    assert record.original_message_id is not None
    reply = discord.messages[record.original_message_id]
    [song] = await chats.songs(discord.general, 1)
    await chats.until(lambda: "Done" in reply.content, "the final state")
    assert not reply.thinking
    assert chats.first_text(reply).startswith(f"Found: {ARTIST} – Night Drive 1")
    assert ID3(io.BytesIO(song.data))["TIT2"].text == ["Night Drive 1"]
    [posted] = [m for m in discord.bot_messages_in(discord.general) if song in m.attachments]
    assert posted.via == "followup"


async def test_an_album_is_one_reply_and_one_song_per_track_in_order(chats: Chats) -> None:
    link, tracks = chats.album_link(tracks=3)
    await chats.start_bot()
    discord = chats.discord
    dm = discord.dm_channel(discord.ann)

    pasted = await discord.send_dm(discord.ann, link)

    reply = await chats.reply_to(pasted)
    assert chats.first_text(reply).startswith(f"Found the album Night Drive by {ARTIST}: 3 tracks")
    songs = await chats.songs(dm, 3)
    await chats.until(lambda: "3/3 done" in reply.content, "the final count")
    assert [s.filename for s in songs] == [f"{ARTIST} - {t.name}.mp3" for t in tracks]
    texts = [m for m in discord.bot_messages_in(dm) if not m.attachments]
    assert texts == [reply]
    assert discord.rate_limited_calls == []


async def test_a_file_over_the_limit_comes_as_a_link_whose_bytes_match(chats: Chats) -> None:
    link, track = chats.track_link()
    chats.audio.set_duration(track.spotify_id, 40)
    bot = await chats.start_bot(DISCORD_UPLOAD_LIMIT_MB="1")
    discord = chats.discord
    dm = discord.dm_channel(discord.ann)

    pasted = await discord.send_dm(discord.ann, link)

    await chats.reply_to(pasted)
    await chats.until(
        lambda: any("too large for this chat" in m.content for m in discord.bot_messages_in(dm)),
        "the link",
    )
    [text] = [m.content for m in discord.bot_messages_in(dm) if "too large" in m.content]
    url = text.rsplit("\n", 1)[1]
    assert url.startswith(f"http://127.0.0.1:{bot.http_port}/files/")
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.get(url)
    [stored] = list(chats.soundforge.download_dir.rglob("*.mp3"))
    assert response.status_code == 200
    assert response.content == stored.read_bytes()
    assert len(response.content) > 1024 * 1024
    assert not any(m.attachments for m in discord.bot_messages_in(dm))


async def test_an_invalid_link_gets_one_sentence_with_discord_alone(chats: Chats) -> None:
    await chats.start_bot(("discord",))
    discord = chats.discord

    pasted = await discord.send_dm(discord.ann, "https://example.com/track/nothing")

    reply = await chats.reply_to(pasted)
    assert reply.content == InvalidLink().user_message
    assert chats.telegram.polls == 0


async def test_status_lists_a_running_request_and_cancel_ends_it(chats: Chats) -> None:
    link, track = chats.track_link()
    chats.audio.set_hanging(track.spotify_id)
    await chats.start_bot()
    discord = chats.discord
    dm = discord.dm_channel(discord.ann)
    pasted = await discord.send_dm(discord.ann, link)
    reply = await chats.reply_to(pasted)
    await chats.fetched(track.spotify_id)

    # when Ann asks for /status, she sees the request downloading
    asked = await discord.slash(discord.ann, dm, "status")
    await chats.until(lambda: asked.original_message_id is not None, "the acknowledgement")
    assert asked.original_message_id is not None
    status = discord.messages[asked.original_message_id]
    await chats.until(lambda: not status.thinking, "the /status answer")
    assert status.content.startswith("Running:")
    assert "Night Drive 1: downloading" in status.content

    # when she runs /cancel, the answer and the reply both say so
    cancel = await discord.slash(discord.ann, dm, "cancel")
    await chats.until(lambda: cancel.original_message_id is not None, "the acknowledgement")
    assert cancel.original_message_id is not None
    cancelled = discord.messages[cancel.original_message_id]
    await chats.until(lambda: cancelled.content == "Cancelled 1 download.", "the /cancel answer")
    await chats.until(lambda: reply.content.endswith("Cancelled."), "the cancelled reply")
    assert not any(m.attachments for m in discord.bot_messages_in(dm))


async def test_a_429_storm_in_a_channel_still_delivers_every_final_state(chats: Chats) -> None:
    album, tracks = chats.album_link("Storm", tracks=2)
    single, _ = chats.track_link("Calm")
    await chats.start_bot()
    discord = chats.discord
    general = discord.general

    # when Ann and Bob mention the bot with a link each, and the channel is then flooded
    asked = [
        await discord.send_guild_message(discord.ann, general, album, mention_bot=True),
        await discord.send_guild_message(discord.bob, general, single, mention_bot=True),
    ]
    replies = [await chats.reply_to(message) for message in asked]
    discord.inject_rate_limit(general, 1.5, times=4)

    # then both requests reach their final state, with all three songs
    await chats.songs(general, len(tracks) + 1)
    await chats.until(lambda: "2/2 done" in replies[0].content, "the album's final count")
    await chats.until(lambda: "Done" in replies[1].content, "the single's final state")
    assert len(discord.rate_limited_calls) >= 4
    assert discord.early_retries == 0, "the bot waits out each 429 before calling again"


async def test_both_platforms_importing_one_track_share_one_download(chats: Chats) -> None:
    warm_up, first = chats.track_link("Warm-up")
    link, track = chats.track_link()
    await chats.start_bot()
    discord = chats.discord
    dm = discord.dm_channel(discord.ann)

    # given what one download asks of the audio source (yt-dlp may ask more than once)
    chats.telegram.send_text(TG_ANNS_CHAT, TG_ANN, warm_up)
    await chats.telegram.wait_for(
        lambda: chats.telegram.audio_messages(TG_ANNS_CHAT.id), within_secs=WAIT_SECS
    )
    per_download = chats.audio.audio_requests[first.spotify_id]

    # when Ann pastes the same link on Telegram and on Discord at once
    chats.telegram.send_text(TG_ANNS_CHAT, TG_ANN, link)
    pasted = await discord.send_dm(discord.ann, link)

    # then each platform delivers the song, from one download between them
    [song] = await chats.songs(dm, 1)
    await chats.telegram.wait_for(
        lambda: len(chats.telegram.audio_messages(TG_ANNS_CHAT.id)) == 2, within_secs=WAIT_SECS
    )
    audio = chats.telegram.audio_messages(TG_ANNS_CHAT.id)[1]
    assert audio.title == "Night Drive 1"
    assert audio.file is not None and audio.file.data == song.data
    assert chats.audio.lookups[track.spotify_id] == 1
    assert chats.audio.audio_requests[track.spotify_id] == per_download
    reply = await chats.reply_to(pasted)
    await chats.until(lambda: "Done" in reply.content, "the final state on Discord")


async def test_a_restart_resumes_each_platforms_own_requests(chats: Chats) -> None:
    link, track = chats.track_link()
    chats.audio.set_hanging(track.spotify_id)
    bot = await chats.start_bot()
    discord = chats.discord
    dm = discord.dm_channel(discord.ann)
    chats.telegram.send_text(TG_ANNS_CHAT, TG_ANN, link)
    pasted = await discord.send_dm(discord.ann, link)
    reply = await chats.reply_to(pasted)
    await chats.fetched(track.spotify_id)

    # when the process dies mid-download and is started again
    bot.kill_hard()
    await bot.process.wait()
    chats.audio.clear(track.spotify_id)
    again = await chats.start_bot()

    # then each platform's request is delivered once, on its own platform
    await chats.songs(dm, 1)
    await chats.until(lambda: "Done" in reply.content, "the final state on Discord")
    await chats.telegram.wait_for(
        lambda: chats.telegram.audio_messages(TG_ANNS_CHAT.id), within_secs=WAIT_SECS
    )
    assert await again.stop() == 0
    assert len(chats.telegram.audio_messages(TG_ANNS_CHAT.id)) == 1
    assert len([m for m in discord.bot_messages_in(dm) if m.attachments]) == 1


async def test_a_rejected_discord_token_is_one_sentence_and_exit_1(chats: Chats) -> None:
    bot = await chats.start_bot(wait_ready=False, DISCORD_BOT_TOKEN="MTIz.not.the-token")

    status = await asyncio.wait_for(bot.process.wait(), WAIT_SECS)

    assert status == 1
    assert "Discord rejected the bot token in DISCORD_BOT_TOKEN" in bot.log
    assert "Traceback" not in bot.log
    assert "not.the-token" not in bot.log


async def test_a_stop_while_discord_cannot_connect_still_ends_the_run(chats: Chats) -> None:
    # given a gateway address where nothing listens (discord.py retries it without end)
    bot = await chats.start_bot(
        wait_ready=False, DISCORD_GATEWAY_URL=f"ws://127.0.0.1:{free_port()}/gateway"
    )
    await chats.until(lambda: chats.discord.global_commands, "the slash commands to sync")

    # when the service manager stops it, it ends cleanly with both adapters let go of
    assert await bot.stop() == 0
    assert "Discord bot is running" not in bot.log
    assert "Telegram adapter stopped" in bot.log
    assert "Discord adapter stopped" in bot.log


async def test_without_a_token_run_names_both_variables(soundforge: Soundforge) -> None:
    soundforge.env = {
        k: v for k, v in soundforge.env.items() if not k.startswith(("TELEGRAM", "DISCORD"))
    }

    done = await soundforge.run("run")

    assert done.returncode == 1
    assert "TELEGRAM_BOT_TOKEN" in done.stderr
    assert "DISCORD_BOT_TOKEN" in done.stderr
