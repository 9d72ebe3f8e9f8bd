"""The database: an async engine, sessions, and migrations applied on start.

Alembic is loaded only when the database is behind: a database already at `HEAD_REVISION`
opens with one SELECT of its revision, which spares each command a tenth of a second.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from core.errors import StorageError

if TYPE_CHECKING:
    from alembic.config import Config

_log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest revision under migrations/versions; a test holds it equal to Alembic's head.
HEAD_REVISION = "0003"
# How long SQLite waits for another process's write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 15_000
# Any fixed number; every SoundForge process takes it while migrating PostgreSQL.
PG_MIGRATION_LOCK_KEY = 0x50F7F0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    """Owns the engine and hands out sessions; `open()` must run before use."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._url = make_url(url)
        self.is_sqlite = self._url.get_backend_name() == "sqlite"
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    @property
    def engine(self) -> AsyncEngine:
        """The engine; raises when `open()` has not run."""
        if self._engine is None:
            raise RuntimeError("Database.open() has not been called")
        return self._engine

    def _sqlite_path(self) -> Path | None:
        database = self._url.database
        if not self.is_sqlite or not database or database == ":memory:":
            return None
        return Path(database)

    async def open(self, *, migrate: bool = True) -> None:
        """Create the engine, check the database answers, and apply migrations."""
        path = self._sqlite_path()
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            connect_args: dict[str, Any] = {}
            if self.is_sqlite:
                connect_args["timeout"] = SQLITE_BUSY_TIMEOUT_MS / 1000
            self._engine = create_async_engine(
                self.url, connect_args=connect_args, pool_pre_ping=not self.is_sqlite
            )
            if self.is_sqlite:
                event.listen(self._engine.sync_engine, "connect", _sqlite_pragmas)
            self._sessions = async_sessionmaker(self._engine, expire_on_commit=False)
            # The first connection turns a new SQLite file to WAL; two processes doing that
            # at once can meet a lock the busy timeout does not cover, so they take turns.
            with self._migration_lock():
                async with self._engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            if migrate and await self._revision() != HEAD_REVISION:
                await self._migrate()
        except (SQLAlchemyError, OSError, ValueError) as exc:
            await self.close()
            raise StorageError(f"{self._url.render_as_string(hide_password=True)}: {exc}") from exc
        _log.info("Database %s is ready.", self._url.render_as_string(hide_password=True))

    async def _revision(self) -> str | None:
        """The revision the database is at; None when it has none (or more than one)."""
        try:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        except SQLAlchemyError as exc:
            # A new database has no alembic_version table yet: migrating creates it.
            _log.debug("No migration revision could be read (%s); migrating.", exc)
            return None
        return str(rows[0][0]) if len(rows) == 1 else None

    async def _migrate(self) -> None:
        with self._migration_lock():
            async with self.engine.begin() as conn:
                if not self.is_sqlite:
                    await conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY}
                    )
                await conn.run_sync(_upgrade_to_head)

    @contextlib.contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """Serialise migrations between processes sharing one SQLite file."""
        path = self._sqlite_path()
        if path is None:
            yield
            return
        with open(path.with_name(path.name + ".migrate.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error."""
        if self._sessions is None:
            raise RuntimeError("Database.open() has not been called")
        async with self._sessions() as session, session.begin():
            yield session

    async def close(self) -> None:
        """Dispose of the engine and its connections."""
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
            self._sessions = None

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at our migrations, optionally bound to a connection."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _upgrade_to_head(connection: Connection) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), "head")
