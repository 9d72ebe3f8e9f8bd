"""The `.spotdl` file handed to spotdl: its Song JSON built from the metadata we stored.

spotdl 4.6 asks Spotify again for a song whose `genres`, `disc_count`, `tracks_count`,
`track_number`, `album_id` or `album_artist` is null, and its tagging fails on a null `isrc`,
`publisher` or `date`, so every one of them is filled here, with an empty value where we know
nothing (spotdl and mutagen write no tag for an empty string).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.types import TrackMeta

SPOTIFY_TRACK_URL = "https://open.spotify.com/track/{}"
_YEAR = re.compile(r"^(\d{4})")


def track_url(spotify_id: str) -> str:
    """The open.spotify.com address spotdl uses as a song's identity (and in its errors)."""
    return SPOTIFY_TRACK_URL.format(spotify_id)


def song_dict(meta: TrackMeta) -> dict[str, Any]:
    """Return the spotdl Song fields for `meta`, complete enough that spotdl stays offline."""
    artists = [name for name in meta.artists if name] or [meta.artist]
    track_number = max(meta.track_number, 1)
    disc_number = max(meta.disc_number, 1)
    year = _YEAR.match(meta.release_date or "")
    return {
        "name": meta.title,
        "artists": artists,
        "artist": artists[0],
        "genres": list(meta.genres),
        "disc_number": disc_number,
        "disc_count": max(meta.disc_count, disc_number),
        "album_name": meta.album,
        "album_artist": meta.album_artist or artists[0],
        "duration": round(meta.duration_ms / 1000),
        "year": int(year.group(1)) if year else 0,
        "date": meta.release_date or "",
        "track_number": track_number,
        "tracks_count": max(meta.tracks_count, track_number),
        "song_id": meta.spotify_id,
        "explicit": meta.explicit,
        "publisher": meta.publisher or "",
        "url": track_url(meta.spotify_id),
        "isrc": meta.isrc or "",
        "cover_url": meta.cover_url,
        "copyright_text": meta.copyright,
        "download_url": None,
        "lyrics": None,
        "popularity": meta.popularity,
        "album_id": meta.album_id or "",
        "list_name": None,
        "list_url": None,
        "list_position": None,
        "list_length": None,
        "artist_id": meta.artist_id,
        "album_type": meta.album_type,
    }


def write_save_file(path: Path, metas: Iterable[TrackMeta]) -> Path:
    """Write the `.spotdl` file for `metas` at `path` (which must end in `.spotdl`)."""
    if path.suffix != ".spotdl":
        raise ValueError(f"spotdl only reads save files ending in .spotdl, not {path.name}")
    path.write_text(
        json.dumps([song_dict(meta) for meta in metas], ensure_ascii=False), encoding="utf-8"
    )
    return path
