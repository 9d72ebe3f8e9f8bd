"""The import service and the job store, on SQLite and on PostgreSQL."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from config.settings import Quality
from core.errors import DownloadFailed, SourceNotFound
from core.jobs import JobStore
from core.service import ImportService, Requester
from core.types import JobStatus, LinkKind, SpotifyLink
from storage.db import Database
from tests.fakes_import import FakeMetadata, RecordingQueue
from tests.fixtures.storage import make_track, make_tracklist

TRACK_A = "4uLU6hMCjMI75M1A2tKUQC"
TRACK_B = "7ouMYWpwJ422jRcDASZB7P"
ALBUM = "1DFixLWuPkv3KT3TnV35m3"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Database:
    """Each test here runs on SQLite and on a real PostgreSQL server."""
    name = "sqlite_database" if request.param == "sqlite" else "postgres_database"
    return request.getfixturevalue(name)


@pytest.fixture
async def service(database: Database):
    lists = {
        TRACK_A: make_tracklist(LinkKind.TRACK, TRACK_A, [make_track(TRACK_A, "One")]),
        ALBUM: make_tracklist(
            LinkKind.ALBUM, ALBUM, [make_track(TRACK_A, "One"), make_track(TRACK_B, "Two")]
        ),
    }
    queue = RecordingQueue()
    async with httpx.AsyncClient() as http:
        yield (
            ImportService(
                database, FakeMetadata(lists), queue, http, default_quality=Quality.HIGH
            ),
            queue,
        )


ME = Requester("cli", "me")


async def test_a_track_imported_twice_shares_its_row_and_job(service) -> None:
    imports, _ = service

    # when the same track is asked for alone and inside an album
    first = await imports.start(SpotifyLink(LinkKind.TRACK, TRACK_A), ME)
    second = await imports.start(SpotifyLink(LinkKind.ALBUM, ALBUM), ME)

    # then the album's first job is the track's job, and two jobs exist in all
    assert second.job_ids[0] == first.job_ids[0]
    assert len(set(first.job_ids + second.job_ids)) == 2


async def test_a_finished_file_is_reused_without_a_new_job(
    service, database: Database, tmp_path: Path
) -> None:
    imports, queue = service
    first = await imports.start(SpotifyLink(LinkKind.TRACK, TRACK_A), ME)
    store = JobStore(database)
    [claimed] = await store.claim_batch(first.job_ids[0], "w1", 5)
    song = tmp_path / "song.mp3"
    song.write_bytes(b"x" * 10)
    assert await store.complete(claimed.job_id, "w1", song, 10)
    queue.sent.clear()

    # when the track is asked for again
    again = await imports.start(SpotifyLink(LinkKind.TRACK, TRACK_A), ME)

    # then nothing is queued and the request already shows the file
    assert queue.sent == []
    assert again.reused == 1
    view = await imports.view(again.request_id)
    assert view is not None and view.finished
    assert view.jobs[0].file == song


async def test_a_finished_job_whose_file_vanished_is_downloaded_again(
    service, database: Database, tmp_path: Path
) -> None:
    imports, queue = service
    first = await imports.start(SpotifyLink(LinkKind.TRACK, TRACK_A), ME)
    store = JobStore(database)
    await store.claim_batch(first.job_ids[0], "w1", 5)
    await store.complete(first.job_ids[0], "w1", tmp_path / "gone.mp3", 10)
    queue.sent.clear()

    again = await imports.start(SpotifyLink(LinkKind.TRACK, TRACK_A), ME)

    assert queue.sent == again.job_ids
    view = await imports.view(again.request_id)
    assert view is not None and view.jobs[0].status is JobStatus.QUEUED


async def test_a_claim_is_exclusive_and_takes_waiting_jobs_of_the_same_quality(
    service, database: Database
) -> None:
    imports, _ = service
    album = await imports.start(SpotifyLink(LinkKind.ALBUM, ALBUM), ME)
    store = JobStore(database)

    # when one worker claims the first job, it takes the album's other job too
    batch = await store.claim_batch(album.job_ids[0], "w1", 10)
    assert [job.job_id for job in batch] == album.job_ids
    assert batch[0].meta.title == "One"

    # then a duplicate message for either job finds nothing to do
    assert await store.claim_batch(album.job_ids[0], "w2", 10) == []
    assert await store.claim_batch(album.job_ids[1], "w2", 10) == []


async def test_passing_faults_back_off_then_fail_for_good(service, database: Database) -> None:
    imports, _ = service
    started = await imports.start(SpotifyLink(LinkKind.TRACK, TRACK_A), ME)
    job_id = started.job_ids[0]
    store = JobStore(database)

    # when the first attempt hits a passing fault
    await store.claim_batch(job_id, "w1", 1)
    outcome = await store.fail(
        job_id, "w1", DownloadFailed("reset"), max_attempts=2, backoff_secs=30
    )

    # then it waits 30 s before any worker may take it
    assert outcome is not None and outcome.status is JobStatus.QUEUED
    assert outcome.retry_in_secs == 30
    assert await store.claim_batch(job_id, "w1", 1) == []


async def test_a_permanent_fault_fails_at_once_and_a_new_request_retries_it(
    service, database: Database
) -> None:
    imports, queue = service
    started = await imports.start(SpotifyLink(LinkKind.TRACK, TRACK_A), ME)
    job_id = started.job_ids[0]
    store = JobStore(database)
    await store.claim_batch(job_id, "w1", 1)

    outcome = await store.fail(
        job_id, "w1", SourceNotFound("no match"), max_attempts=4, backoff_secs=1
    )
    assert outcome is not None and outcome.status is JobStatus.FAILED
    view = await imports.view(started.request_id)
    assert view is not None and view.jobs[0].error == "No audio source has this track."

    # a later request gives the track another chance
    queue.sent.clear()
    await imports.start(SpotifyLink(LinkKind.TRACK, TRACK_A), ME)
    assert queue.sent == [job_id]


async def test_jobs_held_by_a_dead_local_worker_are_recovered(service, database: Database) -> None:
    imports, _ = service
    started = await imports.start(SpotifyLink(LinkKind.ALBUM, ALBUM), ME)
    store = JobStore(database)
    dead = subprocess.run(  # noqa: ASYNC221 - a child that has exited, for its pid
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    worker_id = f"{socket.gethostname()}:{dead.stdout.strip()}:deadbeef"
    batch = await store.claim_batch(started.job_ids[0], worker_id, 10)
    assert len(batch) == 2

    # when a new process starts, it takes both jobs back at once
    assert await store.recoverable() == started.job_ids
    assert [j.job_id for j in await store.claim_batch(started.job_ids[0], "w2", 10)] == (
        started.job_ids
    )


async def test_cancel_stops_only_the_askers_own_jobs(service, database: Database) -> None:
    imports, _ = service
    mine = await imports.start(SpotifyLink(LinkKind.ALBUM, ALBUM), ME)
    await imports.start(SpotifyLink(LinkKind.TRACK, TRACK_A), Requester("cli", "someone else"))

    cancelled = await imports.cancel_user("cli", "me")

    # the track someone else also asked for keeps going
    assert cancelled == [mine.job_ids[1]]
    view = await imports.view(mine.request_id)
    assert view is not None and view.status == "cancelled"
