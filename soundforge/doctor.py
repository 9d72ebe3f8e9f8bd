"""`soundforge doctor`: checks what SoundForge needs, each with a verdict and the fix."""

from __future__ import annotations

import asyncio
import enum
import shlex
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from rich.console import Console
from rich.table import Table

from config.settings import Settings
from core.errors import SoundForgeError
from core.programs import find_program
from core.spotify import SpotifyClient, TokenStore
from storage.db import Database
from storage.layout import prepare_download_dir
from workers.broker import check_redis

# How long one probe command may take before it counts as broken.
PROBE_TIMEOUT_SECS = 60.0


class Verdict(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    verdict: Verdict
    detail: str
    fix: str = ""


async def _version(argv: list[str], *, first_line: bool = False) -> str | None:
    """What a command prints for its version flag (its last line, or its first), or None."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
    except OSError:
        return None
    try:
        output, _ = await asyncio.wait_for(process.communicate(), PROBE_TIMEOUT_SECS)
    except TimeoutError:
        process.kill()
        await process.wait()
        return None
    if process.returncode != 0:
        return None
    lines = output.decode(errors="replace").strip().splitlines()
    if not lines:
        return ""
    return lines[0] if first_line else lines[-1]


async def check_spotdl(settings: Settings) -> Check:
    argv = shlex.split(settings.spotdl_command)
    if not argv or find_program(argv[0]) is None:
        return Check(
            "spotdl",
            Verdict.FAIL,
            f"{settings.spotdl_command!r} is not on PATH",
            "pip install spotdl==4.6.0, or set SPOTDL_COMMAND",
        )
    version = await _version([find_program(argv[0]) or argv[0], *argv[1:], "--version"])
    if version is None:
        return Check("spotdl", Verdict.FAIL, "spotdl --version failed", "reinstall spotdl")
    return Check("spotdl", Verdict.OK, version)


async def check_ffmpeg(_settings: Settings) -> Check:
    if find_program("ffmpeg") is None:
        return Check("ffmpeg", Verdict.FAIL, "not on PATH", "apt-get install ffmpeg")
    version = await _version(["ffmpeg", "-version"], first_line=True)
    first = (version or "").split(" Copyright")[0]
    return Check("ffmpeg", Verdict.OK if version is not None else Verdict.FAIL, first or "?")


async def check_deno(_settings: Settings) -> Check:
    deno = find_program("deno")
    if deno is None:
        return Check(
            "deno",
            Verdict.WARN,
            "not on PATH: yt-dlp may fail on YouTube",
            "pip install deno (a JavaScript runtime for yt-dlp)",
        )
    return Check("deno", Verdict.OK, deno)


async def check_database(settings: Settings) -> Check:
    database = Database(settings.database_url)
    try:
        await database.open()
    except SoundForgeError as exc:
        return Check("database", Verdict.FAIL, exc.detail, "check DATABASE_URL and its folder")
    finally:
        await database.close()
    return Check("database", Verdict.OK, "opened and migrated")


async def check_redis_server(settings: Settings) -> Check:
    if not settings.redis_url:
        return Check("redis", Verdict.OK, "not used: jobs run inside `soundforge run`")
    try:
        await asyncio.to_thread(check_redis, settings)
    except SoundForgeError as exc:
        return Check("redis", Verdict.FAIL, exc.detail, "start redis-server or fix REDIS_URL")
    return Check("redis", Verdict.OK, "answers")


async def check_spotify(settings: Settings) -> Check:
    if not settings.spotify_client_id or settings.spotify_client_secret is None:
        return Check(
            "spotify",
            Verdict.FAIL,
            "SPOTIFY_CLIENT_ID / SPOTIFY_CLIENT_SECRET not set",
            "create an app at developer.spotify.com (see the README)",
        )
    async with httpx.AsyncClient(timeout=20) as http:
        client = SpotifyClient(settings, http, TokenStore(settings.data_dir))
        try:
            await client.check_credentials()
        except SoundForgeError as exc:
            return Check("spotify", Verdict.FAIL, exc.user_message, "check the credentials")
    return Check("spotify", Verdict.OK, "credentials accepted")


async def check_disk(settings: Settings) -> Check:
    folder = settings.download_dir
    try:
        prepare_download_dir(folder)
    except SoundForgeError as exc:
        return Check("disk", Verdict.FAIL, exc.detail, "set DOWNLOAD_DIR to a writable folder")
    free_mb = shutil.disk_usage(folder).free // (1024 * 1024)
    if free_mb < settings.download_min_free_mb:
        return Check(
            "disk",
            Verdict.FAIL,
            f"{free_mb} MB free in {folder}",
            f"free space or move DOWNLOAD_DIR (needs {settings.download_min_free_mb} MB)",
        )
    return Check("disk", Verdict.OK, f"{free_mb} MB free in {folder}")


CHECKS: tuple[Callable[[Settings], Awaitable[Check]], ...] = (
    check_spotdl,
    check_ffmpeg,
    check_deno,
    check_database,
    check_redis_server,
    check_spotify,
    check_disk,
)


async def doctor(settings: Settings) -> int:
    """Print every check; 1 when any failed."""
    results = await asyncio.gather(*(check(settings) for check in CHECKS))
    table = Table("check", "verdict", "detail", "fix")
    colours = {Verdict.OK: "green", Verdict.WARN: "yellow", Verdict.FAIL: "red"}
    for result in results:
        verdict = f"[{colours[result.verdict]}]{result.verdict.value}[/]"
        table.add_row(result.name, verdict, result.detail, result.fix)
    Console(width=160).print(table)
    return 1 if any(result.verdict is Verdict.FAIL for result in results) else 0
