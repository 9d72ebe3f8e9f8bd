"""Settings for tests that run SoundForge in-process, every address on loopback."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from config.settings import Settings


def loopback_settings(data_dir: Path, **values: object) -> Settings:
    """Settings with data in `data_dir` and every address on loopback (closed unless given)."""
    base: dict[str, object] = {
        "database_url": f"sqlite+aiosqlite:///{data_dir / 'soundforge.db'}",
        "download_dir": data_dir / "downloads",
        "secret_key": SecretStr("test-secret-key-for-signing-links"),
        "http_host": "127.0.0.1",
        "http_port": 0,
        "public_base_url": "http://127.0.0.1:1",
        "spotify_api_base_url": "http://127.0.0.1:1/v1",
        "spotify_accounts_base_url": "http://127.0.0.1:1",
        "progress_edit_interval_secs": 0.2,
    }
    base.update(values)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg, arg-type]
