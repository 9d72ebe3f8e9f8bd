"""The import service: from a link to stored tracks, a request and queued download jobs.

Shared by `soundforge import` and the chat bots. It reads metadata, stores each
track once, links the request to one job per track and quality, reuses finished
files, and hands new work to the queue. A chat bot records each request first (`record`,
status "resolving") and reads its metadata after (`start`), so a link pasted while the
bot dies is still in the database for the next start to answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from config.settings import Quality
from core.links import find_links, resolve_links
from core.queue import JobQueue
from core.types import JobStatus, LinkKind, SpotifyLink, TrackList, TrackMeta
from storage.db import Database
from storage.models import DownloadJob, Request, RequestItem, Track, as_utc, utcnow

_log = logging.getLogger(__name__)

# Rows written per INSERT statement (SQLite allows 32766 bound parameters).
INSERT_CHUNK = 200
# The status of a request recorded before its metadata was read.
RESOLVING = "resolving"


class MetadataSourcePort(Protocol):
    """Reads a link's track list (core.metadata.MetadataReader)."""

    async def read(self, link: SpotifyLink, *, user_token: str | None = None) -> TrackList: ...


@dataclass(frozen=True)
class Requester:
    """Who asked, on which platform, in which chat, with which message."""

    platform: str
    user_id: str
    chat_id: str | None = None
    message_id: str | None = None
    chat_is_private: bool | None = None


@dataclass(frozen=True)
class JobView:
    """One job as a person sees it."""

    job_id: int
    position: int
    title: str
    artists: tuple[str, ...]
    status: JobStatus
    progress: int
    message: str
    output_path: str | None
    file_size: int | None
    error: str | None
    spotify_id: str
    duration_ms: int
    delivered: bool = False

    @property
    def file(self) -> Path | None:
        """The finished file, when there is one on disk."""
        if self.status is JobStatus.COMPLETED and self.output_path:
            path = Path(self.output_path)
            return path if path.is_file() else None
        return None


@dataclass
class RequestView:
    """A request with the state of each of its jobs."""

    request_id: int
    platform: str
    user_id: str
    chat_id: str | None
    reply_message_id: str | None
    kind: str
    name: str
    link: str
    quality: str
    metadata_source: str
    skipped: dict[str, int]
    capped_at: int | None
    status: str
    spotify_id: str = ""
    # The person's message that asked, which answers quote, and whether its chat is private.
    source_message_id: str | None = None
    chat_is_private: bool | None = None
    jobs: list[JobView] = field(default_factory=list)

    @property
    def spotify_link(self) -> SpotifyLink:
        """The link this request was made for."""
        return SpotifyLink(LinkKind(self.kind), self.spotify_id)

    @property
    def total(self) -> int:
        return len(self.jobs)

    def count(self, status: JobStatus) -> int:
        """How many jobs are in `status`."""
        return sum(1 for job in self.jobs if job.status is status)

    @property
    def finished(self) -> bool:
        """True when no job of this request will change again."""
        return all(job.status.final for job in self.jobs)


@dataclass(frozen=True)
class Started:
    """What `ImportService.start` did: the request, its tracks, and the new work queued."""

    request_id: int
    tracklist: TrackList
    job_ids: list[int]
    queued: int
    reused: int


