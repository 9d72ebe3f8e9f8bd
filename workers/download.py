"""The download handler behind the `download` actor, and the worker runtimes around it.

A message names one job. The handler claims it together with other waiting jobs of
the same quality, so one spotdl run (and one spotdl start-up) serves the batch.
Embedded, `EmbeddedWorkers` starts the worker only when the first job is queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Coroutine, Sequence
from typing import TypeVar

import dramatiq
from dramatiq.asyncio import get_event_loop_thread

from config.settings import Quality, Settings
from core.errors import DownloadFailed, SoundForgeError
from core.events import EventBus
from core.jobs import (
    HEARTBEAT_INTERVAL_SECS,
    ClaimedJob,
    JobStore,
    new_worker_id,
    requeue_unfinished,
)
from core.queue import JobQueue
from core.types import JobEvent, JobStatus
from storage.db import Database
from storage.layout import final_path
from workers.broker import DramatiqQueue, build_broker, declare_download_actor
from workers.runner import RunItem, RunOutcome, SpotdlRunner

_log = logging.getLogger(__name__)

T = TypeVar("T")

# Progress is written to the row when the stage changes or it moved this many points.
PROGRESS_WRITE_STEP = 5
# How long stopping may wait for the running batch to give its jobs back (seconds).
STOP_TIMEOUT_SECS = 10.0
# How often a worker looks for jobs whose worker died (seconds).
SWEEP_INTERVAL_SECS = 15.0
# How long an embedded Dramatiq thread waits on an empty queue before it looks again (ms);
# stopping waits this out once per thread (Dramatiq's default of 1000 added ~2 s to an import).
EMBEDDED_IDLE_WAIT_MS = 100


class DownloadHandler:
    """Runs the jobs a message names; its resources open on the worker's own event loop."""

    def __init__(self, settings: Settings, bus: EventBus, queue: JobQueue) -> None:
        self.settings = settings
        self.bus = bus
        self.queue = queue
        self.worker_id = new_worker_id()
        self.runner = SpotdlRunner(settings)
        self._db: Database | None = None
        # Every coroutine of a handler runs on the worker's one event loop, so an asyncio
        # lock serialises the first open (a thread lock would block that loop for good).
        self._open_lock: asyncio.Lock | None = None
        self.running: set[asyncio.Task[None]] = set()
        self.stopping = False

    async def _store(self) -> JobStore:
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if self._db is None:
                database = Database(self.settings.database_url)
                await database.open(migrate=False)
                self._db = database
        return JobStore(self._db)

    async def __call__(self, job_id: int) -> None:
        if self.stopping:
            # The job stays queued in the database; the next start queues it again.
            return
        store = await self._store()
        batch = await store.claim_batch(job_id, self.worker_id, self.settings.download_batch_size)
        if not batch:
            _log.debug("Job %s is taken, finished or waiting; message dropped.", job_id)
            return
        task = asyncio.current_task()
        if task is not None:
            self.running.add(task)
        try:
            await self._run_batch(store, batch)
        except asyncio.CancelledError:
            if not self.stopping:
                raise
            # Our own shutdown cancelled the batch and its jobs are back in the queue: the
            # message is done with, not failed.
            _log.info("Worker %s gave back the jobs of message %s.", self.worker_id, job_id)
        finally:
            if task is not None:
                self.running.discard(task)

    async def _run_batch(self, store: JobStore, batch: list[ClaimedJob]) -> None:
        quality = Quality(batch[0].quality)
        ids = [job.job_id for job in batch]
        _log.info("Worker %s runs jobs %s at %s.", self.worker_id, ids, quality.value)
        for job in batch:
            await self.bus.publish(JobEvent(job.job_id, JobStatus.DOWNLOADING, 0, "starting"))

        written: dict[int, tuple[int, str]] = {}

        async def on_progress(job_id: int, progress: int, message: str) -> None:
            await self.bus.publish(JobEvent(job_id, JobStatus.DOWNLOADING, progress, message))
            last = written.get(job_id)
            if last is None or last[1] != message or progress - last[0] >= PROGRESS_WRITE_STEP:
                written[job_id] = (progress, message)
                await store.set_progress(job_id, self.worker_id, progress, message)

        items = [
            RunItem(
                job_id=job.job_id,
                meta=job.meta,
                final_path=final_path(
                    self.settings.download_dir,
                    job.meta.spotify_id,
                    job.meta.artist,
                    job.meta.title,
                    quality,
                ),
            )
            for job in batch
        ]

        # Run spotdl while a heartbeat shows the jobs are held; stop if all are cancelled.
        run = asyncio.create_task(self.runner.run(items, quality, on_progress), name="spotdl-run")
        beat = asyncio.create_task(self._heartbeat(store, ids, run), name="job-heartbeat")
        try:
            outcomes = await run
        except asyncio.CancelledError:
            if not run.cancelled():
                run.cancel()
            released = await store.release(ids, self.worker_id)
            if released and not beat.done():
                raise
            _log.info("Jobs %s were cancelled while downloading.", ids)
            return
        except Exception:
            _log.exception("The spotdl run for jobs %s failed unexpectedly.", ids)
            outcomes = {job_id: _unexpected() for job_id in ids}
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

        # Record each job's outcome; passing faults go back to the queue with backoff.
        for job_id in ids:
            outcome = outcomes.get(job_id) or _unexpected()
            if outcome.error is None and outcome.path is not None:
                if await store.complete(job_id, self.worker_id, outcome.path, outcome.file_size):
                    await self.bus.publish(JobEvent(job_id, JobStatus.COMPLETED, 100, "done"))
                continue
            error = outcome.error or DownloadFailed("spotdl left no file")
            result = await store.fail(
                job_id,
                self.worker_id,
                error,
                max_attempts=self.settings.download_max_retries + 1,
                backoff_secs=self.settings.download_retry_backoff_secs,
            )
            if result is None:
                continue
            _log.warning(
                "Job %s: %s (%s).", job_id, error.code, error.detail or error.user_message
            )
            await self.bus.publish(JobEvent(job_id, result.status, 0, result.message))
            if result.retry_in_secs is not None:
                self.queue.enqueue([job_id], delay_secs=result.retry_in_secs)

    async def _heartbeat(
        self, store: JobStore, ids: Sequence[int], run: asyncio.Task[object]
    ) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL_SECS / 3)
            await store.heartbeat(ids, self.worker_id)
            if not await store.any_held(ids, self.worker_id):
                _log.info("Every job of %s was cancelled; stopping spotdl.", list(ids))
                run.cancel()
                return

    async def recover(self) -> list[int]:
        """Queue again the jobs left waiting or held by a dead worker."""
        return await requeue_unfinished(await self._store(), self.queue)

    async def shutdown(self) -> None:
        """Take no more messages, stop running batches (their jobs go back), then close."""
        self.stopping = True
        running = list(self.running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await self.close()

    async def close(self) -> None:
        """Release the database."""
        if self._db is not None:
            await self._db.close()
            self._db = None


def _unexpected() -> RunOutcome:
    return RunOutcome(error=DownloadFailed("the spotdl run ended without a result"))


class WorkerRuntime:
    """A Dramatiq worker for the `download` queue, in this process.

    Embedded (no REDIS_URL) it shares the process with the chats or the import
    command; scaled it is what `soundforge worker` runs.
    """

    def __init__(self, settings: Settings, bus: EventBus) -> None:
        self.settings = settings
        self.broker = build_broker(settings)
        self.queue = DramatiqQueue(declare_download_actor(self.broker, self._handle))
        self.handler = DownloadHandler(settings, bus, self.queue)
        self._worker: dramatiq.Worker | None = None

    async def _handle(self, job_id: int) -> None:
        try:
            await self.handler(job_id)
        except SoundForgeError as exc:
            _log.error("Job %s could not run: %s", job_id, exc.user_message, exc_info=exc)

    def start(self) -> None:
        """Start the worker thread; jobs run on Dramatiq's asyncio loop."""
        # Each Dramatiq thread finishes its idle wait before it stops. Embedded, the queue is
        # in memory and a short wait costs nothing, so `soundforge import` exits promptly.
        options = {"worker_timeout": EMBEDDED_IDLE_WAIT_MS} if self.settings.embedded else {}
        self._worker = dramatiq.Worker(
            self.broker, queues={"download"}, worker_threads=1, **options
        )
        self._worker.start()
        _log.info("Download worker %s started.", self.handler.worker_id)

    def run_on_loop(self, coro: Coroutine[object, object, T]) -> T:
        """Run a coroutine on the worker's event loop and wait for its result."""
        loop_thread = get_event_loop_thread()
        if loop_thread is None:
            raise RuntimeError("the download worker has not started")
        return loop_thread.run_coroutine(coro)

    def stop(self) -> None:
        """Stop taking messages; a running batch is stopped and its jobs given back."""
        if self._worker is None:
            return
        loop_thread = get_event_loop_thread()
        if loop_thread is not None:
            stopping = asyncio.run_coroutine_threadsafe(self.handler.shutdown(), loop_thread.loop)
            try:
                stopping.result(timeout=STOP_TIMEOUT_SECS)
            except Exception:
                _log.warning("The download worker did not give its jobs back in time.")
        self._worker.stop(timeout=int(STOP_TIMEOUT_SECS * 1000))
        self._worker = None
        self.broker.close()
        _log.info("Download worker %s stopped.", self.handler.worker_id)


class EmbeddedWorkers:
    """The embedded job queue: starts an in-process `WorkerRuntime` on the first job queued.

    An import of something already downloaded queues nothing, so it never pays for
    starting and stopping Dramatiq's threads.
    """

    def __init__(self, settings: Settings, bus: EventBus) -> None:
        self.settings = settings
        self.bus = bus
        self.runtime: WorkerRuntime | None = None
        self._lock = threading.Lock()

    def enqueue(self, job_ids: Sequence[int], *, delay_secs: float = 0) -> None:
        """Queue each job, starting the worker first when none runs yet."""
        if not job_ids:
            return
        with self._lock:
            if self.runtime is None:
                runtime = WorkerRuntime(self.settings, self.bus)
                runtime.start()
                self.runtime = runtime
            runtime = self.runtime
        runtime.queue.enqueue(job_ids, delay_secs=delay_secs)

    def stop(self) -> None:
        """Stop the worker if one was started (see `WorkerRuntime.stop`)."""
        with self._lock:
            runtime, self.runtime = self.runtime, None
        if runtime is not None:
            runtime.stop()
