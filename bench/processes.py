"""The processes the benchmark starts: stand-ins on loopback, and the commands it measures.

`measure()` runs one command to its end and gives its wall time, its CPU time together with
every child it waited for (`getrusage(RUSAGE_CHILDREN)` before and after), each output line
with the moment it arrived, and what a `Sampler` saw of its process tree: the peak memory
per role (the command itself, spotdl, ffmpeg) and when each process came and went.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis.asyncio as aioredis

from bench.errors import BenchError

_log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
# Memory is sampled this often; children are looked for every few samples, since psutil
# reads every process of the machine to find them.
SAMPLE_INTERVAL_SECS = 0.05
DISCOVER_EVERY_SAMPLES = 4
# How long a stand-in may take to say where it listens (the audio source makes its tone first).
START_LIMIT_SECS = 120.0
# How long a stopped process gets before it is killed.
STOP_GRACE_SECS = 10.0
_MB = 1024 * 1024
OTHER_ROLE = "other"
# What the command line of a spotdl process holds: the stand-in wrapper, or spotdl itself.
_SPOTDL_MARKERS = ("spotdl_wrapper", "spotdl-standin", "-m spotdl")


def python_env(**extra: str) -> dict[str, str]:
    """A small environment for our own Python processes: no proxies, no inherited settings."""
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "PYTHONPATH": str(ROOT),
        "NO_PROXY": "*",
        "LANG": "C.UTF-8",
    }
    env.update(extra)
    return env


# Sampling a process tree.


@dataclass
class Seen:
    """One process of a sampled tree: its role, when it was seen, its peak memory and CPU."""

    role: str
    first_secs: float
    last_secs: float
    peak_rss: int = 0
    # User and system CPU of the process itself, and of the children it waited for.
    own_cpu_secs: float = 0.0
    children_cpu_secs: float = 0.0


@dataclass
class TreeSample:
    """What a sampler saw of one process tree, times counted from its start."""

    processes: dict[int, Seen] = field(default_factory=dict)
    # The largest sum of RSS per role across one sample (ffmpeg runs several at once).
    peak_role_total: dict[str, int] = field(default_factory=dict)
    samples: int = 0

    def peak_mb(self, role: str) -> float | None:
        """The largest RSS of one process of `role`, in MB; None when none was seen."""
        peaks = [seen.peak_rss for seen in self.processes.values() if seen.role == role]
        return max(peaks) / _MB if peaks else None

    def total_mb(self, role: str) -> float | None:
        """The largest RSS of all processes of `role` at once, in MB."""
        total = self.peak_role_total.get(role)
        return total / _MB if total else None

    def of_role(self, role: str) -> list[Seen]:
        """The processes of `role`, in the order they appeared."""
        return sorted(
            (seen for seen in self.processes.values() if seen.role == role),
            key=lambda seen: seen.first_secs,
        )


def _role(process: psutil.Process) -> str:
    try:
        name = process.name()
        command = process.cmdline()
    except psutil.Error:
        return OTHER_ROLE
    # ffmpeg's arguments name files under spotdl's folders, so it is recognised by name.
    if name in ("ffmpeg", "ffprobe"):
        return "ffmpeg"
    joined = " ".join(command)
    is_spotdl = any(marker in joined for marker in _SPOTDL_MARKERS) or (
        bool(command) and Path(command[0]).name == "spotdl"
    )
    return "spotdl" if is_spotdl else OTHER_ROLE


class Sampler:
    """Samples the RSS and CPU of a process and its descendants every 50 ms."""

    def __init__(self, pid: int, role: str) -> None:
        self._root = psutil.Process(pid)
        self._root_role = role
        self._started = time.perf_counter()
        self._tracked: dict[int, psutil.Process] = {pid: self._root}
        self.result = TreeSample()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin sampling in the background."""
        self._task = asyncio.create_task(self._run(), name=f"bench:sampler:{self._root.pid}")

    async def stop(self) -> TreeSample:
        """Take a last sample, stop, and return what was seen."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        return self.result

    async def _run(self) -> None:
        tick = 0
        while True:
            if tick % DISCOVER_EVERY_SAMPLES == 0:
                self._discover()
            self._sample()
            tick += 1
            await asyncio.sleep(SAMPLE_INTERVAL_SECS)

    def _discover(self) -> None:
        with contextlib.suppress(psutil.Error):
            for child in self._root.children(recursive=True):
                self._tracked.setdefault(child.pid, child)

    def _sample(self) -> None:
        now = time.perf_counter() - self._started
        totals: dict[str, int] = {}
        for pid, process in list(self._tracked.items()):
            try:
                with process.oneshot():
                    rss = process.memory_info().rss
                    cpu = process.cpu_times()
            except psutil.Error:
                del self._tracked[pid]
                continue
            seen = self.result.processes.get(pid)
            if seen is None:
                role = self._root_role if pid == self._root.pid else _role(process)
                seen = self.result.processes[pid] = Seen(role, now, now)
            elif seen.role == OTHER_ROLE:
                # spotdl is started through `env` and a shell; it is named once it runs.
                seen.role = _role(process)
            seen.last_secs = now
            seen.peak_rss = max(seen.peak_rss, rss)
            seen.own_cpu_secs = cpu.user + cpu.system
            seen.children_cpu_secs = cpu.children_user + cpu.children_system
            totals[seen.role] = totals.get(seen.role, 0) + rss
        peaks = self.result.peak_role_total
        for role, total in totals.items():
            peaks[role] = max(peaks.get(role, 0), total)
        self.result.samples += 1


# Measured runs.


@dataclass
class Measured:
    """One measured command: exit status, times, output lines and its process tree."""

    argv: list[str]
    returncode: int
    wall_secs: float
    cpu_secs: float
    stdout: list[tuple[float, str]]
    stderr: list[tuple[float, str]]
    tree: TreeSample

    @property
    def json_records(self) -> list[dict[str, Any]]:
        """The JSON objects the command printed, one a line."""
        return [json.loads(line) for _, line in self.stdout if line.startswith("{")]

    def stderr_tail(self, lines: int = 15) -> str:
        """The last lines the command wrote to stderr."""
        return "\n".join(line for _, line in self.stderr[-lines:])


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def _read_lines(
    stream: asyncio.StreamReader, into: list[tuple[float, str]], started: float
) -> None:
    while line := await stream.readline():
        into.append((time.perf_counter() - started, line.decode(errors="replace").rstrip("\n")))


async def measure(
    argv: Sequence[str], *, env: dict[str, str], cwd: Path, role: str, limit_secs: float
) -> Measured:
    """Run `argv` to its end while sampling it; raise BenchError past `limit_secs`.

    The CPU time counts every process the command waited for, so no other child of this
    process may end while it runs.
    """
    cpu_before = _cpu_of_children()
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    sampler = Sampler(process.pid, role)
    sampler.start()
    stdout: list[tuple[float, str]] = []
    stderr: list[tuple[float, str]] = []
    assert process.stdout is not None and process.stderr is not None
    readers = [
        asyncio.create_task(_read_lines(process.stdout, stdout, started), name="bench:stdout"),
        asyncio.create_task(_read_lines(process.stderr, stderr, started), name="bench:stderr"),
    ]
    try:
        await asyncio.wait_for(process.wait(), limit_secs)
        wall_secs = time.perf_counter() - started
        await asyncio.gather(*readers)
    except TimeoutError:
        _kill_group(process.pid)
        await process.wait()
        raise BenchError(
            f"{' '.join(argv[:4])} ... did not finish within {limit_secs:.0f} s"
        ) from None
    finally:
        tree = await sampler.stop()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    cpu_secs = _cpu_of_children() - cpu_before
    return Measured(list(argv), process.returncode or 0, wall_secs, cpu_secs, stdout, stderr, tree)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def stop_process(
    process: asyncio.subprocess.Process, sig: signal.Signals = signal.SIGTERM
) -> None:
    """Send `sig` to a process this benchmark started, then kill it if it lingers."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)
    try:
        await asyncio.wait_for(process.wait(), STOP_GRACE_SECS)
    except TimeoutError:
        _log.warning("Process %s ignored %s; killing it.", process.pid, sig.name)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


