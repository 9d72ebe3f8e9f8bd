"""Plain data that crosses layers: links, track metadata, import results, job states."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class LinkKind(enum.StrEnum):
    """What a Spotify link points at."""

    TRACK = "track"
    ALBUM = "album"
    PLAYLIST = "playlist"
    ARTIST = "artist"


@dataclass(frozen=True)
class SpotifyLink:
    """One link found in a message, reduced to its canonical kind and id."""

    kind: LinkKind
    spotify_id: str

    @property
    def url(self) -> str:
        """The canonical open.spotify.com address."""
        return f"https://open.spotify.com/{self.kind.value}/{self.spotify_id}"


class JobStatus(enum.StrEnum):
    """Where one download job is."""

    QUEUED = "queued"
    DOWNLOADING = "downloading"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        """True for a state that no worker will change again."""
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class MetadataSource(enum.StrEnum):
    """Where an import's track list came from."""

    WEB_API = "web_api"
    SPOTDL = "spotdl"


class SkipReason(enum.StrEnum):
    """Why an entry of an album or playlist was not imported."""

    LOCAL_FILE = "local file"
    EPISODE = "podcast episode"
    UNAVAILABLE = "unavailable"
    UNPLAYABLE = "not playable"
    DUPLICATE = "duplicate"


@dataclass
class TrackMeta:
    """Everything we store about one track, enough for spotdl to tag it offline."""

    spotify_id: str
    title: str
    artists: list[str]
    album: str
    album_id: str
    album_artist: str
    duration_ms: int
    track_number: int = 1
    disc_number: int = 1
    disc_count: int = 1
    tracks_count: int = 1
    release_date: str = ""
    isrc: str | None = None
    publisher: str = ""
    genres: list[str] = field(default_factory=list)
    cover_url: str | None = None
    explicit: bool = False
    copyright: str | None = None
    popularity: int | None = None
    artist_id: str | None = None
    album_type: str | None = None

    @property
    def artist(self) -> str:
        """The primary artist."""
        return self.artists[0] if self.artists else "Unknown artist"

    @property
    def display_name(self) -> str:
        """`Artist, Artist - Title`, the way spotdl names a song."""
        return f"{', '.join(self.artists)} - {self.title}"


@dataclass
class TrackList:
    """The result of reading one link: a named list of tracks and what was skipped."""

    link: SpotifyLink
    name: str
    tracks: list[TrackMeta]
    source: MetadataSource = MetadataSource.WEB_API
    owner: str | None = None
    skipped: dict[SkipReason, int] = field(default_factory=dict)
    total_available: int = 0
    capped_at: int | None = None

    def skip(self, reason: SkipReason, count: int = 1) -> None:
        """Count `count` entries skipped for `reason`."""
        self.skipped[reason] = self.skipped.get(reason, 0) + count

    @property
    def skipped_total(self) -> int:
        """How many entries were skipped in all."""
        return sum(self.skipped.values())


@dataclass(frozen=True)
class JobEvent:
    """One state change of a job, as published on `jobs:{job_id}`."""

    job_id: int
    status: JobStatus
    progress: int
    message: str = ""
    request_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready data."""
        return {
            "job_id": self.job_id,
            "request_id": self.request_id,
            "status": self.status.value,
            "progress": self.progress,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobEvent:
        """Read an event published by `to_dict`."""
        return cls(
            job_id=int(data["job_id"]),
            request_id=data.get("request_id"),
            status=JobStatus(data["status"]),
            progress=int(data["progress"]),
            message=str(data.get("message") or ""),
        )
