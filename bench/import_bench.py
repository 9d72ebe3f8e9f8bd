"""The import benchmark: `soundforge import` against spotdl alone, a repeat, metadata, memory.

Every row runs on the loopback stand-ins, each in its own process: the Spotify stand-in
(bench.spotify_server), the audio source (tests.standins.audio) with the real spotdl, yt-dlp
and ffmpeg behind the wrapper, and redis-server for the worker row. The rows:

- `album`: an album of N tracks of about S seconds, `soundforge import URL --json` in a fresh
  data folder beside one `spotdl download songs.spotdl --threads T` of the same songs at the
  same quality (the save file built with song_dict from the same metadata), wall and CPU
  time as ratios ours / spotdl's;
- `repeat`: the same album again in the same data folder, wall time and spotdl runs;
- `playlist`: a playlist's metadata read as the import reads it (core.metadata and
  core.spotify) beside a plain loop that fetches the pages one after another, with the
  stand-in slowed by a fixed delay per answer;
- `memory`: peak RSS of the import process and its spotdl child (from `album`), and of a
  `soundforge worker` on Redis while it downloads a few tracks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.errors import BenchError
from bench.processes import (
    ROOT,
    Measured,
    Sampler,
    SpotifyServer,
    TreeSample,
    audio_source,
    measure,
    python_env,
    redis_server,
    stop_process,
)
from bench.report import Report, Row, Verdict, load_line, megabytes, ratio, secs
from config.settings import MetadataFallback, Quality, Settings
from core.metadata import MetadataReader
from core.spotify import SpotifyClient, TokenStore
from core.types import LinkKind, SpotifyLink, TrackMeta
from tests.fixtures.audio import spotdl_standin_command
from workers.runner import OUTPUT_FORMATS, QUALITY_ARGS
from workers.spotdl_file import write_save_file

_log = logging.getLogger(__name__)

SCENARIOS = ("album", "repeat", "playlist", "memory")
# One download run (ours or spotdl's) may take this long before the benchmark gives up.
RUN_LIMIT_SECS = 1800.0
# How long `soundforge worker` may take to say it is ready.
WORKER_READY_SECS = 60.0
HTTP_TIMEOUT_SECS = 30.0
# The repeat's target: well under a second.
REPEAT_TARGET_SECS = 1.0
PLAYLIST_TARGET_SPEEDUP = 4.0


@dataclass(frozen=True)
class Options:
    """What to run and at which sizes."""

    scenarios: tuple[str, ...]
    tracks: int = 20
    seconds: float = 180.0
    threads: int = 3
    quality: Quality = Quality.HIGH
    playlist_items: int = 2000
    tracks_per_album: int = 11
    delay_ms: float = 20.0
    repeats: int = 3
    worker_tracks: int = 3
    rounds: int = 1


@dataclass
class _Alone:
    """One measured run of spotdl alone: the files it wrote and the spotdl runs it took."""

    run: Measured
    spotdl_runs: int
    files: int


@dataclass
class _Import:
    """One measured `soundforge import`, with the spotdl runs it caused."""

    run: Measured
    spotdl_runs: int

    @property
    def completed(self) -> int:
        return sum(1 for record in self.run.json_records if record.get("status") == "completed")


class ImportBench:
    """Runs the chosen rows in one work folder, against stand-ins already started."""

    def __init__(
        self, options: Options, work: Path, spotify: SpotifyServer, report: Report
    ) -> None:
        self.options = options
        self.work = work
        self.spotify = spotify
        self.report = report
        self.audio_url = ""
        self.run_log = work / "spotdl-runs.log"
        self.run_log.touch()
        # The first round's import folder, which the repeat imports into again.
        self.album_data = work / "album-0" / "data"
        self.album: _Import | None = None
        self.reference: Measured | None = None

    @property
    def hello(self) -> dict[str, str]:
        return self.spotify.hello

    def _album_url(self, key: str = "album_id") -> str:
        return f"https://open.spotify.com/album/{self.hello[key]}"

    def _spotdl_runs(self) -> int:
        return len(self.run_log.read_text(encoding="utf-8").splitlines())

    def soundforge_env(self, data_dir: Path, **extra: str) -> dict[str, str]:
        """The environment of a `soundforge` process: every address on the stand-ins."""
        return python_env(
            HOME=str(data_dir.parent / "home"),
            SPOTIFY_CLIENT_ID=self.hello["client_id"],
            SPOTIFY_CLIENT_SECRET=self.hello["client_secret"],
            SPOTIFY_API_BASE_URL=self.hello["api_base_url"],
            SPOTIFY_ACCOUNTS_BASE_URL=self.hello["accounts_base_url"],
            SOUNDFORGE_SPOTIFY_URL=self.hello["base_url"],
            SPOTDL_COMMAND=spotdl_standin_command(self.audio_url),
            SOUNDFORGE_SPOTDL_LOG=str(self.run_log),
            DATABASE_URL=f"sqlite+aiosqlite:///{data_dir / 'soundforge.db'}",
            DOWNLOAD_DIR=str(data_dir / "downloads"),
            DOWNLOAD_CONCURRENCY=str(self.options.threads),
            DOWNLOAD_MIN_FREE_MB="0",
            METADATA_FALLBACK="none",
            **extra,
        )

    def settings(self, data_dir: Path, **overrides: Any) -> Settings:
        """Settings for reading metadata in this process, as the import does."""
        values: dict[str, Any] = {
            "spotify_client_id": self.hello["client_id"],
            "spotify_client_secret": self.hello["client_secret"],
            "spotify_api_base_url": self.hello["api_base_url"],
            "spotify_accounts_base_url": self.hello["accounts_base_url"],
            "download_dir": data_dir / "downloads",
            "database_url": f"sqlite+aiosqlite:///{data_dir / 'soundforge.db'}",
            "redis_url": None,
            "metadata_fallback": MetadataFallback.NONE,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    async def run_import(
        self, data_dir: Path, url: str, *, role: str = "import", **env: str
    ) -> _Import:
        """Run `soundforge import URL --json` in `data_dir` and measure it."""
        data_dir.mkdir(parents=True, exist_ok=True)
        runs_before = self._spotdl_runs()
        argv = [
            sys.executable,
            "-m",
            "soundforge",
            "import",
            url,
            "--json",
            "--quality",
            self.options.quality.value,
        ]
        run = await measure(
            argv,
            env=self.soundforge_env(data_dir, **env),
            cwd=data_dir,
            role=role,
            limit_secs=RUN_LIMIT_SECS,
        )
        return _Import(run, self._spotdl_runs() - runs_before)

    async def warm_up(self) -> None:
        """Load what both sides load once, unmeasured, so neither pays a cold disk cache."""
        modules = (
            "spotdl.console.entry_point, yt_dlp, mutagen, soundforge.app, soundforge.importer"
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", f"import {modules}", cwd=ROOT, env=python_env()
        )
        await process.wait()

    # Row 1: an album, ours beside spotdl alone.

    async def album_row(self) -> None:
        options = self.options
        label = f"1 album {options.tracks}x{options.seconds:g}s"
        metas = await self._album_metadata()
        url = self._album_url()
        pairs: list[tuple[_Import, _Alone]] = []
        for round_index in range(options.rounds):
            # Alternate which side goes first, so a change in the machine's load hits both.
            data_dir = self.work / f"album-{round_index}" / "data"
            if round_index % 2 == 0:
                alone = await self._spotdl_alone(metas, round_index)
                ours = await self.run_import(data_dir, url)
            else:
                ours = await self.run_import(data_dir, url)
                alone = await self._spotdl_alone(metas, round_index)
            pairs.append((ours, alone))
        self.album, self.reference = pairs[0][0], pairs[0][1].run

        # Compare the medians, when both sides produced every file in every round.
        invalid = [
            (index, ours, alone)
            for index, (ours, alone) in enumerate(pairs)
            if ours.completed != options.tracks or alone.files != options.tracks
        ]
        for index, ours, alone in invalid:
            self.report.note(
                f"row 1, round {index + 1} is invalid: SoundForge completed {ours.completed} "
                f"and spotdl wrote {alone.files} of {options.tracks} files.\n"
                f"soundforge stderr:\n{ours.run.stderr_tail()}\n"
                f"spotdl stderr:\n{alone.run.stderr_tail()}"
            )
        for measure_name, mine, theirs in (
            (
                "wall time",
                statistics.median(ours.run.wall_secs for ours, _ in pairs),
                statistics.median(alone.run.wall_secs for _, alone in pairs),
            ),
            (
                "CPU time (with children)",
                statistics.median(ours.run.cpu_secs for ours, _ in pairs),
                statistics.median(alone.run.cpu_secs for _, alone in pairs),
            ),
        ):
            verdict = Verdict.INVALID
            if not invalid:
                verdict = Verdict.MET if mine <= theirs else Verdict.MISSED
            self.report.add(
                Row(
                    label,
                    measure_name,
                    secs(mine),
                    secs(theirs),
                    ratio(mine, theirs),
                    "<= 1.0",
                    verdict,
                )
            )
        ours, alone = pairs[-1]
        self.report.add(
            Row(label, "spotdl runs", str(ours.spotdl_runs), str(alone.spotdl_runs)),
            Row(label, "files completed", str(ours.completed), str(alone.files)),
        )
        self._profile_album(pairs)

    async def _spotdl_alone(self, metas: list[TrackMeta], round_index: int) -> _Alone:
        """One `spotdl download songs.spotdl` of `metas`, through the same wrapper."""
        work = self.work / f"spotdl-alone-{round_index}"
        out_dir = work / "out"
        out_dir.mkdir(parents=True)
        save_file = write_save_file(work / "songs.spotdl", metas)
        command = [
            *shlex.split(spotdl_standin_command(self.audio_url)),
            "download",
            str(save_file),
            "--threads",
            str(self.options.threads),
            "--output",
            str(out_dir / "{artists} - {title}.{output-ext}"),
            *QUALITY_ARGS[self.options.quality],
        ]
        runs_before = self._spotdl_runs()
        run = await measure(
            command,
            env=python_env(HOME=str(work / "home"), SOUNDFORGE_SPOTDL_LOG=str(self.run_log)),
            cwd=work,
            role="spotdl",
            limit_secs=RUN_LIMIT_SECS,
        )
        files = len(list(out_dir.glob(f"*.{OUTPUT_FORMATS[self.options.quality]}")))
        return _Alone(run, self._spotdl_runs() - runs_before, files)

    async def _album_metadata(self) -> list[TrackMeta]:
        settings = self.settings(self.work / "metadata")
        async with httpx.AsyncClient(trust_env=False, timeout=HTTP_TIMEOUT_SECS) as http:
            spotify = SpotifyClient(settings, http, TokenStore(settings.data_dir))
            link = SpotifyLink(LinkKind.ALBUM, self.hello["album_id"])
            tracklist = await MetadataReader(settings, spotify, None).read(link)
        if len(tracklist.tracks) != self.options.tracks:
            raise BenchError(
                f"the stand-in album has {len(tracklist.tracks)} tracks, not {self.options.tracks}"
            )
        return tracklist.tracks

    def _profile_album(self, pairs: list[tuple[_Import, _Alone]]) -> None:
        """Where our import spends its time and CPU, beside spotdl's own run, per round."""
        note = self.report.note
        note("row 1, where the time goes (process trees sampled every 50 ms):")
        for index, (ours, alone) in enumerate(pairs):
            first = "spotdl alone first" if index % 2 == 0 else "SoundForge first"
            note(
                f"  round {index + 1} ({first}): SoundForge {secs(ours.run.wall_secs)} wall, "
                f"{secs(ours.run.cpu_secs)} CPU, {ours.spotdl_runs} spotdl run(s); spotdl alone "
                f"{secs(alone.run.wall_secs)} wall, {secs(alone.run.cpu_secs)} CPU."
            )
            note("    " + _import_timeline(ours.run))
            note(f"    {_import_cpu(ours.run)}")

    async def startup_costs(self) -> None:
        """The fixed cost of each side: spotdl on an empty save file, our modules loading."""
        empty_dir = self.work / "spotdl-empty"
        empty_dir.mkdir(parents=True)
        save_file = write_save_file(empty_dir / "empty.spotdl", [])
        spotdl = await measure(
            [
                *shlex.split(spotdl_standin_command(self.audio_url)),
                "download",
                str(save_file),
                *QUALITY_ARGS[self.options.quality],
            ],
            env=python_env(HOME=str(empty_dir / "home")),
            cwd=empty_dir,
            role="spotdl",
            limit_secs=RUN_LIMIT_SECS,
        )
        loading = "import soundforge.app, soundforge.importer"
        ours = {}
        for name, code in (("load", loading), ("no-exit", f"{loading}, os; os._exit(0)")):
            ours[name] = await measure(
                [sys.executable, "-c", code],
                env=python_env(),
                cwd=ROOT,
                role="import",
                limit_secs=RUN_LIMIT_SECS,
            )
        teardown = ours["load"].cpu_secs - ours["no-exit"].cpu_secs
        self.report.note(
            f"  fixed costs: one spotdl process on an empty save file takes "
            f"{secs(spotdl.wall_secs)} wall, {secs(spotdl.cpu_secs)} CPU; a Python process "
            f"that loads SoundForge's modules and exits takes {secs(ours['load'].wall_secs)} "
            f"wall, {secs(ours['load'].cpu_secs)} CPU, of which {secs(teardown)} of CPU is the "
            f"interpreter's exit."
        )

    # Row 2: the same album again.

    async def repeat_row(self) -> None:
        label = "2 same album again"
        if self.album is None:
            # The repeat needs a data folder that already holds the album.
            await self.run_import(self.album_data, self._album_url())
        again = await self.run_import(self.album_data, self._album_url())
        valid = again.run.returncode == 0 and again.completed == self.options.tracks
        wall = again.run.wall_secs
        verdict_wall = Verdict.MET if wall < REPEAT_TARGET_SECS else Verdict.MISSED
        verdict_runs = Verdict.MET if again.spotdl_runs == 0 else Verdict.MISSED
        if not valid:
            verdict_wall = verdict_runs = Verdict.INVALID
            self.report.note(f"row 2 is invalid:\n{again.run.stderr_tail()}")
        self.report.add(
            Row(
                label,
                "wall time",
                secs(wall),
                target=f"< {REPEAT_TARGET_SECS:g} s",
                verdict=verdict_wall,
            ),
            Row(label, "CPU time", secs(again.run.cpu_secs)),
            Row(label, "spotdl runs", str(again.spotdl_runs), target="0", verdict=verdict_runs),
        )
        records = [when for when, line in again.run.stdout if line.startswith("{")]
        if records:
            self.report.note(
                f"row 2: the first --json record after {secs(min(records))}, the last after "
                f"{secs(max(records))}, exit after {secs(wall)}."
            )

    # Row 3: a playlist's metadata.

    async def playlist_row(self) -> None:
        options = self.options
        label = f"3 playlist {options.playlist_items} items"
        playlist_id = self.hello["playlist_id"]
        await self.spotify.set_delay(options.delay_ms / 1000)
        walls: dict[str, list[float]] = {"ours": [], "naive": [], "naive+albums": []}
        cpus: dict[str, list[float]] = {side: [] for side in walls}
        requests: dict[str, dict[str, Any]] = {}
        counts: dict[str, int] = {}
        try:
            async with httpx.AsyncClient(trust_env=False, timeout=HTTP_TIMEOUT_SECS) as http:
                for attempt in range(options.repeats):
                    # Alternate the sides, each from a clean count and without a cached token.
                    for side in walls:
                        await self.spotify.reset()
                        cpu_before = _own_cpu_secs()
                        started = time.perf_counter()
                        if side == "ours":
                            counts[side] = await self._read_playlist(http, playlist_id, attempt)
                        else:
                            counts[side] = await naive_playlist(
                                http, self.hello, playlist_id, with_albums=side != "naive"
                            )
                        walls[side].append(time.perf_counter() - started)
                        cpus[side].append(_own_cpu_secs() - cpu_before)
                        requests[side] = await self.spotify.stats()
        finally:
            await self.spotify.set_delay(0)

        medians = {side: statistics.median(values) for side, values in walls.items()}
        valid = all(count == options.playlist_items for count in counts.values())
        speedup = medians["naive"] / medians["ours"]
        verdict = Verdict.MET if speedup >= PLAYLIST_TARGET_SPEEDUP else Verdict.MISSED
        self.report.add(
            Row(
                label,
                "wall time vs pages in a loop",
                secs(medians["ours"]),
                secs(medians["naive"]),
                f"{speedup:.1f}x faster",
                f">= {PLAYLIST_TARGET_SPEEDUP:g}x",
                verdict if valid else Verdict.INVALID,
            ),
            Row(
                label,
                "wall time vs pages+albums in a loop",
                secs(medians["ours"]),
                secs(medians["naive+albums"]),
                f"{medians['naive+albums'] / medians['ours']:.1f}x faster",
            ),
            Row(
                label,
                "requests vs pages in a loop",
                str(requests["ours"]["requests"]),
                str(requests["naive"]["requests"]),
            ),
            Row(
                label,
                "requests vs pages+albums",
                str(requests["ours"]["requests"]),
                str(requests["naive+albums"]["requests"]),
            ),
        )
        self.report.note(
            f"row 3: {options.delay_ms:g} ms added to every stand-in answer, "
            f"{options.tracks_per_album} tracks per album, median of {options.repeats} runs "
            f"(ours {_spread(walls['ours'])}, pages {_spread(walls['naive'])}, "
            f"pages+albums {_spread(walls['naive+albums'])}); "
            f"MAX_TRACKS_PER_REQUEST raised to {options.playlist_items} so every item is read."
        )
        for side, name in (("ours", "SoundForge"), ("naive", "pages"), ("naive+albums", "p+a")):
            by_endpoint = ", ".join(
                f"{count} {endpoint}" for endpoint, count in requests[side]["by_endpoint"].items()
            )
            cpu = statistics.median(cpus[side])
            per_request = cpu / max(1, requests[side]["requests"]) * 1000
            self.report.note(
                f"  {name}: {by_endpoint}; {secs(cpu)} CPU in the benchmark's process "
                f"({per_request:.1f} ms a request)"
            )
        if not valid:
            self.report.note(f"row 3 is invalid: items read {counts}")

    async def _read_playlist(self, http: httpx.AsyncClient, playlist_id: str, attempt: int) -> int:
        settings = self.settings(
            self.work / f"playlist-{attempt}", max_tracks_per_request=self.options.playlist_items
        )
        spotify = SpotifyClient(settings, http, TokenStore(settings.data_dir))
        link = SpotifyLink(LinkKind.PLAYLIST, playlist_id)
        tracklist = await MetadataReader(settings, spotify, None).read(link)
        return len(tracklist.tracks)

    # Row 4: memory.

    async def memory_rows(self) -> None:
        label = "4 peak memory (RSS)"
        if self.album is not None and self.reference is not None:
            tree, alone = self.album.run.tree, self.reference.tree
            self.report.add(
                Row(label, "import process (embedded worker)", megabytes(tree.peak_mb("import"))),
                Row(
                    label,
                    "its spotdl child / spotdl alone",
                    megabytes(tree.peak_mb("spotdl")),
                    megabytes(alone.peak_mb("spotdl")),
                ),
                Row(
                    label,
                    "ffmpeg processes at once",
                    megabytes(tree.total_mb("ffmpeg")),
                    megabytes(alone.total_mb("ffmpeg")),
                ),
            )
        worker, worker_import = await self._worker_run()
        self.report.add(
            Row(label, "soundforge worker (REDIS_URL)", megabytes(worker.peak_mb("worker"))),
            Row(label, "the worker's spotdl child", megabytes(worker.peak_mb("spotdl"))),
            Row(
                label,
                "import process (REDIS_URL)",
                megabytes(worker_import.run.tree.peak_mb("import")),
            ),
        )
        self.report.note(
            f"row 4: the worker downloaded {worker_import.completed} of "
            f"{self.options.worker_tracks} tracks in {secs(worker_import.run.wall_secs)}; "
            f"RSS sampled every 50 ms with psutil."
        )

    async def _worker_run(self) -> tuple[TreeSample, _Import]:
        data_dir = self.work / "worker" / "data"
        data_dir.mkdir(parents=True)
        async with redis_server(self.work / "redis") as redis_url:
            env = self.soundforge_env(data_dir, REDIS_URL=redis_url)
            worker = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "soundforge",
                "worker",
                env=env,
                cwd=data_dir,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            sampler = Sampler(worker.pid, "worker")
            sampler.start()
            lines: list[str] = []
            ready = asyncio.Event()
            reader = asyncio.create_task(_watch_worker(worker, lines, ready), name="bench:worker")
            try:
                try:
                    await asyncio.wait_for(ready.wait(), WORKER_READY_SECS)
                except TimeoutError:
                    tail = "\n".join(lines[-15:])
                    raise BenchError(f"soundforge worker did not start:\n{tail}") from None
                imported = await self.run_import(
                    data_dir, self._album_url("worker_album_id"), REDIS_URL=redis_url
                )
            finally:
                tree = await sampler.stop()
                await stop_process(worker)
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
        if imported.completed != self.options.worker_tracks:
            self.report.note("row 4, the worker's log:\n" + "\n".join(lines[-15:]))
        return tree, imported


