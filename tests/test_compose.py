"""docker-compose.yml describes the scaled layout with our own commands."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_file_runs_our_commands_on_real_images() -> None:
    # given the compose file
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]

    # then it names redis, postgres, one run and one worker service
    assert set(services) >= {"redis", "postgres", "run", "worker"}
    assert services["redis"]["image"].startswith("redis:")
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["run"]["command"] == ["run"]
    assert services["worker"]["command"] == ["worker"]

    # and the chat and worker processes share the download volume, Redis and PostgreSQL
    for name in ("run", "worker"):
        service = services[name]
        assert "downloads:/data" in service["volumes"]
        assert service["environment"]["REDIS_URL"].startswith("redis://redis:")
        assert service["environment"]["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "downloads" in compose["volumes"]


def test_image_entrypoint_is_the_soundforge_command() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["soundforge"]' in dockerfile
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'soundforge = "soundforge.cli:main"' in pyproject
