"""The spotdl runner: one spotdl process downloads a batch of songs into their final places.

spotdl's start-up costs about 1.5 s of CPU, so a batch is one process (`--threads
DOWNLOAD_CONCURRENCY`), handed a `.spotdl` file built from stored metadata. Each run gets its
own folder and its own HOME (spotdl keeps its config and a shared temp folder under it, which
collides between parallel runs). Success is judged per song by the finished file (present,
non-empty, tags readable by mutagen) together with `--save-errors`, never by the exit code;
a good file is moved into place atomically. A run past its wall-clock or inactivity limit,
or whose task is cancelled, is killed with its whole process group. Failures become the
`DownloadError` classes of core.errors, each with the sentence a user sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import shlex
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import mutagen

from config.settings import Quality, Settings
from core.errors import (
    DiskFull,
    DownloadError,
    DownloadFailed,
    DownloadTimeout,
    FfmpegMissing,
    SpotdlMissing,
)
from core.programs import child_environment
from core.types import TrackMeta
from workers.spotdl_file import song_dict, track_url, write_save_file
from workers.spotdl_output import SongTrace, SpotdlOutput, batch_failure, classify

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, str], Awaitable[None]]

# spotdl's arguments per quality: lossless keeps FLAC without a bitrate, the rest are MP3.
QUALITY_ARGS: dict[Quality, list[str]] = {
    Quality.LOSSLESS: ["--format", "flac", "--bitrate", "disable"],
    Quality.HIGH: ["--format", "mp3", "--bitrate", "320k"],
    Quality.MEDIUM: ["--format", "mp3", "--bitrate", "192k"],
    Quality.LOW: ["--format", "mp3", "--bitrate", "128k"],
}
OUTPUT_FORMATS: dict[Quality, str] = {
    Quality.LOSSLESS: "flac",
    Quality.HIGH: "mp3",
    Quality.MEDIUM: "mp3",
    Quality.LOW: "mp3",
}

# Wide enough that rich never wraps a log line (it reads COLUMNS for the console width).
_COLUMNS = "1000"
# After SIGTERM, how long spotdl gets to exit before the group gets SIGKILL.
_TERM_GRACE_SECS = 5.0
# After spotdl exits, how long its output pipes may stay open (held by a straggler).
_DRAIN_SECS = 5.0
# A run folder older than twice the wall-clock limit plus this belongs to no live run.
_STALE_MARGIN_SECS = 60.0
# Largest output line read whole; longer ones are skipped.
_LINE_LIMIT_BYTES = 1024 * 1024
# Run folders live here, under DOWNLOAD_DIR, so finished files move on the same file system.
RUNS_DIR_NAME = "_runs"
_MB = 1024 * 1024
_OPERATOR_ERRORS = (SpotdlMissing, FfmpegMissing, DiskFull)
# The shell's "command not found" status, as `env` and `sh -c` report it.
_NOT_FOUND_STATUS = 127


@dataclass(frozen=True)
class RunItem:
    """One song of a batch: the job it belongs to, its metadata and where its file goes."""

    job_id: int
    meta: TrackMeta
    final_path: Path


@dataclass(frozen=True)
class RunOutcome:
    """The result of one song: a file in place (`path`, `file_size`) or an `error`."""

    path: Path | None = None
    file_size: int = 0
    error: DownloadError | None = None

    @property
    def ok(self) -> bool:
        """True when the file is in place."""
        return self.error is None

    @classmethod
    def success(cls, path: Path, file_size: int) -> RunOutcome:
        """A song whose finished file is at `path`."""
        return cls(path=path, file_size=file_size)

    @classmethod
    def failure(cls, error: DownloadError) -> RunOutcome:
        """A song that failed with `error`."""
        return cls(error=error)


class SpotdlRunner:
    """Runs spotdl for batches of songs under the limits in `settings`."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._command = shlex.split(settings.spotdl_command)

    async def run(
        self, items: list[RunItem], quality: Quality, on_progress: ProgressCallback
    ) -> dict[int, RunOutcome]:
        """Download `items` at `quality` in one spotdl process; return an outcome per job id.

        Never raises a DownloadError: each song's failure is in its outcome. Cancelling the
        task kills the spotdl process group and removes the run's files.
        """
        if not items:
            return {}
        if len({item.job_id for item in items}) != len(items):
            raise ValueError("each job may appear only once in a batch")
        download_dir = self._settings.download_dir.resolve()
        download_dir.mkdir(parents=True, exist_ok=True)

        # Check the disk before spending anything on the run.
        low_disk = self._check_free_space(download_dir)
        if low_disk is not None:
            return {item.job_id: RunOutcome.failure(low_disk) for item in items}

        run_dir = self._make_run_dir(download_dir)
        try:
            return await self._run_in(run_dir, items, quality, on_progress)
        finally:
            await asyncio.to_thread(shutil.rmtree, run_dir, True)

    async def _run_in(
        self,
        run_dir: Path,
        items: list[RunItem],
        quality: Quality,
        on_progress: ProgressCallback,
    ) -> dict[int, RunOutcome]:
        # Write the save file: one song per distinct track.
        output_format = OUTPUT_FORMATS[quality]
        out_dir = run_dir / "out"
        home = run_dir / "home"
        out_dir.mkdir()
        home.mkdir()
        metas = {item.meta.spotify_id: item.meta for item in items}
        save_file = write_save_file(run_dir / "songs.spotdl", metas.values())
        errors_file = run_dir / "errors.txt"
        traces = {spotify_id: _trace(meta) for spotify_id, meta in metas.items()}
        output = SpotdlOutput(traces.values())
        jobs_of: dict[str, list[int]] = {}
        for item in items:
            jobs_of.setdefault(item.meta.spotify_id, []).append(item.job_id)
        command = [
            *self._command,
            "download",
            str(save_file),
            "--output",
            str(out_dir / "{track-id}.{output-ext}"),
            "--save-errors",
            str(errors_file),
            "--simple-tui",
            # Only the debug log holds yt-dlp's own error (429, sign-in) behind a failed song.
            "--log-level",
            "DEBUG",
            *QUALITY_ARGS[quality],
            "--overwrite",
            "force",
            "--threads",
            str(self._settings.download_concurrency),
        ]

        # Run spotdl, turning its lines into progress, under both limits.
        log.info(
            "Starting spotdl for %d songs at %s quality in %s.", len(metas), quality, run_dir.name
        )
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=run_dir,
                env=self._child_env(home),
                start_new_session=True,
                limit=_LINE_LIMIT_BYTES,
            )
        except OSError as exc:
            error = SpotdlMissing(f"cannot start {shlex.join(self._command)!r}: {exc}")
            log.error("spotdl could not be started: %s.", exc)
            return {item.job_id: RunOutcome.failure(error) for item in items}
        progress = _ProgressRelay(jobs_of, on_progress)
        timed_out = await self._supervise(process, output, progress)

        # Read what spotdl left behind: its errors file and any ffmpeg error reports.
        output.finish()
        if errors_file.exists():
            output.read_errors_file(errors_file.read_text(encoding="utf-8", errors="replace"))
        for report in sorted(home.glob("**/errors/*.txt")):
            output.add_text(report.read_text(encoding="utf-8", errors="replace"))
        log.info(
            "spotdl run %s ended with status %s%s.",
            run_dir.name,
            process.returncode,
            f" after passing its {timed_out}" if timed_out else "",
        )

        # Judge each song by its file, and move the good ones into place.
        outcomes: dict[int, RunOutcome] = {}
        for spotify_id, trace in traces.items():
            source = out_dir / f"{spotify_id}.{output_format}"
            targets = [item for item in items if item.meta.spotify_id == spotify_id]
            result = await self._judge(
                trace, source, output, process.returncode, timed_out, targets
            )
            outcomes.update(result)
        return outcomes

    # The process.

    async def _supervise(
        self, process: asyncio.subprocess.Process, output: SpotdlOutput, progress: _ProgressRelay
    ) -> str | None:
        """Wait for spotdl under both limits; return the limit it passed, if any."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        activity = _Activity(started)
        assert process.stdout is not None and process.stderr is not None
        readers = [
            asyncio.create_task(
                _read_lines(process.stdout, "stdout", output, progress, activity),
                name=f"spotdl:{process.pid}:stdout",
            ),
            asyncio.create_task(
                _read_lines(process.stderr, "stderr", output, progress, activity),
                name=f"spotdl:{process.pid}:stderr",
            ),
        ]
        waiter = asyncio.create_task(process.wait(), name=f"spotdl:{process.pid}:wait")
        progress.start(name=f"spotdl:{process.pid}:progress")
        timed_out: str | None = None
        try:
            while not waiter.done():
                now = loop.time()
                wall_left = started + self._settings.download_timeout_secs - now
                idle_left = activity.last + self._settings.download_inactivity_secs - now
                if wall_left <= 0 or idle_left <= 0:
                    timed_out = "wall-clock limit" if wall_left <= 0 else "inactivity limit"
                    log.warning(
                        "Killing spotdl process group %s: it passed its %s.",
                        process.pid,
                        timed_out,
                    )
                    await _kill_group(process, waiter)
                    break
                await asyncio.wait({waiter}, timeout=min(wall_left, idle_left))
            # A straggler that keeps the pipes open is killed with the rest of the group.
            _, pending = await asyncio.wait(readers, timeout=_DRAIN_SECS)
            if pending:
                _signal_group(process.pid, signal.SIGKILL)
                await asyncio.wait(pending, timeout=_DRAIN_SECS)
            await progress.close()
        except BaseException:
            # Cancelled (or broken): nothing of the group may outlive the run.
            progress.cancel()
            _signal_group(process.pid, signal.SIGKILL)
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(waiter), _TERM_GRACE_SECS)
            raise
        finally:
            tasks = [*readers, waiter, *progress.tasks()]
            for task in tasks:
                task.cancel()
            for result in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(result, Exception):
                    log.error("Reading spotdl's output failed.", exc_info=result)
        return timed_out

    def _child_env(self, home: Path) -> dict[str, str]:
        # spotdl and deno installed beside our interpreter are found without an activated venv.
        env = child_environment()
        env.update(
            HOME=str(home),
            COLUMNS=_COLUMNS,
            PYTHONUNBUFFERED="1",
            PYTHONIOENCODING="utf-8",
            NO_COLOR="1",
        )
        env.pop("FORCE_COLOR", None)
        return env

    # Before and after.

    def _check_free_space(self, download_dir: Path) -> DiskFull | None:
        free_mb = shutil.disk_usage(download_dir).free // _MB
        if free_mb >= self._settings.download_min_free_mb:
            return None
        log.error(
            "Only %d MB free in %s, below DOWNLOAD_MIN_FREE_MB=%d: not starting spotdl.",
            free_mb,
            download_dir,
            self._settings.download_min_free_mb,
        )
        return DiskFull(
            f"{free_mb} MB free in {download_dir}, "
            f"below DOWNLOAD_MIN_FREE_MB={self._settings.download_min_free_mb}"
        )

    def _make_run_dir(self, download_dir: Path) -> Path:
        root = download_dir / RUNS_DIR_NAME
        if not _survives_spotdl(root):
            # spotdl strips leading dots from every folder of --output; keep clear of them.
            root = Path(tempfile.gettempdir()).resolve() / "soundforge-runs"
            log.debug("Download folder path has dotted parts; runs go to %s.", root)
        root.mkdir(parents=True, exist_ok=True)
        self._sweep_stale_runs(root)
        return Path(tempfile.mkdtemp(prefix="run-", dir=root))

    def _sweep_stale_runs(self, root: Path) -> None:
        """Remove run folders left by a crashed process (older than any live run can be)."""
        oldest = time.time() - 2 * self._settings.download_timeout_secs - _STALE_MARGIN_SECS
        for run_dir in root.glob("run-*"):
            with contextlib.suppress(OSError):
                if run_dir.stat().st_mtime < oldest:
                    log.warning("Removing run folder %s left by an earlier process.", run_dir)
                    shutil.rmtree(run_dir, ignore_errors=True)

    async def _judge(
        self,
        trace: SongTrace,
        source: Path,
        output: SpotdlOutput,
        returncode: int | None,
        timed_out: str | None,
        targets: list[RunItem],
    ) -> dict[int, RunOutcome]:
        problem = await asyncio.to_thread(_file_problem, source)
        finished = trace.errors_line is None and problem is None
        if timed_out and not trace.done:
            finished = False
        if not finished:
            error = _failure(trace, problem, output, returncode, timed_out)
            # A missing tool or a full disk needs the operator; the rest is the song's own fate.
            level = logging.ERROR if isinstance(error, _OPERATOR_ERRORS) else logging.INFO
            log.log(level, "Song %s failed: %s (%s).", trace.song_id, error.code, error.detail)
            return {item.job_id: RunOutcome.failure(error) for item in targets}
        outcomes: dict[int, RunOutcome] = {}
        for item in targets:
            try:
                size = await asyncio.to_thread(place_file, source, item.final_path)
            except OSError as exc:
                placed_error: DownloadError = (
                    DiskFull(f"moving {item.final_path}: {exc}")
                    if exc.errno == errno.ENOSPC
                    else DownloadFailed(f"moving {item.final_path}: {exc}")
                )
                log.error("Could not move job %s into place: %s.", item.job_id, exc)
                outcomes[item.job_id] = RunOutcome.failure(placed_error)
                continue
            log.debug("Job %s finished: %s (%d bytes).", item.job_id, item.final_path, size)
            outcomes[item.job_id] = RunOutcome.success(item.final_path, size)
        return outcomes


def place_file(source: Path, target: Path) -> int:
    """Put `source` at `target` atomically (temporary name, fsync, rename); return its size.

    A crash at any point leaves either the old target or the whole new file, never half.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".partial-{uuid.uuid4().hex}{target.suffix}")
    try:
        try:
            os.link(source, partial)
        except OSError:
            shutil.copyfile(source, partial)
        fd = os.open(partial, os.O_RDONLY)
        try:
            os.fsync(fd)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    _fsync_dir(target.parent)
    return size


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _file_problem(path: Path) -> str | None:
    """Why `path` is not a finished song, or None when it is one."""
    if not path.is_file():
        return "spotdl left no file"
    if path.stat().st_size == 0:
        return "spotdl left an empty file"
    try:
        audio = mutagen.File(path, easy=True)
    except (mutagen.MutagenError, OSError) as exc:
        return f"the file is not readable audio ({exc})"
    if audio is None:
        return "the file is not an audio format mutagen knows"
    if not audio.tags or not audio.tags.get("title"):
        return "the file has no tags (tagging failed)"
    return None