async def _watch_worker(
    worker: asyncio.subprocess.Process, lines: list[str], ready: asyncio.Event
) -> None:
    assert worker.stderr is not None
    while line := await worker.stderr.readline():
        text = line.decode(errors="replace").rstrip("\n")
        lines.append(text)
        if "Download worker" in text and "started" in text:
            ready.set()


async def naive_playlist(
    http: httpx.AsyncClient, hello: dict[str, str], playlist_id: str, *, with_albums: bool
) -> int:
    """The naive importer: a token, then each page in turn by its `next` (then each album)."""
    token_response = await http.post(
        f"{hello['accounts_base_url']}/api/token",
        data={"grant_type": "client_credentials"},
        auth=(hello["client_id"], hello["client_secret"]),
    )
    token_response.raise_for_status()
    headers = {"Authorization": f"Bearer {token_response.json()['access_token']}"}
    url: str | None = f"{hello['api_base_url']}/playlists/{playlist_id}/items?limit=50"
    entries: list[dict[str, Any]] = []
    while url:
        response = await http.get(url, headers=headers)
        response.raise_for_status()
        page = response.json()
        entries.extend(page["items"])
        url = page.get("next")
    if with_albums:
        for album_id in _unique(entry["item"]["album"]["id"] for entry in entries):
            response = await http.get(
                f"{hello['api_base_url']}/albums/{album_id}", headers=headers
            )
            response.raise_for_status()
    return len(entries)


