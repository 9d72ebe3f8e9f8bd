"""A loopback audio source: generated audio over HTTP, for the real spotdl and yt-dlp to fetch.

It serves one sine tone per duration (made with ffmpeg once and cached on disk) as
`/audio/{track_id}.opus` with Range support, a cover image at `/cover.jpg`, and
`/lookup/{track_id}`, which tells the spotdl wrapper whether the source "has" a track and at
which address. Every track exists unless a test says otherwise; per track a test can make it
missing, flaky (the first N requests answer 503, or 429 when rate-limited), hanging (the
request never gets an answer) or sign-in (the wrapper makes yt-dlp report YouTube's "Sign in to
confirm you're not a bot"). Request counters per track let tests see what was fetched.

Start it inside a test's event loop (`async with AudioSource(cache_dir) as source`) or as its
own process: `python -m tests.standins.audio --cache-dir DIR` prints its base URL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import logging
import socket
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

_log = logging.getLogger(__name__)

# A few seconds keeps a test batch quick; the benchmark asks for about three minutes.
DEFAULT_DURATION_SECS = 3.0
AUDIO_EXT = "opus"
_AUDIO_CONTENT_TYPE = "audio/ogg"
_TONE_HZ = 440
_OPUS_BITRATE = "96k"
_COVER_SIZE = "300x300"


class Fault(enum.StrEnum):
    """How the source misbehaves for one track."""

    MISSING = "missing"
    FLAKY = "flaky"
    RATE_LIMITED = "rate_limited"
    HANGING = "hanging"
    SIGN_IN = "sign_in"


@dataclass
class _TrackFault:
    fault: Fault
    # For FLAKY and RATE_LIMITED: how many requests still fail before the track is served.
    remaining: int = 0


def generate_tone(cache_dir: Path, duration_secs: float) -> Path:
    """Return an Opus file of a sine tone lasting `duration_secs`, made once per duration."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"tone-{duration_secs:g}s.{AUDIO_EXT}"
    if path.exists():
        return path
    partial = path.with_name(f"partial-{path.name}")
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={_TONE_HZ}:duration={duration_secs:g}",
        "-c:a",
        "libopus",
        "-b:a",
        _OPUS_BITRATE,
        "-f",
        "ogg",
        str(partial),
    )
    partial.replace(path)
    return path


