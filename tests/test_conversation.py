"""The neutral conversation against a fake chat, a real database and hand-driven jobs.

The workers are played by the tests: a job is finished by writing its row and its file
and publishing its event, as a worker would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from bot.conversation import DELIVERY_ATTEMPTS, Conversation
from bot.errors import ChatUnavailable, Forbidden, TooLarge
from bot.port import ChatRef, IncomingMessage
from config.settings import Quality
from core.errors import InvalidLink, SpotifyForbidden
from core.events import InProcessBus
from core.service import ImportService
from core.types import JobEvent, JobStatus, LinkKind, SpotifyLink, TrackList
from storage.chat import ChatMemory
from storage.db import Database
from storage.models import DownloadJob, Request, RequestItem
from tests.fakes import FakeChat
from tests.fakes_import import RecordingQueue
from tests.fixtures.storage import make_track

PRIVATE = ChatRef("fake", "100", True)
GROUP = ChatRef("fake", "-200", False)
TRACK_URL = "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC"
ALBUM_URL = "https://open.spotify.com/album/1DFixLWuPkv3KT3TnV35m3"
PLAYLIST_URL = "https://open.spotify.com/playlist/37i9dQZF1DXcBWIGoYBM5M"
TRACK_ID = "4uLU6hMCjMI75M1A2tKUQC"


class FakeMetadata:
    """Track lists by Spotify id; an error by id raises instead; a gate by id holds the read."""

    def __init__(self) -> None:
        self.lists: dict[str, TrackList] = {}
        self.errors: dict[str, Exception] = {}
        self.gates: dict[str, asyncio.Event] = {}
        self.reading: list[str] = []

    async def read(self, link: SpotifyLink, *, user_token: str | None = None) -> TrackList:
        self.reading.append(link.spotify_id)
        if link.spotify_id in self.gates:
            await self.gates[link.spotify_id].wait()
        if link.spotify_id in self.errors:
            raise self.errors[link.spotify_id]
        return self.lists[link.spotify_id]


@dataclass
class World:
    chat: FakeChat
    conversation: Conversation
    imports: ImportService
    metadata: FakeMetadata
    bus: InProcessBus
    db: Database
    memory: ChatMemory
    queue: RecordingQueue
    files: Path

    async def say(self, text: str, chat: ChatRef = PRIVATE, **fields: Any) -> None:
        await self.conversation.handle(
            IncomingMessage(chat=chat, user_id="u1", user_name="ann", text=text, **fields)
        )

    async def finish(self, job_id: int, *, size: int = 4096, fail: str | None = None) -> None:
        """Play the worker: write the file and the row, then publish the event."""
        if fail is not None:
            values: dict[str, Any] = {"status": "failed", "message": fail, "progress": 0}
            event = JobEvent(job_id, JobStatus.FAILED, 0, fail)
        else:
            path = self.files / f"job{job_id}.mp3"
            path.write_bytes(b"ID3" + bytes(size - 3))
            values = {
                "status": "completed",
                "progress": 100,
                "message": "done",
                "output_path": str(path),
                "file_size": size,
            }
            event = JobEvent(job_id, JobStatus.COMPLETED, 100, "done")
        async with self.db.session() as session:
            await session.execute(
                update(DownloadJob).where(DownloadJob.id == job_id).values(values)
            )
        await self.bus.publish(event)

    async def progress(self, job_id: int, percent: int) -> None:
        async with self.db.session() as session:
            await session.execute(
                update(DownloadJob)
                .where(DownloadJob.id == job_id)
                .values(status="downloading", progress=percent, message="downloading")
            )
        await self.bus.publish(JobEvent(job_id, JobStatus.DOWNLOADING, percent, "downloading"))

    async def job_ids(self) -> list[int]:
        async with self.db.session() as session:
            rows = await session.scalars(select(RequestItem.job_id).order_by(RequestItem.job_id))
            return list(dict.fromkeys(rows.all()))

    async def requests(self) -> list[Request]:
        async with self.db.session() as session:
            return list((await session.scalars(select(Request).order_by(Request.id))).all())


async def until(predicate: Callable[[], Any], what: str = "condition") -> Any:
    """Wait for `predicate()` to hold while the conversation works; fail after 10 s."""
    async with asyncio.timeout(10):
        while not (value := predicate()):  # noqa: ASYNC110 - the fakes signal nothing
            await asyncio.sleep(0.01)
    return value


def no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected HTTP request to {request.url}")


def album(spotify_id: str, count: int) -> TrackList:
    tracks = [make_track(f"{spotify_id}{n:02d}", f"Song {n + 1}") for n in range(count)]
    return TrackList(SpotifyLink(LinkKind.ALBUM, spotify_id), "The Album", tracks)


def single(spotify_id: str = "4uLU6hMCjMI75M1A2tKUQC") -> TrackList:
    track = make_track(spotify_id, "Song", artists=["Artist", "Guest"], duration_ms=187_000)
    return TrackList(SpotifyLink(LinkKind.TRACK, spotify_id), "Song", [track])


@pytest.fixture
async def world(database: Database, tmp_path: Path) -> AsyncIterator[World]:
    chat = FakeChat(edit_interval_secs=0.0)
    metadata = FakeMetadata()
    metadata.lists["4uLU6hMCjMI75M1A2tKUQC"] = single()
    metadata.lists["1DFixLWuPkv3KT3TnV35m3"] = album("alb", 3)
    bus = InProcessBus()
    queue = RecordingQueue()
    files = tmp_path / "files"
    files.mkdir()
    async with httpx.AsyncClient(transport=httpx.MockTransport(no_network)) as http:
        imports = ImportService(database, metadata, queue, http, default_quality=Quality.HIGH)
        memory = ChatMemory(database)
        conversation = Conversation(
            chat,
            imports,
            bus,
            memory,
            lambda job_id: f"http://127.0.0.1:1/files/token-{job_id}",
            link_ttl_secs=3600,
            sweep_interval_secs=0.2,
        )
        runner = asyncio.create_task(conversation.run())
        await asyncio.sleep(0)
        yield World(chat, conversation, imports, metadata, bus, database, memory, queue, files)
        runner.cancel()
        await conversation.close()
        with pytest.raises(asyncio.CancelledError):
            await runner


async def test_a_pasted_track_is_answered_at_once_with_what_was_found(world: World) -> None:
    await world.say(f"hey {TRACK_URL}")

    [reply] = world.chat.in_chat(PRIVATE)
    assert reply.text.splitlines()[0] == "Found: Artist, Guest – Song"
    assert "Album: Album · 3:07" in reply.text
    [request] = await world.requests()
    assert request.reply_message_id == reply.message_id
    assert world.queue.sent == await world.job_ids()


async def test_a_track_goes_from_found_to_done_and_its_audio_is_posted(world: World) -> None:
    await world.say(TRACK_URL)
    [job_id] = await world.job_ids()

    await world.progress(job_id, 40)
    await until(lambda: "40%" in world.chat.texts(PRIVATE)[0])
    await world.finish(job_id)

    [audio] = await until(lambda: world.chat.audio(PRIVATE))
    assert audio.audio is not None
    assert (audio.audio.title, audio.audio.performer, audio.audio.duration_secs) == (
        "Song",
        "Artist, Guest",
        187,
    )
    await until(lambda: "Done" in world.chat.texts(PRIVATE)[0])
    await until(lambda: world.conversation.following == 0)
    [request] = await world.requests()
    assert request.status == "finished"
    assert len(world.chat.audio(PRIVATE)) == 1


async def test_an_album_counts_its_tracks_and_posts_each_in_order(world: World) -> None:
    await world.say(ALBUM_URL)
    first, second, third = await world.job_ids()

    await world.finish(second)
    await world.finish(first, fail="No audio source has this track.")
    await until(lambda: "1/3 done, 1 failed" in world.chat.texts(PRIVATE)[0])
    await world.finish(third)

    await until(lambda: len(world.chat.audio(PRIVATE)) == 2)
    titles = [m.audio.title for m in world.chat.audio(PRIVATE) if m.audio]
    assert titles == ["Song 2", "Song 3"]
    final = await until(
        lambda: next((t for t in world.chat.texts(PRIVATE) if "Finished" in t), None)
    )
    assert "2/3 done, 1 failed" in final
    assert "Song 1: No audio source has this track." in final


async def test_a_message_without_a_link_gets_one_sentence_and_no_request(world: World) -> None:
    await world.say("hello there")

    assert world.chat.texts(PRIVATE) == [InvalidLink().user_message]
    assert await world.requests() == []


async def test_a_refused_playlist_gets_its_own_sentence(world: World) -> None:
    error = SpotifyForbidden("playlist", "37i9dQZF1DXcBWIGoYBM5M")
    world.metadata.errors["37i9dQZF1DXcBWIGoYBM5M"] = error

    await world.say(PLAYLIST_URL)

    assert world.chat.texts(PRIVATE) == [error.user_message]
    assert "collaborator" in error.user_message
    assert await world.requests() == []


async def test_an_unexpected_failure_never_reaches_the_chat_raw(world: World) -> None:
    world.metadata.errors["4uLU6hMCjMI75M1A2tKUQC"] = RuntimeError("secret detail")

    await world.say(TRACK_URL)

    [text] = world.chat.texts(PRIVATE)
    assert "secret detail" not in text
    assert "please try again" in text


async def test_group_chatter_is_ignored_but_get_is_answered(world: World) -> None:
    await world.say(TRACK_URL, chat=GROUP)
    assert world.chat.in_chat(GROUP) == []

    await world.say(TRACK_URL, chat=GROUP, command="get")

    assert world.chat.texts(GROUP)[0].startswith("Found:")


async def test_get_without_a_link_explains_itself(world: World) -> None:
    await world.say("", command="get")

    assert world.chat.texts(PRIVATE) == [
        "Send /get with a Spotify link, for example /get https://open.spotify.com/track/…"
    ]


async def test_help_explains_the_bot(world: World) -> None:
    await world.say("", command="help")

    [text] = world.chat.texts(PRIVATE)
    assert "/quality" in text and "/status" in text and "/cancel" in text


async def test_a_track_sent_before_is_sent_again_by_its_file_id(world: World) -> None:
    await world.say(TRACK_URL)
    [job_id] = await world.job_ids()
    await world.finish(job_id)
    await until(lambda: world.conversation.following == 0)

    await world.say(TRACK_URL)

    await until(lambda: len(world.chat.audio(PRIVATE)) == 2)
    first, again = world.chat.audio(PRIVATE)
    assert first.uploaded and not again.uploaded
    assert again.file_id == first.file_id


async def test_a_refused_file_id_is_forgotten_and_the_file_uploaded(world: World) -> None:
    await world.memory.remember_file_id("fake", "fake-bot", "4uLU6hMCjMI75M1A2tKUQC", "high", "x")
    await world.say(TRACK_URL)
    [job_id] = await world.job_ids()

    await world.finish(job_id)

    [audio] = await until(lambda: world.chat.audio(PRIVATE))
    await until(lambda: world.conversation.following == 0)
    assert audio.uploaded
    remembered = await world.memory.file_id("fake", "fake-bot", "4uLU6hMCjMI75M1A2tKUQC", "high")
    assert remembered == audio.file_id


async def test_a_file_over_the_chat_limit_is_sent_as_a_link(world: World) -> None:
    world.chat.upload_limit_bytes = 1000
    await world.say(TRACK_URL)
    [job_id] = await world.job_ids()

    await world.finish(job_id, size=5000)

    link_text = await until(
        lambda: next((t for t in world.chat.texts(PRIVATE) if "too large" in t), None)
    )
    assert link_text.endswith(f"http://127.0.0.1:1/files/token-{job_id}")
    assert world.chat.audio(PRIVATE) == []


async def test_a_file_the_platform_calls_too_large_is_sent_as_a_link(world: World) -> None:
    world.chat.fail_next("send_audio", TooLarge("Request Entity Too Large"))
    await world.say(TRACK_URL)
    [job_id] = await world.job_ids()

    await world.finish(job_id)

    await until(lambda: any("too large" in t for t in world.chat.texts(PRIVATE)))


async def test_quality_offers_four_buttons_and_remembers_the_choice(world: World) -> None:
    await world.say("", command="quality")
    [prompt] = world.chat.in_chat(PRIVATE)
    assert prompt.buttons is not None
    assert [b.data for b in prompt.buttons] == [
        "quality:lossless",
        "quality:high",
        "quality:medium",
        "quality:low",
    ]

    await world.say("", button="quality:low", message_id=prompt.message_id)
    await world.say(TRACK_URL)

    assert world.chat.in_chat(PRIVATE)[0].text.startswith("Quality set to Low")
    [request] = await world.requests()
    assert request.quality == "low"


async def test_status_lists_the_askers_requests(world: World) -> None:
    await world.say(TRACK_URL)

    await world.say("", command="status")

    status = world.chat.texts(PRIVATE)[-1]
    assert status.splitlines()[:2] == ["Running:", "• Artist, Guest – Song: waiting"]


async def test_cancel_stops_the_askers_jobs_and_finishes_the_reply(world: World) -> None:
    await world.say(ALBUM_URL)

    await world.say("", command="cancel")

    assert world.chat.texts(PRIVATE)[-1] == "Cancelled 3 downloads."
    await until(lambda: world.chat.texts(PRIVATE)[0].endswith("Cancelled."))
    async with world.db.session() as session:
        statuses = set((await session.scalars(select(DownloadJob.status))).all())
    assert statuses == {"cancelled"}


async def test_a_deleted_reply_still_gets_its_audio(world: World) -> None:
    await world.say(TRACK_URL)
    [job_id] = await world.job_ids()
    [reply] = world.chat.in_chat(PRIVATE)
    world.chat.delete(reply)  # type: ignore[arg-type]

    await world.progress(job_id, 50)
    await world.finish(job_id)

    await until(lambda: world.chat.audio(PRIVATE))


async def test_after_a_restart_open_requests_reach_their_final_state_once(
    world: World, database: Database
) -> None:
    await world.say(TRACK_URL)
    [job_id] = await world.job_ids()
    await world.conversation.close()  # the process dies before the job finishes
    await world.finish(job_id)
    revived = Conversation(
        world.chat,
        world.imports,
        world.bus,
        world.memory,
        lambda job_id: "unused",
        link_ttl_secs=60,
    )

    assert await revived.resume() == 1
    await until(lambda: world.chat.audio(PRIVATE))
    await until(lambda: revived.following == 0)
    assert "Done" in world.chat.texts(PRIVATE)[0]

    assert await revived.resume() == 0
    await revived.close()
    assert len(world.chat.audio(PRIVATE)) == 1


async def test_one_file_for_many_chats_is_uploaded_once(world: World) -> None:
    other = ChatRef("fake", "300", True)
    await world.say(TRACK_URL)
    await world.conversation.handle(
        IncomingMessage(chat=other, user_id="u2", user_name="bo", text=TRACK_URL)
    )
    [job_id] = await world.job_ids()

    await world.finish(job_id)

    [mine] = await until(lambda: world.chat.audio(PRIVATE))
    [theirs] = await until(lambda: world.chat.audio(other))
    assert [mine.uploaded, theirs.uploaded].count(True) == 1
    assert mine.file_id == theirs.file_id


async def test_a_request_made_while_the_bot_starts_is_not_resumed_as_a_crashed_one(
    world: World,
) -> None:
    # given the open requests read before the adapter started (none)
    left_open = await world.imports.open_requests(world.chat.platform)

    # when a link arrives before `resume` runs
    await world.say(TRACK_URL, message_id="m1")
    [job_id] = await world.job_ids()

    # then neither way of resuming takes it over, and its song still quotes the link
    assert await world.conversation.resume(left_open) == 0
    assert await world.conversation.resume() == 0
    await world.finish(job_id)
    [audio] = await until(lambda: world.chat.audio(PRIVATE))
    assert audio.reply_to == "m1"
    assert len(world.chat.texts(PRIVATE)) == 1


async def delivered(world: World) -> list[bool]:
    """Whether each request item is recorded as delivered."""
    async with world.db.session() as session:
        rows = await session.scalars(select(RequestItem.delivered_at).order_by(RequestItem.job_id))
        return [moment is not None for moment in rows.all()]


async def test_audio_the_platform_keeps_failing_to_take_goes_as_a_link_in_the_end(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a chat that fails every posting of the file, and no patience left for it
    monkeypatch.setattr("bot.conversation.DELIVERY_RETRY_SECS", 0.0)
    monkeypatch.setattr("bot.conversation.DELIVERY_GIVE_UP_SECS", 0.0)
    for _ in range(DELIVERY_ATTEMPTS):
        world.chat.fail_next("send_audio", ChatUnavailable("Bad Gateway"))
    await world.say(TRACK_URL)
    [job_id] = await world.job_ids()

    # When the track is downloaded
    await world.finish(job_id)

    # Then the person gets a sentence with a link to the file instead, and that counts
    text = await until(
        lambda: next((t for t in world.chat.texts(PRIVATE) if "could not post" in t), None)
    )
    assert text.startswith("I could not post Artist, Guest – Song in this chat")
    assert text.endswith(f"http://127.0.0.1:1/files/token-{job_id}")
    await until(lambda: world.conversation.following == 0)
    assert world.chat.audio(PRIVATE) == []
    assert await delivered(world) == [True]


async def test_a_chat_that_refuses_the_bot_ends_the_request_without_a_delivery(
    world: World,
) -> None:
    # Given a chat that no longer lets the bot post files
    world.chat.fail_next("send_audio", Forbidden("bot was blocked by the user"))
    await world.say(TRACK_URL)
    [job_id] = await world.job_ids()

    # When the track is downloaded
    await world.finish(job_id)

    # Then the request reaches its final state, and nothing claims the audio arrived
    await until(lambda: world.conversation.following == 0)
    [request] = await world.requests()
    assert request.status == "finished"
    assert world.chat.audio(PRIVATE) == []
    assert await delivered(world) == [False]


async def test_a_finished_track_whose_file_vanished_gets_a_sentence(world: World) -> None:
    await world.say(TRACK_URL)
    [job_id] = await world.job_ids()
    async with world.db.session() as session:
        await session.execute(
            update(DownloadJob)
            .where(DownloadJob.id == job_id)
            .values(status="completed", progress=100, output_path=str(world.files / "gone.mp3"))
        )

    await world.bus.publish(JobEvent(job_id, JobStatus.COMPLETED, 100, "done"))

    text = await until(
        lambda: next((t for t in world.chat.texts(PRIVATE) if "no longer find" in t), None)
    )
    assert text == (
        f"I can no longer find the file of Artist, Guest – Song; send {TRACK_URL} again to "
        "fetch it."
    )
    await until(lambda: world.conversation.following == 0)
    assert await delivered(world) == [False]


async def test_a_link_being_read_when_the_bot_died_is_answered_after_the_restart(
    world: World,
) -> None:
    # Given a bot reading a pasted track from a slow Spotify
    world.metadata.gates[TRACK_ID] = asyncio.Event()
    pasting = asyncio.create_task(world.say(TRACK_URL, message_id="m1"))
    await until(lambda: world.metadata.reading)

    # When the bot dies then, and starts again with Spotify quick
    pasting.cancel()
    await asyncio.gather(pasting, return_exceptions=True)
    await world.conversation.close()
    del world.metadata.gates[TRACK_ID]
    revived = Conversation(
        world.chat,
        world.imports,
        world.bus,
        world.memory,
        lambda job_id: "unused",
        link_ttl_secs=60,
    )
    runner = asyncio.create_task(revived.run())
    left_open = await world.imports.open_requests(world.chat.platform)
    assert await revived.resume(left_open) == 1

    # Then the person's message gets its answer, and the audio follows, once
    [reply] = await until(lambda: world.chat.in_chat(PRIVATE))
    # (the first text: progress may already have edited it by the time we look)
    first_text = reply.history[0][1]
    assert first_text.startswith("Found: Artist, Guest – Song")
    assert reply.reply_to == "m1"
    [job_id] = await world.job_ids()
    await world.finish(job_id)
    [audio] = await until(lambda: world.chat.audio(PRIVATE))
    assert audio.reply_to == "m1"
    await until(lambda: revived.following == 0)
    assert await revived.resume() == 0
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    await revived.close()
    assert len(world.chat.audio(PRIVATE)) == 1
    [request] = await world.requests()
    assert request.status == "finished"


async def test_a_link_that_cannot_be_read_after_the_restart_gets_its_sentence(
    world: World,
) -> None:
    # Given a pasted playlist whose reading the bot did not live to finish
    world.metadata.gates["37i9dQZF1DXcBWIGoYBM5M"] = asyncio.Event()
    pasting = asyncio.create_task(world.say(PLAYLIST_URL, message_id="m2"))
    await until(lambda: world.metadata.reading)
    pasting.cancel()
    await asyncio.gather(pasting, return_exceptions=True)
    await world.conversation.close()

    # When the restarted bot reads it again and Spotify refuses it
    error = SpotifyForbidden("playlist", "37i9dQZF1DXcBWIGoYBM5M")
    world.metadata.errors["37i9dQZF1DXcBWIGoYBM5M"] = error
    del world.metadata.gates["37i9dQZF1DXcBWIGoYBM5M"]
    revived = Conversation(
        world.chat, world.imports, world.bus, world.memory, lambda job_id: "", link_ttl_secs=60
    )
    assert await revived.resume() == 1
    await revived.wait_idle()

    # Then the person is told why, under their message, and no request is left behind
    [told] = world.chat.in_chat(PRIVATE)
    assert (told.text, told.reply_to) == (error.user_message, "m2")
    assert await world.requests() == []
    await revived.close()


async def test_status_leaves_out_a_link_still_being_read(world: World) -> None:
    world.metadata.gates[TRACK_ID] = asyncio.Event()
    pasting = asyncio.create_task(world.say(TRACK_URL))
    await until(lambda: world.metadata.reading)

    await world.say("", command="status")

    assert world.chat.texts(PRIVATE) == ["You have no requests yet: send me a Spotify link."]
    world.metadata.gates[TRACK_ID].set()
    await pasting
    assert world.chat.texts(PRIVATE)[-1].startswith("Found:")