def _failure(
    trace: SongTrace,
    problem: str | None,
    output: SpotdlOutput,
    returncode: int | None,
    timed_out: str | None,
) -> DownloadError:
    """The error a failed song gets, from its own evidence first, then the run's."""
    own = classify(trace, output.evidence(trace))
    if own is not None:
        return own
    if timed_out:
        return DownloadTimeout(f"{trace.display_name}: the run passed its {timed_out}")
    whole = batch_failure(output.text())
    if whole is not None:
        return whole
    if returncode == _NOT_FOUND_STATUS:
        return SpotdlMissing(f"spotdl command exited with status {returncode}")
    reason = trace.errors_line or problem or "unknown"
    return DownloadFailed(f"{trace.display_name}: {reason} (spotdl status {returncode})")


def _trace(meta: TrackMeta) -> SongTrace:
    song = song_dict(meta)
    return SongTrace(
        song_id=meta.spotify_id,
        url=track_url(meta.spotify_id),
        display_name=f"{song['artist']} - {song['name']}",
    )


def _survives_spotdl(path: Path) -> bool:
    """True when spotdl's --output clean-up (it trims dots and stars) leaves `path` alone."""
    for part in path.parts[1:]:
        match = re.search(r"[^\.*](.*)[^\.*$]", part)
        if match is not None and match.group(0) != part:
            return False
        if match is None and len(part) > 1:
            return False
    return True


