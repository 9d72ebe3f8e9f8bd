"""Download job state in the database: claims, progress, outcomes and recovery.

Dramatiq delivers each message at least once, so every change here is a guarded
update: a job is only taken when it is still free, and a job already finished is
never touched again by a late duplicate.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from core.errors import DownloadError
from core.queue import JobQueue
from core.types import JobStatus, TrackMeta
from storage.db import Database
from storage.models import DownloadJob, Track, as_utc, utcnow

_log = logging.getLogger(__name__)

# A downloading job whose worker has not written a heartbeat for this long is free again.
STALE_HEARTBEAT_SECS = 90.0
HEARTBEAT_INTERVAL_SECS = 15.0


def new_worker_id() -> str:
    """An id naming this host and process, so recovery can tell a dead local worker."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _worker_is_dead(worker_id: str | None) -> bool:
    """True when `worker_id` names a process on this host that no longer runs."""
    if not worker_id:
        return True
    host, _, rest = worker_id.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _held(job_ids: Sequence[int], worker_id: str) -> ColumnElement[bool]:
    """Jobs among `job_ids` that `worker_id` still holds (not finished, cancelled or lost)."""
    return and_(
        DownloadJob.id.in_(job_ids),
        DownloadJob.worker_id == worker_id,
        DownloadJob.status == JobStatus.DOWNLOADING.value,
    )


def track_meta(track: Track) -> TrackMeta:
    """The stored row as the metadata the runner needs."""
    extra = track.extra or {}
    return TrackMeta(
        spotify_id=track.spotify_id,
        title=track.title,
        artists=list(track.artists),
        album=track.album,
        album_id=track.album_id,
        album_artist=track.album_artist,
        duration_ms=track.duration_ms,
        track_number=track.track_number,
        disc_number=track.disc_number,
        disc_count=track.disc_count,
        tracks_count=track.tracks_count,
        release_date=track.release_date,
        isrc=track.isrc,
        publisher=track.publisher,
        genres=list(track.genres or []),
        cover_url=track.cover_url,
        explicit=track.explicit,
        copyright=track.copyright,
        popularity=extra.get("popularity"),
        artist_id=extra.get("artist_id"),
        album_type=extra.get("album_type"),
    )


@dataclass(frozen=True)
class ClaimedJob:
    """A job this worker now holds, with what it needs to download it."""

    job_id: int
    quality: str
    attempts: int
    meta: TrackMeta


@dataclass(frozen=True)
class Outcome:
    """What became of a job after a run."""

    status: JobStatus
    message: str
    retry_in_secs: float | None = None