# The stand-ins.


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _first_line(process: asyncio.subprocess.Process, what: str) -> str:
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), START_LIMIT_SECS)
    except TimeoutError:
        raise BenchError(f"the {what} did not start within {START_LIMIT_SECS:.0f} s") from None
    if not line:
        raise BenchError(f"the {what} exited before it started (see its log)")
    return line.decode().strip()


@contextlib.asynccontextmanager
async def audio_source(
    cache_dir: Path, duration_secs: float, log_path: Path
) -> AsyncIterator[str]:
    """Run the audio source stand-in in its own process; yield its base URL."""
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.standins.audio",
            "--cache-dir",
            str(cache_dir),
            "--duration",
            f"{duration_secs:g}",
            cwd=ROOT,
            env=python_env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
        )
        try:
            base_url = await _first_line(process, "audio source")
            if not base_url.startswith("http://127.0.0.1:"):
                raise BenchError(f"the audio source answered {base_url!r}, not a loopback URL")
            yield base_url
        finally:
            # The audio source stops cleanly on SIGINT (KeyboardInterrupt).
            await stop_process(process, signal.SIGINT)


class SpotifyServer:
    """The Spotify stand-in process (bench.spotify_server) and its command channel."""

    def __init__(self, process: asyncio.subprocess.Process, hello: dict[str, str]) -> None:
        self.process = process
        self.hello = hello
        self._lock = asyncio.Lock()

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, log_path: Path, **sizes: float) -> AsyncIterator[SpotifyServer]:
        """Start the stand-in with the catalog `sizes` (see bench.spotify_server)."""
        options = [
            part
            for name, value in sizes.items()
            for part in (f"--{name.replace('_', '-')}", f"{value:g}")
        ]
        with log_path.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.spotify_server",
                *options,
                cwd=ROOT,
                env=python_env(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
            )
            try:
                hello = json.loads(await _first_line(process, "Spotify stand-in"))
                if not str(hello.get("base_url", "")).startswith("http://127.0.0.1:"):
                    raise BenchError("the Spotify stand-in did not listen on 127.0.0.1")
                yield cls(process, hello)
            finally:
                if process.stdin is not None and not process.stdin.is_closing():
                    process.stdin.close()
                try:
                    await asyncio.wait_for(process.wait(), STOP_GRACE_SECS)
                except TimeoutError:
                    await stop_process(process)

    async def command(self, line: str) -> dict[str, Any]:
        """Send one command and return its JSON answer."""
        assert self.process.stdin is not None and self.process.stdout is not None
        async with self._lock:
            self.process.stdin.write(f"{line}\n".encode())
            await self.process.stdin.drain()
            answer = await asyncio.wait_for(self.process.stdout.readline(), START_LIMIT_SECS)
        if not answer:
            raise BenchError("the Spotify stand-in stopped answering")
        result: dict[str, Any] = json.loads(answer)
        return result

    async def reset(self) -> None:
        """Forget the requests counted so far."""
        await self.command("reset")

    async def stats(self) -> dict[str, Any]:
        """The requests since the last reset: `requests`, `by_endpoint`, `token_requests`."""
        return await self.command("stats")

    async def set_delay(self, secs: float) -> None:
        """Add `secs` to every answer from now on."""
        await self.command(f"delay {secs:g}")


@contextlib.asynccontextmanager
async def redis_server(work_dir: Path) -> AsyncIterator[str]:
    """Run redis-server on a free loopback port, keeping nothing on disk; yield its URL."""
    server = shutil.which("redis-server")
    if server is None:
        raise BenchError("redis-server is not installed (scripts/setup installs it)")
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        server,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(work_dir),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        await _wait_for_redis(url)
        yield url
    finally:
        await stop_process(process)


async def _wait_for_redis(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    deadline = time.monotonic() + START_LIMIT_SECS
    try:
        while True:
            try:
                await client.ping()
                return
            except (aioredis.ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise BenchError(f"redis-server at {url} did not answer") from None
                await asyncio.sleep(0.05)
    finally:
        await client.aclose()
