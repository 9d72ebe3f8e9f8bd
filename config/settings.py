"""The settings class, read from the environment and an optional `.env` file.

Built once in the entrypoint and passed down; nothing else reads the environment.
"""

from __future__ import annotations

import enum
import secrets
import shlex
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_KEY_FILE = "secret.key"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# SQLAlchemy async drivers SoundForge installs.
ASYNC_DATABASE_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")
REDIS_SCHEMES = ("redis", "rediss", "unix")


class Quality(enum.StrEnum):
    """Audio quality a user can ask for."""

    LOSSLESS = "lossless"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class MetadataFallback(enum.StrEnum):
    """What to do with a link the Spotify Web API refuses."""

    SPOTDL = "spotdl"
    NONE = "none"


class Settings(BaseSettings):
    """Every setting SoundForge reads; names match the environment variables."""

    # An empty value (`TELEGRAM_BOT_TOKEN=` in a copied example.env) means "not set".
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,
    )

    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_file_base_url: str = "https://api.telegram.org/file/bot"
    telegram_upload_limit_mb: int = Field(default=50, ge=1)

    discord_bot_token: SecretStr | None = None
    discord_api_base_url: str = "https://discord.com/api/v10"
    discord_gateway_url: str = "wss://gateway.discord.gg"
    discord_upload_limit_mb: int = Field(default=10, ge=1)

    spotify_client_id: str | None = None
    spotify_client_secret: SecretStr | None = None
    spotify_api_base_url: str = "https://api.spotify.com/v1"
    spotify_accounts_base_url: str = "https://accounts.spotify.com"
    # A 429 asking for at most this long is waited out; a longer one ends the import.
    spotify_max_wait_secs: float = Field(default=30.0, ge=0)
    # Pages of a playlist or album fetched at once once the total is known.
    spotify_page_concurrency: int = Field(default=8, ge=1)
    metadata_fallback: MetadataFallback = MetadataFallback.SPOTDL
    max_tracks_per_request: int = Field(default=500, ge=1)

    database_url: str = "sqlite+aiosqlite:///./data/soundforge.db"
    redis_url: str | None = None
    download_dir: Path = Path("./data/downloads")
    spotdl_command: str = "spotdl"
    download_concurrency: int = Field(default=3, ge=1)
    default_quality: Quality = Quality.HIGH
    # One spotdl run takes at most this many songs, so its start-up is paid once per batch.
    download_batch_size: int = Field(default=20, ge=1)
    download_max_retries: int = Field(default=3, ge=0)
    download_retry_backoff_secs: float = Field(default=5.0, ge=0)
    # A spotdl run is killed past either limit (seconds of wall clock, seconds with no output).
    download_timeout_secs: float = Field(default=1800.0, gt=0)
    download_inactivity_secs: float = Field(default=300.0, gt=0)
    # A spotdl run does not start when the download folder has less free space than this.
    download_min_free_mb: int = Field(default=200, ge=0)

    http_host: str = "127.0.0.1"
    # 0 takes any free port (tests); the links then carry it only if PUBLIC_BASE_URL does.
    http_port: int = Field(default=8080, ge=0, le=65535)
    public_base_url: str = "http://127.0.0.1:8080"
    secret_key: SecretStr | None = None
    progress_edit_interval_secs: float = Field(default=3.0, ge=0)
    log_level: str = "INFO"

    @field_validator("spotify_api_base_url", "spotify_accounts_base_url", "public_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"use one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @field_validator("spotdl_command")
    @classmethod
    def _command_line(cls, value: str) -> str:
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"not a command line ({exc})") from None
        if not words:
            raise ValueError("empty")
        return value

    @field_validator("database_url")
    @classmethod
    def _async_database(cls, value: str) -> str:
        scheme = value.partition("://")[0]
        if not value.partition("://")[2] or scheme not in ASYNC_DATABASE_SCHEMES:
            raise ValueError(
                "use sqlite+aiosqlite:///path/to/file.db or "
                "postgresql+asyncpg://user:password@host/database"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if value is not None and value.partition("://")[0] not in REDIS_SCHEMES:
            raise ValueError("use redis://host:6379/0 (or rediss:// or unix://)")
        return value

    @property
    def data_dir(self) -> Path:
        """The folder that holds the database (when SQLite) and the secret key."""
        return self.download_dir.parent

    @property
    def embedded(self) -> bool:
        """True when jobs and events stay inside this process (no Redis)."""
        return not self.redis_url

    def resolved_secret_key(self) -> bytes:
        """The key that signs links and encrypts tokens, generated on first use."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.data_dir / SECRET_KEY_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip().encode()