def _import_timeline(run: Measured) -> str:
    """The phases of one import: before spotdl, spotdl's life, after it, and its own share."""
    spotdl = run.tree.of_role("spotdl")
    records = [when for when, line in run.stdout if line.startswith("{")]
    last_record = max(records) if records else run.wall_secs
    if not spotdl:
        return f"no spotdl process was seen; the last record after {secs(last_record)}."
    started = min(seen.first_secs for seen in spotdl)
    ended = max(seen.last_secs for seen in spotdl)
    alive = ended - started
    return (
        f"{secs(started)} from start to spotdl running (Python start-up, metadata, rows); "
        f"spotdl alive {secs(alive)} in {len(spotdl)} process(es); {secs(last_record - ended)} "
        f"from its end to the last --json record; {secs(run.wall_secs - last_record)} from "
        f"there to exit: {secs(run.wall_secs - alive)} of wall time outside spotdl."
    )


def _import_cpu(run: Measured) -> str:
    """The CPU of one import split into its own process and spotdl with its children."""
    own = sum(seen.own_cpu_secs for seen in run.tree.processes.values() if seen.role == "import")
    spotdl = sum(seen.own_cpu_secs + seen.children_cpu_secs for seen in run.tree.of_role("spotdl"))
    return (
        f"CPU: {secs(own)} in the import process itself, {secs(spotdl)} in spotdl with its "
        f"ffmpeg children (as last sampled), {secs(run.cpu_secs)} in all (getrusage)."
    )


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _own_cpu_secs() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _spread(values: list[float]) -> str:
    return "/".join(f"{value:.2f}" for value in values) + " s"


