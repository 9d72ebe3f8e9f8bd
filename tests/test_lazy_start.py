"""A command pays only for what it uses: Alembic, redis and the download worker load on need."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from dramatiq.asyncio import get_event_loop_thread
from sqlalchemy import text

from config.settings import Quality, Settings
from core.service import ImportService, JobView, Requester
from core.types import JobStatus, LinkKind, SpotifyLink
from soundforge.app import open_services
from storage.db import HEAD_REVISION, Database, alembic_config
from tests.fakes_import import FakeMetadata, RecordingQueue
from tests.fixtures.storage import make_track, make_tracklist

ROOT = Path(__file__).resolve().parent.parent
TRACK = "4uLU6hMCjMI75M1A2tKUQC"

# Opens the services on the database named in argv[1] and queues nothing, as a repeat import
# does; prints what was loaded and whether a download worker ran.
OPEN_AND_CLOSE = """
import asyncio, json, sys
from dramatiq.asyncio import get_event_loop_thread
from config.settings import Settings
from soundforge.app import open_services

async def main():
    settings = Settings(
        _env_file=None, database_url=sys.argv[1], download_dir=sys.argv[2], redis_url=None
    )
    async with open_services(settings, embedded_workers=True):
        worker = get_event_loop_thread() is not None
    loaded = [name for name in ("alembic", "redis") if name in sys.modules]
    print(json.dumps({"loaded": loaded, "worker": worker}))

asyncio.run(main())
"""


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def test_the_head_revision_constant_is_alembics_head() -> None:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head == HEAD_REVISION


async def test_a_database_behind_the_head_is_upgraded_when_opened(tmp_path: Path) -> None:
    # Given a database taken back to its first revision
    url = sqlite_url(tmp_path / "soundforge.db")
    async with Database(url) as db, db.engine.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0001"))

    # When it is opened
    async with Database(url) as db, db.engine.connect() as conn:
        versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        settings_rows = (await conn.execute(text("SELECT count(*) FROM user_settings"))).all()

    # Then it is at the head again, with the later revision's tables
    assert [version for (version,) in versions] == [HEAD_REVISION]
    assert settings_rows == [(0,)]


def test_services_on_an_up_to_date_database_load_no_alembic_no_redis_and_no_worker(
    tmp_path: Path,
) -> None:
    # Given a database at the head
    url = sqlite_url(tmp_path / "soundforge.db")
    asyncio.run(_migrate(url))

    # When a new process opens the services on it and queues nothing
    done = subprocess.run(
        [sys.executable, "-c", OPEN_AND_CLOSE, url, str(tmp_path / "downloads")],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # Then it loaded neither Alembic nor redis, and started no download worker
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"loaded": [], "worker": False}


@pytest.mark.timeout(60)
async def test_a_job_an_earlier_process_left_queued_is_run_on_the_next_start(
    tmp_path: Path,
) -> None:
    # Given a job queued by a process that ended before any worker took it
    settings = Settings(
        _env_file=None,
        database_url=sqlite_url(tmp_path / "soundforge.db"),
        download_dir=tmp_path / "downloads",
        redis_url=None,
        spotdl_command=str(tmp_path / "no-such-spotdl"),
    )
    job_id = await _leave_a_queued_job(settings)

    # When the services open again
    async with open_services(settings, embedded_workers=True) as services:
        # Then the embedded worker takes the job and brings it to its final state
        job = await _final_job(services.imports, job_id)
        assert get_event_loop_thread() is not None

    assert job.status is JobStatus.FAILED
    assert "spotdl is not installed" in job.message
    # And the worker stopped with the services
    assert get_event_loop_thread() is None


async def _migrate(url: str) -> None:
    async with Database(url):
        pass


async def _leave_a_queued_job(settings: Settings) -> int:
    tracks = {TRACK: make_tracklist(LinkKind.TRACK, TRACK, [make_track(TRACK, "Left")])}
    async with Database(settings.database_url) as db, httpx.AsyncClient() as http:
        imports = ImportService(
            db, FakeMetadata(tracks), RecordingQueue(), http, default_quality=Quality.HIGH
        )
        started = await imports.start(SpotifyLink(LinkKind.TRACK, TRACK), Requester("cli", "me"))
    return started.job_ids[0]


async def _final_job(imports: ImportService, job_id: int) -> JobView:
    while True:
        for view in await imports.recent("cli", "me"):
            for job in view.jobs:
                if job.job_id == job_id and job.status.final:
                    return job
        await asyncio.sleep(0.1)
