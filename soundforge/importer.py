"""`soundforge import`: the whole pipeline from a terminal, with a progress bar."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import logging
from collections.abc import AsyncIterator, Sequence

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from config.settings import Quality, Settings
from core.errors import SoundForgeError
from core.service import ImportService, JobView, Requester, Started
from core.types import JobEvent, JobStatus
from soundforge.app import open_services

_log = logging.getLogger(__name__)

# The database is read this often even when events arrive, so nothing depends on them.
POLL_INTERVAL_SECS = 1.0
# What the command returns when the person stopped it (as a shell reports SIGINT).
EXIT_INTERRUPTED = 130
# With Redis, jobs nobody has taken after this long earn a hint that no worker runs.
IDLE_HINT_SECS = 30.0


class _Display:
    """One progress line per track on a terminal; finished jobs as lines or JSON otherwise."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        # JSON owns stdout; otherwise every line and the live bars share stdout's console,
        # so lines printed while the bars run land above them instead of through them.
        self.console = Console(stderr=as_json, soft_wrap=True)
        self.errors = Console(stderr=True, soft_wrap=True)
        self.tty = self.console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}% {task.fields[stage]}"),
            console=self.console,
            disable=not self.tty,
        )
        self.tasks: dict[int, TaskID] = {}
        self.reported: set[int] = set()

    def error(self, text: str) -> None:
        """A line about bad input, on stderr (it comes before any bar is shown)."""
        self.errors.print(text, highlight=False, markup=False)

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False)

    def add(self, job: JobView) -> None:
        if job.job_id not in self.tasks:
            name = f"{', '.join(job.artists)} - {job.title}"
            self.tasks[job.job_id] = self.progress.add_task(name[:60], total=100, stage="")

    def update(self, job_id: int, progress: int, stage: str) -> None:
        task = self.tasks.get(job_id)
        if task is not None:
            self.progress.update(task, completed=progress, stage=stage)

    def finished(self, job: JobView) -> None:
        if job.job_id in self.reported:
            return
        self.reported.add(job.job_id)
        self.update(job.job_id, 100 if job.status is JobStatus.COMPLETED else 0, job.status.value)
        if self.as_json:
            record = {
                "spotify_id": job.spotify_id,
                "status": job.status.value,
                "output_path": job.output_path,
                "file_size": job.file_size,
                "error": job.error,
            }
            print(json.dumps(record, ensure_ascii=False), flush=True)
        elif job.status is JobStatus.COMPLETED:
            self.console.print(f"done    {job.output_path}", highlight=False, markup=False)
        else:
            self.console.print(
                f"{job.status.value:<7} {', '.join(job.artists)} - {job.title}: {job.message}",
                highlight=False,
                markup=False,
            )


def _summary(started: Started) -> str:
    tracklist = started.tracklist
    count = len(started.job_ids)
    text = f"{tracklist.link.kind.value} '{tracklist.name}'"
    if tracklist.link.kind.value != "track" or count != 1:
        text += f": {count} track{'' if count == 1 else 's'}"
    if started.reused:
        text += f", {started.reused} already downloaded"
    if tracklist.skipped:
        parts = ", ".join(f"{count} {reason.value}" for reason, count in tracklist.skipped.items())
        text += f" (skipped: {parts})"
    if tracklist.capped_at is not None:
        text += (
            f" (only the first {tracklist.capped_at} of {tracklist.total_available}: "
            "MAX_TRACKS_PER_REQUEST)"
        )
    if tracklist.source.value == "spotdl":
        text += " (metadata from spotdl: the Spotify Web API refused this link)"
    return text


class _Interrupted(Exception):
    """Raised inside the import when the person asked it to stop (Ctrl-C, SIGTERM)."""


async def import_links(
    settings: Settings,
    urls: Sequence[str],
    *,
    quality: Quality | None,
    as_json: bool,
    stop: asyncio.Event | None = None,
) -> int:
    """Import every link in `urls`; 0 when every job completed, 1 otherwise, 130 if stopped."""
    try:
        return await _import_links(settings, urls, quality, as_json, stop or asyncio.Event())
    except _Interrupted:
        return EXIT_INTERRUPTED


