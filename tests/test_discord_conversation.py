"""The neutral conversation on Discord: the real adapter and discord.py against the stand-in.

Spotify is replaced by a table of track lists and the workers by the test itself, which
finishes a job by writing its row and file and publishing its event, as a worker would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from bot.conversation import COMMANDS, Conversation
from bot.discord import DiscordAdapter
from config.settings import Quality
from core.errors import InvalidLink
from core.events import InProcessBus
from core.service import ImportService
from core.types import JobEvent, JobStatus, LinkKind, SpotifyLink, TrackList
from storage.chat import ChatMemory
from storage.db import Database
from storage.models import DownloadJob, RequestItem
from tests.fakes_import import RecordingQueue
from tests.fixtures.discord import (
    DISCORD_COMMANDS,
    GUILD_READY_SECS,
    MakeDiscordStandIn,
    discord_settings,
)
from tests.fixtures.storage import make_track
from tests.standins.discord import CALLBACK_DEFERRED_MESSAGE, DiscordStandIn

TRACK_ID = "4uLU6hMCjMI75M1A2tKUQC"
TRACK_URL = f"https://open.spotify.com/track/{TRACK_ID}"


class TrackLists:
    """The metadata source: track lists by Spotify id."""

    def __init__(self) -> None:
        track = make_track(TRACK_ID, "Song", artists=["Artist"], duration_ms=187_000)
        self.lists = {TRACK_ID: TrackList(SpotifyLink(LinkKind.TRACK, TRACK_ID), "Song", [track])}

    async def read(self, link: SpotifyLink, *, user_token: str | None = None) -> TrackList:
        return self.lists[link.spotify_id]


@dataclass
class World:
    stand_in: DiscordStandIn
    conversation: Conversation
    memory: ChatMemory
    bus: InProcessBus
    db: Database
    files: Path

    async def finish(self, job_id: int, size: int = 4096) -> None:
        """Play the worker: write the file and the row, then publish the event."""
        path = self.files / f"job{job_id}.mp3"
        path.write_bytes(b"ID3" + bytes(size - 3))
        values = {
            "status": "completed",
            "progress": 100,
            "message": "done",
            "output_path": str(path),
            "file_size": size,
        }
        async with self.db.session() as session:
            await session.execute(
                update(DownloadJob).where(DownloadJob.id == job_id).values(values)
            )
        await self.bus.publish(JobEvent(job_id, JobStatus.COMPLETED, 100, "done"))

    async def job_ids(self) -> list[int]:
        async with self.db.session() as session:
            rows = await session.scalars(select(RequestItem.job_id).order_by(RequestItem.job_id))
            return list(dict.fromkeys(rows.all()))


def no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected HTTP request to {request.url}")


@pytest.fixture
async def world(
    database: Database, make_discord_standin: MakeDiscordStandIn, tmp_path: Path
) -> AsyncIterator[World]:
    stand_in = await make_discord_standin()
    adapter = DiscordAdapter(
        discord_settings(stand_in, tmp_path), guild_ready_timeout_secs=GUILD_READY_SECS
    )
    bus = InProcessBus()
    files = tmp_path / "files"
    files.mkdir()
    async with httpx.AsyncClient(transport=httpx.MockTransport(no_network)) as http:
        imports = ImportService(
            database, TrackLists(), RecordingQueue(), http, default_quality=Quality.HIGH
        )
        memory = ChatMemory(database)
        conversation = Conversation(
            adapter,
            imports,
            bus,
            memory,
            lambda job_id: f"http://127.0.0.1:1/files/token-{job_id}",
            link_ttl_secs=3600,
            sweep_interval_secs=0.2,
        )
        # The conversation's own commands, with /get's link as Discord needs it.
        commands = [c for c in DISCORD_COMMANDS if c.name in {k.name for k in COMMANDS}]
        await adapter.start(conversation.handle, commands)
        runner = asyncio.create_task(conversation.run(), name="test:conversation")
        yield World(stand_in, conversation, memory, bus, database, files)
        runner.cancel()
        await conversation.close()
        with pytest.raises(asyncio.CancelledError):
            await runner
        await adapter.stop()


async def test_get_in_a_server_channel_is_answered_then_delivered(world: World) -> None:
    stand_in = world.stand_in

    record = await stand_in.slash(stand_in.ann, stand_in.general, "get", {"link": TRACK_URL})
    await stand_in.wait_until(
        lambda: any("Found" in m.content for m in stand_in.bot_messages_in(stand_in.general))
    )
    [job_id] = await world.job_ids()
    await world.finish(job_id)
    await stand_in.wait_until(lambda: len(stand_in.bot_messages_in(stand_in.general)) == 2)
    reply, audio = stand_in.bot_messages_in(stand_in.general)
    await stand_in.wait_until(lambda: "Done" in reply.content)

    assert record.callbacks == [CALLBACK_DEFERRED_MESSAGE]
    assert reply.via == "interaction"
    assert reply.content.startswith("Artist – Song\nDone ✓")
    assert audio.via == "followup"
    [song] = audio.attachments
    assert song.filename == "Artist - Song.mp3"
    assert song.data == (world.files / f"job{job_id}.mp3").read_bytes()


async def test_quality_buttons_set_the_quality_and_edit_their_message(world: World) -> None:
    stand_in = world.stand_in
    dm = stand_in.dm_channel(stand_in.ann)

    await stand_in.slash(stand_in.ann, dm, "quality")
    await stand_in.wait_until(lambda: any(m.buttons for m in stand_in.bot_messages_in(dm)))
    [prompt] = stand_in.bot_messages_in(dm)
    labels = [label for label, _ in prompt.buttons]
    await stand_in.press(stand_in.ann, prompt, "quality:low")
    await stand_in.wait_until(lambda: prompt.content.startswith("Quality set"))

    assert labels == [
        "Lossless (FLAC)",
        "✓ High (320 kbit/s)",
        "Medium (192 kbit/s)",
        "Low (128 kbit/s)",
    ]
    assert prompt.buttons == []
    assert prompt.content == "Quality set to Low (128 kbit/s). It applies to your next requests."
    assert await world.memory.quality("discord", str(stand_in.ann.id)) == "low"


async def test_a_dm_without_a_link_gets_the_sentence_as_a_reply(world: World) -> None:
    stand_in = world.stand_in
    dm = stand_in.dm_channel(stand_in.ann)

    question = await stand_in.send_dm(stand_in.ann, "play something nice")
    await stand_in.wait_until(lambda: bool(stand_in.bot_messages_in(dm)))

    [answer] = stand_in.bot_messages_in(dm)
    assert answer.reference_id == question.id
    assert answer.content == InvalidLink().user_message
