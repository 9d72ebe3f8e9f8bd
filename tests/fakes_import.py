"""Small fakes of the import service's ports, shared by the SQLite and PostgreSQL suites."""

from __future__ import annotations

from collections.abc import Sequence

from core.types import SpotifyLink, TrackList


class FakeMetadata:
    """Answers each link with a prepared track list."""

    def __init__(self, lists: dict[str, TrackList]) -> None:
        self.lists = lists
        self.reads = 0

    async def read(self, link: SpotifyLink, *, user_token: str | None = None) -> TrackList:
        self.reads += 1
        return self.lists[link.spotify_id]


class RecordingQueue:
    """A JobQueue that only remembers which jobs it was handed."""

    def __init__(self) -> None:
        self.sent: list[int] = []

    def enqueue(self, job_ids: Sequence[int], *, delay_secs: float = 0) -> None:
        self.sent.extend(job_ids)