async def _import_links(
    settings: Settings,
    urls: Sequence[str],
    quality: Quality | None,
    as_json: bool,
    stop: asyncio.Event,
) -> int:
    display = _Display(as_json)
    requester = Requester(platform="cli", user_id=getpass.getuser())
    failed_input = False
    request_ids: list[int] = []
    async with (
        open_services(settings, embedded_workers=True) as services,
        services.bus.subscribe() as events,
    ):
        # Read every link and start its request; bad input is reported and skipped.
        for url in urls:
            if stop.is_set():
                raise _Interrupted
            try:
                links = await services.imports.links_in(url)
                for link in links:
                    started = await services.imports.start(link, requester, quality)
                    display.say(_summary(started))
                    request_ids.append(started.request_id)
            except SoundForgeError as exc:
                _log.debug("Link %r failed.", url, exc_info=exc)
                display.error(f"error: {url}: {exc.user_message}")
                failed_input = True

        # Follow the jobs until each is final.
        with display.progress:
            hint = IDLE_HINT_SECS if settings.redis_url else None
            jobs = await _watch(services.imports, request_ids, events, display, hint, stop)
    failed = [job for job in jobs if job.status is not JobStatus.COMPLETED]
    if jobs:
        display.say(f"{len(jobs) - len(failed)} of {len(jobs)} tracks downloaded.")
    return 1 if failed or failed_input else 0


async def _watch(
    imports: ImportService,
    request_ids: list[int],
    events: AsyncIterator[JobEvent],
    display: _Display,
    idle_hint_secs: float | None,
    stop: asyncio.Event,
) -> list[JobView]:
    loop = asyncio.get_running_loop()
    hint_at = loop.time() + idle_hint_secs if idle_hint_secs is not None else None
    inbox: asyncio.Queue[JobEvent] = asyncio.Queue()

    async def pump() -> None:
        async for event in events:
            inbox.put_nowait(event)

    pumping = asyncio.create_task(pump(), name="import:event-pump")
    latest: dict[int, JobView] = {}
    try:
        while True:
            # The rows are the truth: read them, then wait for an event or the next poll.
            for request_id in request_ids:
                view = await imports.view(request_id)
                for job in view.jobs if view else []:
                    latest[job.job_id] = job
                    display.add(job)
                    if job.status.final:
                        display.finished(job)
                    else:
                        display.update(job.job_id, job.progress, job.message)
            if all(job.status.final for job in latest.values()):
                return sorted(latest.values(), key=lambda job: job.job_id)
            if hint_at is not None and loop.time() > hint_at:
                hint_at = None
                if all(job.status is JobStatus.QUEUED for job in latest.values()):
                    display.say(
                        "No worker has taken these jobs yet: is `soundforge worker` running "
                        "with the same REDIS_URL?"
                    )
            with contextlib.suppress(TimeoutError):
                while True:
                    event = await _next_event(inbox, stop, POLL_INTERVAL_SECS)
                    if event.job_id not in latest:
                        continue
                    if event.status.final:
                        break
                    display.update(event.job_id, event.progress, event.message)
    finally:
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping


async def _next_event(
    inbox: asyncio.Queue[JobEvent], stop: asyncio.Event, timeout_secs: float
) -> JobEvent:
    """The next event; TimeoutError after `timeout_secs`, _Interrupted once `stop` is set."""
    if stop.is_set():
        raise _Interrupted
    getter = asyncio.ensure_future(inbox.get())
    stopper = asyncio.ensure_future(stop.wait())
    done, pending = await asyncio.wait(
        {getter, stopper}, timeout=timeout_secs, return_when=asyncio.FIRST_COMPLETED
    )
    for task in pending:
        task.cancel()
    if getter in done:
        return getter.result()
    if stop.is_set():
        raise _Interrupted
    raise TimeoutError
