"""What the chat benchmarks share: the music on loopback, `soundforge` runs, and the figures.

Each chat benchmark (`bench/chat_telegram.py`, `bench/chat_discord.py`) builds a `Stage`
(the Spotify stand-in with a one-track single and an album, and the audio source with the
real spotdl behind the wrapper), starts `soundforge run` against its own chat stand-in
with `start_run`, and prints its rows with `percentile`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures.audio import spotdl_standin_command
from tests.standins.audio import DEFAULT_DURATION_SECS, AudioSource, generate_tone
from tests.standins.spotify import Catalog, SpotifyStandin

ROOT = Path(__file__).resolve().parents[1]
# How long one phase may take before the benchmark gives up.
PHASE_LIMIT_SECS = 1800.0
# How long `soundforge run` gets to stop on SIGTERM.
STOP_LIMIT_SECS = 120.0


@dataclass
class Stage:
    """The music the chats ask for, served on loopback."""

    root: Path
    spotify: SpotifyStandin
    audio: AudioSource
    single_link: str
    album_link: str

    def environment(self, data_dir: Path) -> dict[str, str]:
        """The environment of a `soundforge` process keeping its data in `data_dir`."""
        return {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(data_dir / "home"),
            "PYTHONPATH": str(ROOT),
            "SPOTIFY_CLIENT_ID": self.spotify.client_id,
            "SPOTIFY_CLIENT_SECRET": self.spotify.client_secret,
            "SPOTIFY_API_BASE_URL": self.spotify.api_base_url,
            "SPOTIFY_ACCOUNTS_BASE_URL": self.spotify.accounts_base_url,
            "SPOTDL_COMMAND": spotdl_standin_command(self.audio.base_url),
            "DATABASE_URL": f"sqlite+aiosqlite:///{data_dir / 'soundforge.db'}",
            "DOWNLOAD_DIR": str(data_dir / "downloads"),
            "METADATA_FALLBACK": "none",
            "SECRET_KEY": "benchmark-secret",
            "LOG_LEVEL": "WARNING",
            "NO_PROXY": "*",
        }


@contextlib.asynccontextmanager
async def stage(root: Path, *, tracks: int, track_secs: float) -> AsyncIterator[Stage]:
    """Serve a single and an album of `tracks` tracks of `track_secs` seconds each."""
    catalog = Catalog()
    artist = catalog.add_artist("Bench Band")
    single = catalog.add_album("Single", artist, tracks=1)
    album = catalog.add_album("Long Album", artist, tracks=tracks)
    async with contextlib.AsyncExitStack() as stack:
        spotify = SpotifyStandin(catalog)
        await spotify.start()
        stack.push_async_callback(spotify.stop)
        audio = await stack.enter_async_context(AudioSource(root / "audio-cache"))
        for track in catalog.album_tracks(album):
            audio.set_duration(track.spotify_id, track_secs)

        # Make the tones once, so no run below pays for generating them.
        await asyncio.to_thread(generate_tone, root / "audio-cache", track_secs)
        await asyncio.to_thread(generate_tone, root / "audio-cache", DEFAULT_DURATION_SECS)
        yield Stage(
            root,
            spotify,
            audio,
            single_link=f"https://open.spotify.com/track/{single.track_ids[0]}",
            album_link=f"https://open.spotify.com/album/{album.spotify_id}",
        )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def start_run(
    env: dict[str, str], data_dir: Path, chat_env: dict[str, str]
) -> asyncio.subprocess.Process:
    """Start `soundforge run` in `data_dir` with `chat_env` naming its chats; log to run.log."""
    data_dir.mkdir(parents=True)
    port = free_port()
    run_env = {
        **env,
        **chat_env,
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    with (data_dir / "run.log").open("wb") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "soundforge",
            "run",
            cwd=data_dir,
            env=run_env,
            stdout=log,
            stderr=log,
        )


async def import_wall_secs(env: dict[str, str], data_dir: Path, link: str) -> float:
    """`soundforge import` of `link` with no chat: the figure the chats are compared with."""
    data_dir.mkdir(parents=True)
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "soundforge",
        "import",
        link,
        "--json",
        cwd=data_dir,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.wait_for(process.wait(), PHASE_LIMIT_SECS)
    if process.returncode != 0:
        raise SystemExit(f"soundforge import failed with status {process.returncode}")
    return time.monotonic() - started


async def stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, as a service manager would, and wait for the exit."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), STOP_LIMIT_SECS)


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of `values` lie (nearest rank)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]