def generate_cover(cache_dir: Path) -> Path:
    """Return a small JPEG cover, made once."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / "cover.jpg"
    if path.exists():
        return path
    partial = path.with_name("partial-cover.jpg")
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"color=c=0x3366cc:s={_COVER_SIZE}",
        "-frames:v",
        "1",
        "-f",
        "image2",
        str(partial),
    )
    partial.replace(path)
    return path


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        stdin=subprocess.DEVNULL,
    )


class AudioSource:
    """The audio source stand-in; `base_url` is valid between `start()` and `close()`."""

    def __init__(self, cache_dir: Path, duration_secs: float = DEFAULT_DURATION_SECS) -> None:
        self.cache_dir = cache_dir
        self.duration_secs = duration_secs
        self.base_url = ""
        # Requests per track id, one counter per endpoint.
        self.audio_requests: Counter[str] = Counter()
        self.lookups: Counter[str] = Counter()
        self.cover_requests = 0
        self._faults: dict[str, _TrackFault] = {}
        self._durations: dict[str, float] = {}
        self._runner: web.AppRunner | None = None
        self._hanging: set[asyncio.Task[Any]] = set()
        self._release = asyncio.Event()

    # Test controls.

    def set_missing(self, track_id: str) -> None:
        """Make the source have no match for `track_id`."""
        self._faults[track_id] = _TrackFault(Fault.MISSING)

    def set_flaky(self, track_id: str, failures: int = 1) -> None:
        """Answer the first `failures` audio requests for `track_id` with 503."""
        self._faults[track_id] = _TrackFault(Fault.FLAKY, failures)

    def set_rate_limited(self, track_id: str, failures: int = 1) -> None:
        """Answer the first `failures` audio requests for `track_id` with 429."""
        self._faults[track_id] = _TrackFault(Fault.RATE_LIMITED, failures)

    def set_hanging(self, track_id: str) -> None:
        """Accept audio requests for `track_id` and never answer them."""
        self._faults[track_id] = _TrackFault(Fault.HANGING)

    def set_sign_in(self, track_id: str) -> None:
        """Make yt-dlp report YouTube's sign-in demand for `track_id` (through the wrapper)."""
        self._faults[track_id] = _TrackFault(Fault.SIGN_IN)

    def set_duration(self, track_id: str, duration_secs: float) -> None:
        """Serve a tone of `duration_secs` for `track_id` instead of the default length."""
        self._durations[track_id] = duration_secs

    def clear(self, track_id: str) -> None:
        """Serve `track_id` normally again."""
        self._faults.pop(track_id, None)

    def audio_url(self, track_id: str) -> str:
        """Where the source serves `track_id`."""
        return f"{self.base_url}/audio/{track_id}.{AUDIO_EXT}"

    @property
    def cover_url(self) -> str:
        """Where the source serves its cover image."""
        return f"{self.base_url}/cover.jpg"

    # Life cycle.

    async def start(self) -> str:
        """Generate the audio, bind 127.0.0.1 on a free port and return the base URL."""
        await asyncio.to_thread(generate_tone, self.cache_dir, self.duration_secs)
        await asyncio.to_thread(generate_cover, self.cache_dir)
        app = web.Application()
        app.router.add_get("/lookup/{track_id}", self._lookup)
        app.router.add_get("/audio/{name}", self._audio)
        app.router.add_get("/cover.jpg", self._cover)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self.base_url = f"http://127.0.0.1:{port}"
        _log.debug("Audio source listening on %s.", self.base_url)
        return self.base_url

    async def close(self) -> None:
        """Release hanging requests and stop serving."""
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> AudioSource:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # Handlers.

    async def _lookup(self, request: web.Request) -> web.Response:
        track_id = request.match_info["track_id"]
        self.lookups[track_id] += 1
        fault = self._faults.get(track_id)
        if fault is not None and fault.fault is Fault.MISSING:
            return web.json_response({"track_id": track_id, "found": False})
        return web.json_response(
            {
                "track_id": track_id,
                "found": True,
                "url": self.audio_url(track_id),
                "fault": fault.fault.value if fault is not None else None,
            }
        )

    async def _audio(self, request: web.Request) -> web.StreamResponse:
        track_id, dot, ext = request.match_info["name"].rpartition(".")
        if not dot or ext != AUDIO_EXT:
            raise web.HTTPNotFound()
        self.audio_requests[track_id] += 1
        fault = self._faults.get(track_id)
        if fault is not None:
            answer = await self._fault_answer(fault)
            if answer is not None:
                return answer
        duration = self._durations.get(track_id, self.duration_secs)
        path = await asyncio.to_thread(generate_tone, self.cache_dir, duration)
        # FileResponse answers Range requests (206 with Content-Range) and HEAD on its own.
        return web.FileResponse(path, headers={"Content-Type": _AUDIO_CONTENT_TYPE})

    async def _fault_answer(self, fault: _TrackFault) -> web.StreamResponse | None:
        if fault.fault is Fault.MISSING:
            raise web.HTTPNotFound()
        if fault.fault is Fault.SIGN_IN:
            raise web.HTTPForbidden(text="Sign in to confirm you're not a bot")
        if fault.fault is Fault.HANGING:
            await self._release.wait()
            raise web.HTTPServiceUnavailable()
        if fault.remaining > 0:
            fault.remaining -= 1
            if fault.fault is Fault.RATE_LIMITED:
                raise web.HTTPTooManyRequests(headers={"Retry-After": "1"})
            raise web.HTTPServiceUnavailable()
        return None

    async def _cover(self, request: web.Request) -> web.StreamResponse:
        self.cover_requests += 1
        return web.FileResponse(generate_cover(self.cache_dir))


async def _serve(cache_dir: Path, duration_secs: float) -> None:
    async with AudioSource(cache_dir, duration_secs) as source:
        print(source.base_url, flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()


def main() -> None:
    """Serve the audio source until interrupted, printing its base URL first."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--duration", type=float, default=DEFAULT_DURATION_SECS)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.cache_dir, args.duration))


if __name__ == "__main__":
    main()
