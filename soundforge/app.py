"""The composition root: builds every shared resource from the settings and wires them.

Only this package sees both `bot/` and `workers/`; each command opens what it needs
here with `async with` and hands it down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from config.settings import Settings
from core.errors import SoundForgeError
from core.events import EventBus, InProcessBus, RedisBus
from core.fallback import SpotdlMetadata
from core.jobs import JobStore, requeue_unfinished
from core.metadata import MetadataReader
from core.queue import JobQueue
from core.service import ImportService
from core.spotify import SpotifyClient, TokenStore
from storage.db import Database
from storage.layout import prepare_download_dir
from workers.broker import DramatiqQueue, build_broker, check_redis, declare_download_actor
from workers.download import SWEEP_INTERVAL_SECS, EmbeddedWorkers, WorkerRuntime

_log = logging.getLogger(__name__)

HTTP_TIMEOUT_SECS = 20.0


@dataclass
class Services:
    """What every command shares: the database, the event bus, the queue, the import service."""

    settings: Settings
    db: Database
    bus: EventBus
    queue: JobQueue
    http: httpx.AsyncClient
    imports: ImportService
    workers: EmbeddedWorkers | None


@contextlib.asynccontextmanager
async def open_services(settings: Settings, *, embedded_workers: bool) -> AsyncIterator[Services]:
    """Open the database, bus, queue and import service; run workers here when embedded.

    With `REDIS_URL` set, jobs go to Redis for `soundforge worker` processes; without it,
    `embedded_workers` must be true and the jobs run in this process, on a worker started
    when the first job is queued.
    """
    check_redis(settings)
    prepare_download_dir(settings.download_dir)
    db = Database(settings.database_url)
    await db.open()
    bus: EventBus = RedisBus(settings.redis_url) if settings.redis_url else InProcessBus()
    workers: EmbeddedWorkers | None = None
    queue: JobQueue
    try:
        if settings.redis_url:
            queue = DramatiqQueue(declare_download_actor(build_broker(settings)))
        else:
            if not embedded_workers:
                raise RuntimeError("without REDIS_URL the workers must run in this process")
            workers = EmbeddedWorkers(settings, bus)
            queue = workers
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECS) as http:
            spotify = SpotifyClient(settings, http, TokenStore(settings.data_dir))
            reader = MetadataReader(settings, spotify, SpotdlMetadata(settings))
            imports = ImportService(
                db, reader, queue, http, default_quality=settings.default_quality
            )
            sweeper: asyncio.Task[None] | None = None
            if workers is not None:
                await requeue_unfinished(JobStore(db), workers)
                sweeper = asyncio.create_task(_sweep(db, workers), name="embedded:job-sweep")
            try:
                yield Services(settings, db, bus, queue, http, imports, workers)
            finally:
                if sweeper is not None:
                    sweeper.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sweeper
                if workers is not None:
                    await asyncio.to_thread(workers.stop)
    finally:
        await bus.close()
        await db.close()


async def _sweep(db: Database, queue: JobQueue) -> None:
    """Now and then, queue again jobs whose worker died (another process sharing the db)."""
    while True:
        await asyncio.sleep(SWEEP_INTERVAL_SECS)
        try:
            await requeue_unfinished(JobStore(db), queue)
        except SoundForgeError as exc:
            _log.warning("Looking for abandoned jobs failed: %s", exc.detail)


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    """`soundforge worker`: download jobs from Redis until `stop` is set."""
    check_redis(settings)
    prepare_download_dir(settings.download_dir)
    db = Database(settings.database_url)
    await db.open()
    await db.close()
    assert settings.redis_url
    bus = RedisBus(settings.redis_url)
    workers = WorkerRuntime(settings, bus)
    workers.start()
    try:
        while True:
            await asyncio.to_thread(workers.run_on_loop, workers.handler.recover())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SWEEP_INTERVAL_SECS)
                break
    finally:
        await asyncio.to_thread(workers.stop)
        await bus.close()