@dataclass
class _Activity:
    """When the run last printed anything (event-loop time)."""

    last: float


class _ProgressRelay:
    """Forwards song progress to the caller's callback from its own task, in order.

    Reading spotdl's output never waits for the callback, so a slow progress display can
    neither stall the pipes nor make a busy run look inactive.
    """

    def __init__(self, jobs_of: dict[str, list[int]], callback: ProgressCallback) -> None:
        self._jobs_of = jobs_of
        self._callback = callback
        self._queue: asyncio.Queue[tuple[int, int, str] | None] = asyncio.Queue()
        self._failed = False
        self._task: asyncio.Task[None] | None = None

    def start(self, name: str) -> None:
        self._task = asyncio.create_task(self._pump(), name=name)

    def __call__(self, song: SongTrace, percent: int, stage: str) -> None:
        for job_id in self._jobs_of.get(song.song_id, []):
            self._queue.put_nowait((job_id, percent, stage))

    async def close(self) -> None:
        """Deliver what is queued, then stop."""
        self._queue.put_nowait(None)
        if self._task is not None:
            await self._task

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def tasks(self) -> list[asyncio.Task[None]]:
        """The delivery task, for the caller to await once cancelled."""
        return [self._task] if self._task is not None else []

    async def _pump(self) -> None:
        while (update := await self._queue.get()) is not None:
            job_id, percent, stage = update
            try:
                await self._callback(job_id, percent, stage)
            except Exception:
                # A broken progress display must not stop the download.
                if not self._failed:
                    log.warning("Progress callback failed for job %s.", job_id, exc_info=True)
                self._failed = True


async def _read_lines(
    stream: asyncio.StreamReader,
    name: str,
    output: SpotdlOutput,
    progress: _ProgressRelay,
    activity: _Activity,
) -> None:
    loop = asyncio.get_running_loop()
    while True:
        try:
            raw = await stream.readline()
        except ValueError:
            # A line longer than the limit: asyncio dropped it; carry on with the next one.
            activity.last = loop.time()
            continue
        if not raw:
            return
        activity.last = loop.time()
        output.feed(name, raw.decode("utf-8", errors="replace"), progress)


async def _kill_group(process: asyncio.subprocess.Process, waiter: asyncio.Task[int]) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after a grace period."""
    _signal_group(process.pid, signal.SIGTERM)
    await asyncio.wait({waiter}, timeout=_TERM_GRACE_SECS)
    # Children (ffmpeg, a wrapper's spotdl) may outlive the leader: the group gets SIGKILL
    # either way. The group id stays reserved while any member lives, so this reaches only
    # our processes; once all are gone it finds nothing.
    _signal_group(process.pid, signal.SIGKILL)
    await asyncio.wait({waiter}, timeout=_TERM_GRACE_SECS)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