class ImportService:
    """Turns links into requests and download jobs."""

    def __init__(
        self,
        db: Database,
        metadata: MetadataSourcePort,
        queue: JobQueue,
        http: httpx.AsyncClient,
        *,
        default_quality: Quality,
    ) -> None:
        self.db = db
        self.metadata = metadata
        self.queue = queue
        self.http = http
        self.default_quality = default_quality

    async def links_in(
        self, text: str, hidden_urls: Iterable[str] = (), *, limit: int | None = None
    ) -> list[SpotifyLink]:
        """Every Spotify link in `text`; raises InvalidLink or UnsupportedLink when none.

        With `limit`, at most that many come back, and no more short links are followed
        than that takes.
        """
        return await resolve_links(find_links(text, hidden_urls), self.http, limit=limit)

    async def record(
        self, links: Sequence[SpotifyLink], requester: Requester, quality: Quality
    ) -> list[int]:
        """Write one request per link, status "resolving", before any metadata is read.

        `start(..., request_id=)` then fills each in; `abandon` drops one whose link could
        not be read; `open_requests` lists those a crash left behind. Returns their ids.
        """
        async with self.db.session() as session:
            requests = [_request(link, requester, quality, status=RESOLVING) for link in links]
            session.add_all(requests)
            await session.flush()
            request_ids = [request.id for request in requests]
        _log.debug("Requests %s recorded before reading their metadata.", request_ids)
        return request_ids

    async def abandon(self, request_id: int) -> None:
        """Drop a recorded request whose link could not be read (the person was told)."""
        async with self.db.session() as session:
            await session.execute(
                delete(Request).where(Request.id == request_id, Request.status == RESOLVING)
            )

    async def start(
        self,
        link: SpotifyLink,
        requester: Requester,
        quality: Quality | None = None,
        *,
        user_token: str | None = None,
        request_id: int | None = None,
    ) -> Started:
        """Read `link`, store its tracks, create the request and queue what is missing.

        With `request_id`, the request `record` wrote is filled in rather than a new one
        made; raises LookupError when that request is no longer waiting for its metadata.
        """
        quality = quality or self.default_quality
        tracklist = await self.metadata.read(link, user_token=user_token)

        # Store tracks, the request and its jobs in one transaction.
        async with self.db.session() as session:
            track_ids = await self._upsert_tracks(session, tracklist.tracks)
            jobs = await self._jobs_for(
                session, [track_ids[t.spotify_id] for t in tracklist.tracks], quality
            )
            if request_id is None:
                request = _request(link, requester, quality, status="open")
                session.add(request)
            else:
                recorded = await session.get(Request, request_id)
                if recorded is None or recorded.status != RESOLVING:
                    raise LookupError(f"request {request_id} is not waiting for its metadata")
                request = recorded
                request.status = "open"
            request.name = tracklist.name
            request.metadata_source = tracklist.source.value
            request.skipped = {reason.value: count for reason, count in tracklist.skipped.items()}
            request.capped_at = tracklist.capped_at
            await session.flush()
            seen: set[int] = set()
            job_ids: list[int] = []
            for position, job in enumerate(jobs):
                if job.id in seen:
                    continue
                seen.add(job.id)
                job_ids.append(job.id)
                session.add(RequestItem(request_id=request.id, position=position, job_id=job.id))
            by_id = sorted({job.id: job for job in jobs}.items())
            to_queue = [job_id for job_id, job in by_id if await self._needs_work(session, job)]
            # A job waiting out a retry's backoff is queued for when the wait ends.
            now = utcnow()
            delays = {
                job_id: (as_utc(job.retry_at) - now).total_seconds()
                for job_id, job in by_id
                if job_id in to_queue and job.retry_at is not None and as_utc(job.retry_at) > now
            }
            finished = sum(
                1
                for job_id, job in by_id
                if job.status == JobStatus.COMPLETED.value and job_id not in to_queue
            )
            request_id = request.id

        # Hand new work to the workers once the rows are committed.
        to_queue = sorted(set(to_queue))
        due_now = [job_id for job_id in to_queue if job_id not in delays]
        if due_now:
            self.queue.enqueue(due_now)
        for job_id, delay in delays.items():
            self.queue.enqueue([job_id], delay_secs=delay)
        reused = finished
        _log.info(
            "Request %s: %s %s, %d tracks, %d queued, %d already there.",
            request_id,
            link.kind.value,
            link.spotify_id,
            len(job_ids),
            len(to_queue),
            reused,
        )
        return Started(request_id, tracklist, job_ids, len(to_queue), reused)

    async def _upsert_tracks(
        self, session: AsyncSession, tracks: Sequence[TrackMeta]
    ) -> dict[str, int]:
        # Rows go in key order (jobs too, and their updates in start()): two imports sharing
        # tracks then lock those rows in one order; on PostgreSQL opposite orders deadlock.
        rows = sorted((_track_row(track) for track in tracks), key=lambda row: row["spotify_id"])
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            await session.execute(self._insert_ignore(Track, ["spotify_id"]).values(chunk))
        ids: dict[str, int] = {}
        spotify_ids = [track.spotify_id for track in tracks]
        for start in range(0, len(spotify_ids), INSERT_CHUNK):
            found = await session.execute(
                select(Track.spotify_id, Track.id).where(
                    Track.spotify_id.in_(spotify_ids[start : start + INSERT_CHUNK])
                )
            )
            ids.update({spotify_id: track_id for spotify_id, track_id in found.all()})
        return ids

    async def _jobs_for(
        self, session: AsyncSession, track_ids: Sequence[int], quality: Quality
    ) -> list[DownloadJob]:
        rows = [
            {"track_id": track_id, "quality": quality.value} for track_id in sorted(set(track_ids))
        ]
        for start in range(0, len(rows), INSERT_CHUNK):
            statement = self._insert_ignore(DownloadJob, ["track_id", "quality"])
            await session.execute(statement.values(rows[start : start + INSERT_CHUNK]))
        by_track: dict[int, DownloadJob] = {}
        unique = list(dict.fromkeys(track_ids))
        for start in range(0, len(unique), INSERT_CHUNK):
            found = await session.scalars(
                select(DownloadJob).where(
                    DownloadJob.track_id.in_(unique[start : start + INSERT_CHUNK]),
                    DownloadJob.quality == quality.value,
                )
            )
            by_track.update({job.track_id: job for job in found.all()})
        return [by_track[track_id] for track_id in track_ids]

    def _insert_ignore(self, model: Any, keys: list[str]) -> Any:
        """`INSERT ... ON CONFLICT DO NOTHING` for the database in use."""
        dialect = postgresql if not self.db.is_sqlite else sqlite
        return dialect.insert(model).on_conflict_do_nothing(index_elements=keys)

    async def _needs_work(self, session: AsyncSession, job: DownloadJob) -> bool:
        """Whether `job` must be queued: waiting, failed or cancelled before, or its file gone.

        A waiting job is queued again on purpose: claims are exclusive, so a second
        message is harmless, and it covers a message lost with a crashed process.
        """
        status = JobStatus(job.status)
        if status is JobStatus.QUEUED:
            return True
        if status is JobStatus.DOWNLOADING:
            return False
        if status is JobStatus.COMPLETED:
            if job.output_path and Path(job.output_path).is_file():
                return False
            _log.warning("Job %s lost its file %s; downloading again.", job.id, job.output_path)
        result = await session.execute(
            update(DownloadJob)
            .where(DownloadJob.id == job.id, DownloadJob.status == job.status)
            .values(
                status=JobStatus.QUEUED.value,
                attempts=0,
                progress=0,
                message="queued",
                error=None,
                error_code=None,
                retry_at=None,
                output_path=None,
                file_size=None,
                finished_at=None,
            )
        )
        return bool(getattr(result, "rowcount", 0))

    async def set_reply(self, request_id: int, message_id: str) -> None:
        """Remember which chat message shows the request's progress."""
        async with self.db.session() as session:
            await session.execute(
                update(Request).where(Request.id == request_id).values(reply_message_id=message_id)
            )

    async def view(self, request_id: int) -> RequestView | None:
        """The request and the latest state of each of its jobs, read from the database."""
        views = await self._views(select(Request).where(Request.id == request_id))
        return views[0] if views else None

    async def recent(self, platform: str, user_id: str, limit: int = 5) -> list[RequestView]:
        """A person's latest requests whose metadata was read, newest first."""
        return await self._views(
            select(Request)
            .where(
                Request.platform == platform,
                Request.user_id == user_id,
                Request.status != RESOLVING,
            )
            .order_by(Request.id.desc())
            .limit(limit)
        )

    async def open_requests(self, platform: str) -> list[RequestView]:
        """Requests on `platform` not yet brought to their final state, oldest first.

        Those still "resolving" have no jobs yet: their metadata is to be read again.
        """
        return await self._views(
            select(Request)
            .where(Request.platform == platform, Request.status.in_(["open", RESOLVING]))
            .order_by(Request.id)
        )

    async def requests_for_job(self, job_id: int) -> list[int]:
        """Open requests that include `job_id`."""
        async with self.db.session() as session:
            rows = await session.scalars(
                select(RequestItem.request_id)
                .join(Request, Request.id == RequestItem.request_id)
                .where(RequestItem.job_id == job_id, Request.status == "open")
            )
            return sorted(set(rows.all()))

    async def mark_finished(self, request_id: int, status: str = "finished") -> None:
        """Record that a request reached its final state (shown and delivered)."""
        async with self.db.session() as session:
            await session.execute(
                update(Request)
                .where(Request.id == request_id, Request.status == "open")
                .values(status=status, finished_at=utcnow())
            )

    async def mark_delivered(self, request_id: int, job_id: int) -> bool:
        """Record one delivery; False when it was already recorded (deliver once)."""
        async with self.db.session() as session:
            result = await session.execute(
                update(RequestItem)
                .where(
                    RequestItem.request_id == request_id,
                    RequestItem.job_id == job_id,
                    RequestItem.delivered_at.is_(None),
                )
                .values(delivered_at=utcnow())
            )
            return bool(getattr(result, "rowcount", 0))

    async def queue_ahead(self, request_id: int) -> int:
        """How many waiting jobs of other requests were queued before this request's first."""
        async with self.db.session() as session:
            first = await session.scalar(
                select(func.min(DownloadJob.id))
                .join(RequestItem, RequestItem.job_id == DownloadJob.id)
                .where(
                    RequestItem.request_id == request_id,
                    DownloadJob.status.in_([JobStatus.QUEUED.value, JobStatus.DOWNLOADING.value]),
                )
            )
            if first is None:
                return 0
            ahead = await session.scalar(
                select(func.count(DownloadJob.id)).where(
                    DownloadJob.id < first,
                    DownloadJob.status.in_([JobStatus.QUEUED.value, JobStatus.DOWNLOADING.value]),
                )
            )
            return int(ahead or 0)

    async def cancel_user(self, platform: str, user_id: str) -> list[int]:
        """Cancel a person's waiting jobs that no other open request needs; returns the jobs."""
        async with self.db.session() as session:
            mine = select(Request.id).where(
                Request.platform == platform, Request.user_id == user_id, Request.status == "open"
            )
            job_rows = await session.scalars(
                select(RequestItem.job_id).where(RequestItem.request_id.in_(mine))
            )
            candidates = set(job_rows.all())
            shared_rows = await session.scalars(
                select(RequestItem.job_id)
                .join(Request, Request.id == RequestItem.request_id)
                .where(
                    RequestItem.job_id.in_(candidates),
                    Request.status == "open",
                    ~((Request.platform == platform) & (Request.user_id == user_id)),
                )
            )
            own = sorted(candidates - set(shared_rows.all()))
            if own:
                await session.execute(
                    update(DownloadJob)
                    .where(
                        DownloadJob.id.in_(own),
                        DownloadJob.status.in_(
                            [JobStatus.QUEUED.value, JobStatus.DOWNLOADING.value]
                        ),
                    )
                    .values(
                        status=JobStatus.CANCELLED.value, message="cancelled", finished_at=utcnow()
                    )
                )
            await session.execute(
                update(Request)
                .where(Request.id.in_(mine))
                .values(status="cancelled", finished_at=utcnow())
            )
            return own

    async def _views(self, statement: Any) -> list[RequestView]:
        # One joined SELECT, so the request and its jobs are read from one snapshot (SQLite
        # starts no transaction for reads: separate SELECTs could see a change half done).
        async with self.db.session() as session:
            result = await session.scalars(
                statement.options(
                    joinedload(Request.items)
                    .joinedload(RequestItem.job)
                    .joinedload(DownloadJob.track)
                )
            )
            return [_view(request) for request in result.unique().all()]


