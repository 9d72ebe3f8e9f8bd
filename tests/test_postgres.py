"""The PostgreSQL path for real: migrations, the schema, the import service and the job store.

Each test gets a new database on a throwaway server (tests/fixtures/postgres.py). The
service and store checks mirror tests/test_jobs.py, which runs them on SQLite; here they
also run side by side from several connection pools, as a bot and its workers do.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, insert, select, text, update

from config.settings import Quality
from core.errors import DownloadFailed, StorageError
from core.jobs import STALE_HEARTBEAT_SECS, JobStore
from core.service import ImportService, Requester
from core.types import LinkKind, SpotifyLink, TrackList
from storage.chat import ChatMemory
from storage.db import Database, alembic_config
from storage.models import Base, DownloadJob, Request, Track
from tests.fakes_import import FakeMetadata, RecordingQueue
from tests.fixtures import postgres as postgres_fixtures
from tests.fixtures.cli import Soundforge
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.storage import make_track, make_tracklist
from tests.standins.spotify import Catalog

TRACK_A = "4uLU6hMCjMI75M1A2tKUQC"
TRACK_B = "7ouMYWpwJ422jRcDASZB7P"
ALBUM = "1DFixLWuPkv3KT3TnV35m3"
BIG_ALBUM = "5Z9iiGl2FcIfa3BMiv6OIw"
WORLD_TRACK = "0WorldTrack0000000000a"
WORLD_PLAYLIST = "37i9dQZF1DXcBWIGoYBM5M"
UP_PLAYLIST = "0UpUpUpUpUpUpUpUpUpUpU"
DOWN_PLAYLIST = "0DownDownDownDownDownD"
# Tracks on BIG_ALBUM, and how many workers race for them.
BIG_ALBUM_TRACKS = 12
RACING_WORKERS = 4
# Tracks both UP_PLAYLIST and DOWN_PLAYLIST hold, in opposite orders.
SHARED = [make_track(f"shared{n:016d}", f"Shared {n}") for n in range(20)]
# How long a test waits for sessions to block on each other before it gives up.
LOCK_WAIT_LIMIT_SECS = 30.0

ME = Requester("cli", "me")

WORLD = make_track(
    WORLD_TRACK,
    "Back / In Black \\ Ночь 🌙",
    artists=["AC/DC", "坂本龍一", "Ørjan Ñandú"],
    album="Ночь/День: 夜と昼",
    album_artist="AC/DC",
    publisher="Étiquette / 레이블",
    genres=["j-pop", "синтвейв"],
    copyright="© 2020 Ölfus/Records",
)


def _lists() -> dict[str, TrackList]:
    big = [make_track(f"big{n:019d}", f"Big {n}") for n in range(BIG_ALBUM_TRACKS)]
    return {
        TRACK_A: make_tracklist(LinkKind.TRACK, TRACK_A, [make_track(TRACK_A, "One")]),
        ALBUM: make_tracklist(
            LinkKind.ALBUM, ALBUM, [make_track(TRACK_A, "One"), make_track(TRACK_B, "Two")]
        ),
        BIG_ALBUM: make_tracklist(LinkKind.ALBUM, BIG_ALBUM, big),
        WORLD_PLAYLIST: TrackList(
            SpotifyLink(LinkKind.PLAYLIST, WORLD_PLAYLIST), "Mix / Микс / ミックス", [WORLD]
        ),
        UP_PLAYLIST: TrackList(SpotifyLink(LinkKind.PLAYLIST, UP_PLAYLIST), "Up", SHARED),
        DOWN_PLAYLIST: TrackList(
            SpotifyLink(LinkKind.PLAYLIST, DOWN_PLAYLIST), "Down", SHARED[::-1]
        ),
    }


def _service(db: Database, http: httpx.AsyncClient) -> tuple[ImportService, RecordingQueue]:
    queue = RecordingQueue()
    service = ImportService(db, FakeMetadata(_lists()), queue, http, default_quality=Quality.HIGH)
    return service, queue


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def service(
    postgres_database: Database, http: httpx.AsyncClient
) -> tuple[ImportService, RecordingQueue]:
    return _service(postgres_database, http)


@pytest.fixture
async def other_databases(
    postgres_url: str, postgres_database: Database
) -> AsyncIterator[list[Database]]:
    """More processes' worth of connection pools on the same, already migrated database."""
    databases = [Database(postgres_url) for _ in range(RACING_WORKERS)]
    for db in databases:
        await db.open(migrate=False)
    yield databases
    for db in databases:
        await db.close()


