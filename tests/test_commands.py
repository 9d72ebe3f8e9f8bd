"""The `soundforge` commands other than import: doctor, run and worker without their needs."""

from __future__ import annotations

import socket
from pathlib import Path

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


async def test_a_copied_example_env_with_empty_values_counts_as_unset(
    soundforge: Soundforge,
) -> None:
    # given the example .env copied as the README says, nothing filled in
    example = Path(__file__).resolve().parent.parent / "config" / "example.env"
    (soundforge.data_dir / ".env").write_text(example.read_text())

    done = await soundforge.run("run")

    assert done.returncode == 1
    assert "no chat is configured" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL"),
        ({"SPOTDL_COMMAND": "spotdl 'x"}, "SPOTDL_COMMAND"),
        ({"DATABASE_URL": "nonsense"}, "sqlite+aiosqlite"),
        ({"DATABASE_URL": "postgresql://db/soundforge"}, "postgresql+asyncpg"),
        ({"REDIS_URL": "nonsense"}, "redis://"),
        ({"HTTP_PORT": "99999"}, "HTTP_PORT"),
        ({"DOWNLOAD_DIR": "/proc/soundforge/downloads"}, "set DOWNLOAD_DIR"),
    ],
)
async def test_each_bad_setting_is_one_sentence_naming_it(
    soundforge: Soundforge, env: dict[str, str], words: str
) -> None:
    done = await soundforge.run("import", "spotify:track:4uLU6hMCjMI75M1A2tKUQC", **env)

    assert done.returncode == 1
    assert words in done.stderr
    assert "Traceback" not in done.stderr


async def test_a_file_server_port_in_use_is_named(soundforge: Soundforge) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = await soundforge.run(
            "run",
            HTTP_PORT=str(port),
            TELEGRAM_BOT_TOKEN="123:abc",
            TELEGRAM_API_BASE_URL="http://127.0.0.1:9/bot",
            TELEGRAM_FILE_BASE_URL="http://127.0.0.1:9/file/bot",
        )

    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


async def test_doctor_finds_spotdl_and_deno_in_the_virtualenv_without_activating_it(
    soundforge: Soundforge,
) -> None:
    # given a PATH without the virtualenv, as `.venv/bin/soundforge doctor` has
    done = await soundforge.run("doctor", PATH="/usr/bin:/bin", SPOTDL_COMMAND="spotdl")

    # then spotdl and deno are found where the downloads will find them
    assert done.returncode == 0, done.stdout
    assert "│ spotdl   │ ok" in done.stdout
    assert "│ deno     │ ok" in done.stdout


async def test_doctor_catches_a_wrong_secret_even_with_a_token_on_disk(
    soundforge: Soundforge,
) -> None:
    # given a token stored by an earlier, correctly configured run
    assert (await soundforge.run("doctor")).returncode == 0

    # when the secret is wrong
    done = await soundforge.run("doctor", SPOTIFY_CLIENT_SECRET="wrong")

    # then the stored token is not taken for proof of the credentials
    assert done.returncode == 1
    assert "rejected this bot's credentials" in done.stdout