def _view(request: Request) -> RequestView:
    view = RequestView(
        request_id=request.id,
        platform=request.platform,
        user_id=request.user_id,
        chat_id=request.chat_id,
        reply_message_id=request.reply_message_id,
        kind=request.kind,
        name=request.name,
        link=request.link,
        quality=request.quality,
        metadata_source=request.metadata_source,
        skipped=dict(request.skipped or {}),
        capped_at=request.capped_at,
        status=request.status,
        spotify_id=request.spotify_id,
        source_message_id=request.source_message_id,
        chat_is_private=request.chat_is_private,
    )
    for item in request.items:
        job = item.job
        view.jobs.append(
            JobView(
                job_id=job.id,
                position=item.position,
                title=job.track.title,
                artists=tuple(job.track.artists),
                status=JobStatus(job.status),
                progress=job.progress,
                message=job.message,
                output_path=job.output_path,
                file_size=job.file_size,
                error=job.message if job.status == JobStatus.FAILED.value else None,
                spotify_id=job.track.spotify_id,
                duration_ms=job.track.duration_ms,
                delivered=item.delivered_at is not None,
            )
        )
    return view


def _request(link: SpotifyLink, requester: Requester, quality: Quality, *, status: str) -> Request:
    """A new request row for `link`, its metadata fields still empty."""
    return Request(
        platform=requester.platform,
        user_id=requester.user_id,
        chat_id=requester.chat_id,
        chat_is_private=requester.chat_is_private,
        source_message_id=requester.message_id,
        link=link.url,
        kind=link.kind.value,
        spotify_id=link.spotify_id,
        name="",
        quality=quality.value,
        metadata_source="",
        skipped={},
        status=status,
    )


def _track_row(track: TrackMeta) -> dict[str, Any]:
    now = utcnow()
    return {
        "spotify_id": track.spotify_id,
        "title": track.title,
        "artists": list(track.artists),
        "album": track.album,
        "album_id": track.album_id,
        "album_artist": track.album_artist,
        "duration_ms": track.duration_ms,
        "track_number": track.track_number,
        "disc_number": track.disc_number,
        "disc_count": track.disc_count,
        "tracks_count": track.tracks_count,
        "release_date": track.release_date,
        "isrc": track.isrc,
        "publisher": track.publisher,
        "genres": list(track.genres),
        "cover_url": track.cover_url,
        "explicit": track.explicit,
        "copyright": track.copyright,
        "extra": {
            "popularity": track.popularity,
            "artist_id": track.artist_id,
            "album_type": track.album_type,
        },
        "created_at": now,
        "updated_at": now,
    }
