"""SQLAlchemy 2 models: tracks, requests, download jobs and the link between them.

Also what the chat bots remember: each person's settings and the file ids a platform gave.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time in UTC, as stored in every timestamp column."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A stored timestamp as an aware UTC time (SQLite hands them back without a zone)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base with stable constraint names for migrations."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Track(Base):
    """One Spotify track, stored once however often it is asked for."""

    __tablename__ = "tracks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    spotify_id: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(Text)
    artists: Mapped[list[str]] = mapped_column(JSON)
    album: Mapped[str] = mapped_column(Text)
    album_id: Mapped[str] = mapped_column(String(64))
    album_artist: Mapped[str] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)
    track_number: Mapped[int] = mapped_column(Integer, default=1)
    disc_number: Mapped[int] = mapped_column(Integer, default=1)
    disc_count: Mapped[int] = mapped_column(Integer, default=1)
    tracks_count: Mapped[int] = mapped_column(Integer, default=1)
    release_date: Mapped[str] = mapped_column(String(16), default="")
    isrc: Mapped[str | None] = mapped_column(String(32))
    publisher: Mapped[str] = mapped_column(Text, default="")
    genres: Mapped[list[str]] = mapped_column(JSON, default=list)
    cover_url: Mapped[str | None] = mapped_column(Text)
    explicit: Mapped[bool] = mapped_column(Boolean, default=False)
    copyright: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Request(Base):
    """One person's ask: who, where, which link, and which reply shows its progress."""

    __tablename__ = "requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    chat_id: Mapped[str | None] = mapped_column(String(64))
    # Whether that chat is a private one (paced more loosely); None on older rows.
    chat_is_private: Mapped[bool | None] = mapped_column(Boolean)
    # The person's message that asked, which the bot's answers quote.
    source_message_id: Mapped[str | None] = mapped_column(String(64))
    reply_message_id: Mapped[str | None] = mapped_column(String(64))
    link: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    spotify_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(Text, default="")
    quality: Mapped[str] = mapped_column(String(16))
    metadata_source: Mapped[str] = mapped_column(String(16), default="web_api")
    skipped: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    capped_at: Mapped[int | None] = mapped_column(Integer)
    # resolving (recorded, its metadata not read yet), open, finished (every job final and
    # every finished track handed over, or found impossible to hand over) or cancelled.
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    items: Mapped[list[RequestItem]] = relationship(
        back_populates="request", order_by="RequestItem.position"
    )


class DownloadJob(Base):
    """One track at one quality; its finished file serves every later request."""

    __tablename__ = "download_jobs"
    __table_args__ = (UniqueConstraint("track_id", "quality", name="uq_download_jobs_track"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))
    quality: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    output_path: Mapped[str | None] = mapped_column(Text)
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    # Which worker holds a downloading job and when it last showed signs of life.
    worker_id: Mapped[str | None] = mapped_column(String(64))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A job queued again after a passing fault waits until then before a batch takes it.
    retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    track: Mapped[Track] = relationship()


class RequestItem(Base):
    """A track's place in a request, with the job that fetches it."""

    __tablename__ = "request_items"

    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("download_jobs.id"), index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    request: Mapped[Request] = relationship(back_populates="items")
    job: Mapped[DownloadJob] = relationship()


class UserSetting(Base):
    """One person's choices on one platform."""

    __tablename__ = "user_settings"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    quality: Mapped[str | None] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class SentFile(Base):
    """A file id a platform gave one bot for a track at a quality."""

    __tablename__ = "sent_files"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    bot_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    spotify_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    quality: Mapped[str] = mapped_column(String(16), primary_key=True)
    file_id: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