async def run_benchmark(options: Options, report: Report) -> None:
    """Start the stand-ins, run the chosen rows into `report`, and stop everything."""
    chosen = set(options.scenarios)
    work = Path(tempfile.mkdtemp(prefix="soundforge-bench-"))
    try:
        async with contextlib.AsyncExitStack() as stack:
            spotify = await stack.enter_async_context(
                SpotifyServer.running(
                    work / "spotify-standin.log",
                    album_tracks=options.tracks,
                    track_secs=options.seconds,
                    worker_tracks=options.worker_tracks,
                    playlist_items=options.playlist_items,
                    tracks_per_album=options.tracks_per_album,
                )
            )
            bench = ImportBench(options, work, spotify, report)
            if chosen & {"album", "repeat", "memory"}:
                bench.audio_url = await stack.enter_async_context(
                    audio_source(work / "audio-cache", options.seconds, work / "audio.log")
                )
                await bench.warm_up()
            if "album" in chosen:
                _log.info("Row 1: an album, SoundForge beside spotdl alone.")
                await bench.album_row()
                await bench.startup_costs()
            if "repeat" in chosen:
                _log.info("Row 2: the same album again.")
                await bench.repeat_row()
            if "playlist" in chosen:
                _log.info("Row 3: a playlist's metadata.")
                await bench.playlist_row()
            if "memory" in chosen:
                _log.info("Row 4: memory, with a worker on Redis.")
                await bench.memory_rows()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        report.note(load_line())