async def _count(db: Database, model: type[Base]) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _job(db: Database, job_id: int) -> DownloadJob:
    async with db.session() as session:
        job = await session.get(DownloadJob, job_id)
        assert job is not None
        return job


async def _until_blocked(db: Database, count: int, tasks: list[asyncio.Task[Any]]) -> None:
    """Return once `count` sessions wait for a lock, or once one of `tasks` has ended."""
    deadline = asyncio.get_running_loop().time() + LOCK_WAIT_LIMIT_SECS
    while not any(task.done() for task in tasks):
        async with db.engine.connect() as conn:
            waiting = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        if waiting >= count:
            return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"{count} sessions never waited for a lock; {waiting} did")
        await asyncio.sleep(0.02)


# --- the test server itself


def test_missing_postgresql_programs_fail_the_run_and_name_the_setup_script(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(postgres_fixtures, "PG_BIN_GLOB", "/nonexistent/postgresql/*/bin")

    with pytest.raises(pytest.fail.Exception, match="run scripts/setup"):
        postgres_fixtures._bin_dir()


# --- migrations and schema


async def test_migrations_started_by_several_processes_at_once_apply_once(
    postgres_url: str,
) -> None:
    # given an empty database and three processes starting together
    databases = [Database(postgres_url) for _ in range(3)]

    # when each applies the migrations as it opens
    opened = await asyncio.gather(*(db.open() for db in databases), return_exceptions=True)
    for db in databases:
        await db.close()

    # then all three opened, and the database sits at the newest revision
    assert [str(outcome) for outcome in opened if outcome is not None] == []
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    async with Database(postgres_url) as db, db.engine.connect() as conn:
        versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    assert [version for (version,) in versions] == [head]


async def test_migrated_schema_matches_the_models(postgres_database: Database) -> None:
    # Base.metadata holds the chat tables too: storage.chat is imported above.
    async with postgres_database.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    assert diff == []


async def test_a_wrong_password_is_one_error_that_names_the_server_but_not_the_password(
    postgres_server: PostgresServer,
) -> None:
    wrong = dataclasses.replace(postgres_server, password="wrong-password")

    with pytest.raises(StorageError) as raised:
        await Database(wrong.url("postgres")).open()

    sentence = raised.value.user_message
    assert sentence.startswith("The database could not be opened; check DATABASE_URL")
    assert f"127.0.0.1:{postgres_server.port}" in sentence
    assert "password authentication failed" in sentence
    assert "wrong-password" not in sentence and "wrong-password" not in str(raised.value)


# --- the import service


async def test_the_same_album_imported_at_once_by_two_processes_shares_rows(
    service, other_databases: list[Database], http: httpx.AsyncClient
) -> None:
    imports, _ = service
    elsewhere, _ = _service(other_databases[0], http)
    link = SpotifyLink(LinkKind.ALBUM, BIG_ALBUM)

    # when two processes store the same album at the same moment
    here, there = await asyncio.gather(imports.start(link, ME), elsewhere.start(link, ME))

    # then both requests point at the same jobs, one per track
    assert here.job_ids == there.job_ids
    assert len(set(here.job_ids)) == BIG_ALBUM_TRACKS
    assert await _count(other_databases[0], DownloadJob) == BIG_ALBUM_TRACKS


async def test_playlists_sharing_tracks_in_opposite_orders_are_stored_at_once(
    other_databases: list[Database], http: httpx.AsyncClient
) -> None:
    up, _ = _service(other_databases[0], http)
    down, _ = _service(other_databases[1], http)
    middle = SHARED[len(SHARED) // 2]

    # given a third process storing the middle track right now, in an open transaction
    async with other_databases[2].engine.connect() as blocker:
        await blocker.begin()
        await blocker.execute(
            insert(Track).values(
                spotify_id=middle.spotify_id,
                title=middle.title,
                artists=middle.artists,
                album=middle.album,
                album_id=middle.album_id,
                album_artist=middle.album_artist,
                duration_ms=middle.duration_ms,
            )
        )

        # when both playlists are imported, each has stored its half and waits for the middle,
        # and then that third process gives up
        tasks = [
            asyncio.create_task(up.start(SpotifyLink(LinkKind.PLAYLIST, UP_PLAYLIST), ME)),
            asyncio.create_task(down.start(SpotifyLink(LinkKind.PLAYLIST, DOWN_PLAYLIST), ME)),
        ]
        await _until_blocked(other_databases[3], 2, tasks)
        await blocker.rollback()
        stored_up, stored_down = await asyncio.gather(*tasks)

    # then both requests were stored, with the same jobs in opposite orders
    assert stored_down.job_ids == stored_up.job_ids[::-1]
    assert len(set(stored_up.job_ids)) == len(SHARED)


async def test_non_latin_names_and_slashes_come_back_unchanged(
    service, postgres_database: Database
) -> None:
    imports, _ = service

    started = await imports.start(
        SpotifyLink(LinkKind.PLAYLIST, WORLD_PLAYLIST), Requester("telegram", "Юлия/42", "чат")
    )

    # then the request and the job show the names as Spotify gave them
    view = await imports.view(started.request_id)
    assert view is not None
    assert view.name == "Mix / Микс / ミックス"
    assert view.user_id == "Юлия/42" and view.chat_id == "чат"
    assert view.jobs[0].title == WORLD.title
    assert view.jobs[0].artists == ("AC/DC", "坂本龍一", "Ørjan Ñandú")
    # and the worker gets back exactly the metadata that was stored
    [claimed] = await JobStore(postgres_database).claim_batch(started.job_ids[0], "w1", 1)
    assert claimed.meta == WORLD


async def test_chat_choices_and_file_ids_are_replaced_by_the_newest(
    postgres_database: Database,
) -> None:
    memory = ChatMemory(postgres_database)

    # when a person changes their quality, and a track is uploaded twice
    await memory.set_quality("telegram", "Юлия/42", "low")
    await memory.set_quality("telegram", "Юлия/42", "lossless")
    await memory.remember_file_id("telegram", "bot", TRACK_A, "high", "first-id")
    await memory.remember_file_id("telegram", "bot", TRACK_A, "high", "second-id")

    # then the newest of each is what the bot reads back
    assert await memory.quality("telegram", "Юлия/42") == "lossless"
    assert await memory.file_id("telegram", "bot", TRACK_A, "high") == "second-id"
    await memory.forget_file_id("telegram", "bot", TRACK_A, "high")
    assert await memory.file_id("telegram", "bot", TRACK_A, "high") is None


# --- the job store


async def test_workers_claiming_at_once_take_each_job_exactly_once(
    service, other_databases: list[Database]
) -> None:
    imports, _ = service
    album = await imports.start(SpotifyLink(LinkKind.ALBUM, BIG_ALBUM), ME)

    # when a message for every job reaches a worker at the same moment, each worker in
    # its own process, each taking batches of three
    stores = [JobStore(db) for db in other_databases]
    batches = await asyncio.gather(
        *(
            stores[n % len(stores)].claim_batch(job_id, f"w{n % len(stores)}", 3)
            for n, job_id in enumerate(album.job_ids)
        )
    )

    # then every job was taken once, by the worker the database names
    taken = [job.job_id for batch in batches for job in batch]
    assert sorted(taken) == album.job_ids
    for n, batch in enumerate(batches):
        for claimed in batch:
            job = await _job(other_databases[0], claimed.job_id)
            assert job.worker_id == f"w{n % len(stores)}"


async def test_a_job_whose_worker_went_silent_elsewhere_is_taken_back(
    service, postgres_database: Database
) -> None:
    imports, _ = service
    started = await imports.start(SpotifyLink(LinkKind.TRACK, TRACK_A), ME)
    job_id = started.job_ids[0]
    store = JobStore(postgres_database)
    await store.claim_batch(job_id, "other-host:1:cafe", 1)

    # given its last heartbeat is older than the limit
    long_ago = datetime.now(UTC) - timedelta(seconds=2 * STALE_HEARTBEAT_SECS)
    async with postgres_database.session() as session:
        await session.execute(
            update(DownloadJob).where(DownloadJob.id == job_id).values(heartbeat_at=long_ago)
        )

    # then a starting process queues it again and another worker may take it
    assert await store.recoverable() == [job_id]
    [claimed] = await store.claim_batch(job_id, "w2", 1)
    assert claimed.attempts == 2


async def test_timestamps_come_back_timezone_aware_and_unshifted(
    service, postgres_database: Database
) -> None:
    imports, _ = service
    started = await imports.start(SpotifyLink(LinkKind.TRACK, TRACK_A), ME)
    job_id = started.job_ids[0]
    store = JobStore(postgres_database)
    await store.claim_batch(job_id, "w1", 1)
    await store.fail(job_id, "w1", DownloadFailed("reset"), max_attempts=3, backoff_secs=60)

    # given a moment written in a zone other than UTC
    kolkata = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    async with postgres_database.session() as session:
        await session.execute(
            update(Request).where(Request.id == started.request_id).values(finished_at=kolkata)
        )

    # then every timestamp is read back with a zone, and the same instant as written
    job = await _job(postgres_database, job_id)
    assert job.created_at.utcoffset() == timedelta(0)
    assert job.heartbeat_at is not None and job.heartbeat_at.utcoffset() == timedelta(0)
    assert job.retry_at is not None and job.retry_at - job.heartbeat_at >= timedelta(seconds=60)
    async with postgres_database.session() as session:
        request = await session.get(Request, started.request_id)
    assert request is not None and request.finished_at == kolkata
    assert request.finished_at.utcoffset() == timedelta(0)


# --- end to end


@pytest.mark.e2e
async def test_scaled_mode_on_postgresql_runs_jobs_on_a_separate_worker(
    soundforge: Soundforge, spotify_catalog: Catalog, redis_url: str, postgres_url: str
) -> None:
    # given an album of two tracks, and a worker and an import sharing Redis and PostgreSQL
    artist = spotify_catalog.add_artist("Ørjan & The Sines", ["synthwave"])
    album = spotify_catalog.add_album("Night / Drive", artist, tracks=2)
    wanted = sorted(track.spotify_id for track in spotify_catalog.album_tracks(album))
    scaled = {"REDIS_URL": redis_url, "DATABASE_URL": postgres_url}

    # when the album is imported
    worker = await soundforge.start("worker", **scaled)
    try:
        done = await soundforge.run(
            "import", f"https://open.spotify.com/album/{album.spotify_id}", "--json", **scaled
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        _, worker_err = await asyncio.wait_for(worker.communicate(), 60)

    # then the worker downloaded both tracks and the rows live in PostgreSQL alone
    assert done.returncode == 0, done.stderr + worker_err.decode()
    assert sorted(record["spotify_id"] for record in done.records) == wanted
    assert {record["status"] for record in done.records} == {"completed"}
    assert all(Path(record["output_path"]).is_file() for record in done.records)
    assert "Download worker" in worker_err.decode()
    assert not soundforge.database_path.exists()
    async with Database(postgres_url) as db, db.session() as session:
        rows = await session.execute(
            select(Track.spotify_id, DownloadJob.status).join(
                DownloadJob, DownloadJob.track_id == Track.id
            )
        )
        assert sorted(rows.all()) == [(spotify_id, "completed") for spotify_id in wanted]
