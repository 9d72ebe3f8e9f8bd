"""The `soundforge` commands other than import: doctor, run and worker without their needs."""

from __future__ import annotations

import pytest

from tests.fixtures.cli import Soundforge

pytestmark = pytest.mark.e2e


async def test_doctor_gives_each_check_a_verdict(soundforge: Soundforge) -> None:
    done = await soundforge.run("doctor")

    assert done.returncode == 0, done.stdout + done.stderr
    for check in ("spotdl", "ffmpeg", "deno", "database", "redis", "spotify", "disk"):
        assert check in done.stdout
    assert "credentials accepted" in done.stdout
    assert "│ fail" not in done.stdout and "│ warn" not in done.stdout


async def test_doctor_names_the_fix_for_what_is_missing(soundforge: Soundforge) -> None:
    done = await soundforge.run(
        "doctor",
        SPOTDL_COMMAND="/nonexistent/spotdl",
        SPOTIFY_CLIENT_SECRET="wrong",
        REDIS_URL="redis://127.0.0.1:1/0",
    )

    assert done.returncode == 1
    assert "pip install spotdl" in done.stdout
    assert "start redis-server" in done.stdout
    assert "rejected this bot's credentials" in done.stdout


async def test_run_without_a_chat_token_says_which_variable_to_set(
    soundforge: Soundforge,
) -> None:
    done = await soundforge.run("run")

    assert done.returncode == 1
    assert "TELEGRAM_BOT_TOKEN" in done.stderr and "DISCORD_BOT_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr


async def test_worker_without_redis_explains_the_embedded_mode(soundforge: Soundforge) -> None:
    done = await soundforge.run("worker")

    assert done.returncode == 1
    assert "REDIS_URL" in done.stderr


async def test_an_invalid_setting_is_named(soundforge: Soundforge) -> None:
    done = await soundforge.run("doctor", DOWNLOAD_CONCURRENCY="many")

    assert done.returncode != 0
    assert "DOWNLOAD_CONCURRENCY" in done.stderr
    assert "Traceback" not in done.stderr