class JobStore:
    """Reads and changes download jobs; every change is safe to repeat."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _claimable(self, now: datetime) -> ColumnElement[bool]:
        stale = now - timedelta(seconds=STALE_HEARTBEAT_SECS)
        return or_(
            and_(
                DownloadJob.status == JobStatus.QUEUED.value,
                or_(DownloadJob.retry_at.is_(None), DownloadJob.retry_at <= now),
            ),
            and_(
                DownloadJob.status == JobStatus.DOWNLOADING.value,
                DownloadJob.heartbeat_at < stale,
            ),
        )

    async def claim_batch(self, job_id: int, worker_id: str, limit: int) -> list[ClaimedJob]:
        """Take `job_id` and up to `limit - 1` other waiting jobs of the same quality.

        Returns nothing when `job_id` is already taken, finished or waiting for a retry:
        the message that named it was a duplicate or is early.
        """
        now = utcnow()
        claimed: list[int] = []
        async with self.db.session() as session:
            first = await session.get(DownloadJob, job_id)
            if first is None:
                return []
            if not await self._take(session, job_id, worker_id, now):
                return []
            claimed.append(job_id)
            # Skip, never wait for, jobs another worker is taking (PostgreSQL; SQLite has one
            # writer): two workers each holding a first job and waiting for the other's would
            # deadlock.
            others = await session.scalars(
                select(DownloadJob.id)
                .where(
                    DownloadJob.quality == first.quality,
                    DownloadJob.status == JobStatus.QUEUED.value,
                    DownloadJob.id != job_id,
                    or_(DownloadJob.retry_at.is_(None), DownloadJob.retry_at <= now),
                )
                .order_by(DownloadJob.id)
                .limit(max(0, limit - 1))
                .with_for_update(skip_locked=True)
            )
            for other in others.all():
                if await self._take(session, other, worker_id, now):
                    claimed.append(other)
        async with self.db.session() as session:
            rows = await session.scalars(
                select(DownloadJob)
                .where(DownloadJob.id.in_(claimed))
                .options(selectinload(DownloadJob.track))
                .order_by(DownloadJob.id)
            )
            return [
                ClaimedJob(job.id, job.quality, job.attempts, track_meta(job.track))
                for job in rows.all()
            ]

    async def _take(
        self, session: AsyncSession, job_id: int, worker_id: str, now: datetime
    ) -> bool:
        result = await session.execute(
            update(DownloadJob)
            .where(DownloadJob.id == job_id, self._claimable(now))
            .values(
                status=JobStatus.DOWNLOADING.value,
                worker_id=worker_id,
                heartbeat_at=now,
                retry_at=None,
                attempts=DownloadJob.attempts + 1,
                progress=0,
                message="starting",
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def heartbeat(self, job_ids: Sequence[int], worker_id: str) -> None:
        """Show that this worker still holds `job_ids`."""
        async with self.db.session() as session:
            await session.execute(
                update(DownloadJob).where(_held(job_ids, worker_id)).values(heartbeat_at=utcnow())
            )

    async def any_held(self, job_ids: Sequence[int], worker_id: str) -> bool:
        """True while this worker still holds one of `job_ids` (not all were cancelled)."""
        async with self.db.session() as session:
            held = await session.scalar(
                select(DownloadJob.id).where(_held(job_ids, worker_id)).limit(1)
            )
            return held is not None

    async def set_progress(self, job_id: int, worker_id: str, progress: int, message: str) -> bool:
        """Record progress of a job this worker holds; False when it no longer holds it."""
        async with self.db.session() as session:
            result = await session.execute(
                update(DownloadJob)
                .where(_held([job_id], worker_id))
                .values(progress=progress, message=message, heartbeat_at=utcnow())
            )
            return bool(getattr(result, "rowcount", 0))

    async def complete(self, job_id: int, worker_id: str, path: Path, size: int) -> bool:
        """Mark a held job finished with its file."""
        async with self.db.session() as session:
            result = await session.execute(
                update(DownloadJob)
                .where(_held([job_id], worker_id))
                .values(
                    status=JobStatus.COMPLETED.value,
                    progress=100,
                    message="done",
                    output_path=str(path),
                    file_size=size,
                    error=None,
                    error_code=None,
                    finished_at=utcnow(),
                )
            )
            return bool(getattr(result, "rowcount", 0))

    async def fail(
        self,
        job_id: int,
        worker_id: str,
        error: DownloadError,
        *,
        max_attempts: int,
        backoff_secs: float,
    ) -> Outcome | None:
        """Record a failure: queued again with backoff when passing, else failed for good."""
        async with self.db.session() as session:
            job = await session.get(DownloadJob, job_id)
            if job is None or job.worker_id != worker_id or job.status != JobStatus.DOWNLOADING:
                return None
            if not error.permanent and job.attempts < max_attempts:
                delay = backoff_secs * (2 ** (job.attempts - 1))
                job.status = JobStatus.QUEUED.value
                job.retry_at = utcnow() + timedelta(seconds=delay)
                job.message = f"retrying in {delay:.0f} s: {error.user_message}"
                job.error_code = error.code
                job.error = error.detail or error.user_message
                job.worker_id = None
                return Outcome(JobStatus.QUEUED, job.message, retry_in_secs=delay)
            job.status = JobStatus.FAILED.value
            job.message = error.user_message
            job.error_code = error.code
            job.error = error.detail or error.user_message
            job.finished_at = utcnow()
            return Outcome(JobStatus.FAILED, error.user_message)

    async def release(self, job_ids: Sequence[int], worker_id: str) -> list[int]:
        """Give back held jobs unchanged (the worker is stopping); returns those released."""
        async with self.db.session() as session:
            rows = await session.scalars(select(DownloadJob.id).where(_held(job_ids, worker_id)))
            ids = list(rows.all())
            await session.execute(
                update(DownloadJob)
                .where(DownloadJob.id.in_(ids))
                .values(
                    status=JobStatus.QUEUED.value,
                    worker_id=None,
                    attempts=DownloadJob.attempts - 1,
                    message="waiting for a worker",
                )
            )
            return ids

    async def recoverable(self) -> list[int]:
        """Jobs to queue again on start: waiting ones, and held ones whose worker is gone.

        A held job is taken back when its heartbeat is stale or its worker was a process
        on this host that no longer runs (a crash moments ago).
        """
        now = utcnow()
        stale = now - timedelta(seconds=STALE_HEARTBEAT_SECS)
        async with self.db.session() as session:
            rows = await session.execute(
                select(
                    DownloadJob.id,
                    DownloadJob.status,
                    DownloadJob.worker_id,
                    DownloadJob.heartbeat_at,
                ).where(
                    DownloadJob.status.in_([JobStatus.QUEUED.value, JobStatus.DOWNLOADING.value])
                )
            )
            queued: list[int] = []
            orphaned: list[int] = []
            for job_id, status, worker_id, heartbeat_at in rows.all():
                if status == JobStatus.QUEUED.value:
                    queued.append(job_id)
                elif _worker_is_dead(worker_id) or (
                    heartbeat_at is not None and as_utc(heartbeat_at) < stale
                ):
                    orphaned.append(job_id)
            if orphaned:
                await session.execute(
                    update(DownloadJob)
                    .where(DownloadJob.id.in_(orphaned))
                    .values(status=JobStatus.QUEUED.value, worker_id=None, message="resuming")
                )
        return sorted(queued + orphaned)

    async def retry_delays(self, job_ids: Sequence[int]) -> dict[int, float]:
        """Seconds each of `job_ids` still waits before its retry (only those waiting)."""
        now = utcnow()
        async with self.db.session() as session:
            rows = await session.execute(
                select(DownloadJob.id, DownloadJob.retry_at).where(
                    DownloadJob.id.in_(job_ids),
                    DownloadJob.status == JobStatus.QUEUED.value,
                    DownloadJob.retry_at.is_not(None),
                )
            )
            delays = {
                job_id: (as_utc(retry_at) - now).total_seconds()
                for job_id, retry_at in rows.all()
                if retry_at is not None
            }
        return {job_id: delay for job_id, delay in delays.items() if delay > 0}


async def requeue_unfinished(store: JobStore, queue: JobQueue) -> list[int]:
    """Queue again the jobs left waiting or held by a dead worker; returns them.

    A job waiting out a retry's backoff is queued for when its wait ends: an earlier
    message would find it not yet due and be dropped.
    """
    job_ids = await store.recoverable()
    if not job_ids:
        return []
    _log.info("Resuming %d unfinished jobs.", len(job_ids))
    delays = await store.retry_delays(job_ids)
    queue.enqueue([job_id for job_id in job_ids if job_id not in delays])
    for job_id, delay in delays.items():
        queue.enqueue([job_id], delay_secs=delay)
    return job_ids
