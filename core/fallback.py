"""Reading a link with spotdl's own metadata lookup, for what the Web API refuses.

`SpotdlMetadata` runs `SPOTDL_COMMAND save URL --save-file -`, finds the JSON list of songs in
what spotdl prints (its log lines may come first) and maps each song to our `TrackMeta`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shlex
import signal
from typing import Any

from config.settings import Settings
from core.errors import MetadataFallbackError, SpotdlMissing
from core.programs import child_environment
from core.types import LinkKind, MetadataSource, SkipReason, SpotifyLink, TrackList, TrackMeta

logger = logging.getLogger(__name__)

# A lookup of a long playlist reads every song one by one; past this it is stopped.
SPOTDL_METADATA_TIMEOUT_SECS = 600.0
# How much of spotdl's error output is kept in the reason of a failure.
ERROR_TAIL_CHARS = 300
_LIST_START = re.compile(r"^\[", re.MULTILINE)


class SpotdlMetadata:
    """Reads tracks, albums, playlists and artists through spotdl's `save` operation."""

    def __init__(self, settings: Settings, *, timeout_secs: float = SPOTDL_METADATA_TIMEOUT_SECS):
        self._settings = settings
        self._timeout_secs = timeout_secs

    async def fetch(self, link: SpotifyLink) -> TrackList:
        """Read `link` with spotdl; raises SpotdlMissing or MetadataFallbackError."""
        command = shlex.split(self._settings.spotdl_command)
        if not command:
            raise SpotdlMissing("SPOTDL_COMMAND is empty")
        stdout, stderr, returncode = await self._run(
            [*command, "save", link.url, "--save-file", "-"], link
        )
        if returncode != 0:
            raise MetadataFallbackError(
                link.url, f"spotdl exited with status {returncode}: {_tail(stderr or stdout)}"
            )

        songs = find_song_list(stdout)
        if songs is None:
            raise MetadataFallbackError(link.url, f"spotdl printed no song list: {_tail(stdout)}")
        result = songs_to_track_list(link, songs)
        if not result.tracks:
            raise MetadataFallbackError(link.url, "spotdl found no songs")
        logger.info(
            "spotdl read %d tracks of %s %s.", len(result.tracks), link.kind, link.spotify_id
        )
        return result

    async def _run(self, argv: list[str], link: SpotifyLink) -> tuple[str, str, int]:
        """Run spotdl in its own process group, killing the whole group past the timeout."""
        logger.debug("Running %s for %s %s.", argv[0], link.kind, link.spotify_id)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                env=child_environment(),
            )
        except (FileNotFoundError, PermissionError) as exc:
            raise SpotdlMissing(f"{argv[0]} could not be started: {exc.strerror}") from exc

        try:
            stdout, stderr = await asyncio.wait_for(
                process.communicate(), timeout=self._timeout_secs
            )
        except TimeoutError as exc:
            _kill_group(process.pid)
            await process.wait()
            raise MetadataFallbackError(
                link.url, f"spotdl took longer than {self._timeout_secs:.0f} s"
            ) from exc
        except BaseException:
            _kill_group(process.pid)
            await process.wait()
            raise
        returncode = process.returncode if process.returncode is not None else -1
        return (
            stdout.decode("utf-8", errors="replace"),
            stderr.decode("utf-8", errors="replace"),
            returncode,
        )


def find_song_list(output: str) -> list[dict[str, Any]] | None:
    """The last JSON list of song objects in `output`, skipping any log lines around it."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] | None = None
    for match in _LIST_START.finditer(output):
        try:
            value, _ = decoder.raw_decode(output, match.start())
        except ValueError:
            continue
        if isinstance(value, list) and all(isinstance(song, dict) for song in value):
            found = value
    return found


def songs_to_track_list(link: SpotifyLink, songs: list[dict[str, Any]]) -> TrackList:
    """Map spotdl's song objects to a track list, in list or album order."""
    result = TrackList(link=link, name="", tracks=[], source=MetadataSource.SPOTDL)
    if link.kind is LinkKind.PLAYLIST and all(song.get("list_position") for song in songs):
        songs = sorted(songs, key=lambda song: int(song["list_position"]))
    elif link.kind is LinkKind.ALBUM:
        songs = sorted(
            songs, key=lambda song: (song.get("disc_number") or 1, song.get("track_number") or 1)
        )

    seen: set[str] = set()
    for song in songs:
        meta = song_to_track_meta(song)
        if meta is None:
            result.skip(SkipReason.UNAVAILABLE)
        elif meta.spotify_id in seen:
            result.skip(SkipReason.DUPLICATE)
        else:
            seen.add(meta.spotify_id)
            result.tracks.append(meta)

    first = songs[0] if songs else {}
    if link.kind is LinkKind.TRACK and result.tracks:
        result.name = result.tracks[0].display_name
    else:
        result.name = str(first.get("list_name") or first.get("album_name") or link.spotify_id)
    result.owner = str(first.get("album_artist") or first.get("artist") or "") or None
    result.total_available = len(result.tracks) + result.skipped_total
    return result


def song_to_track_meta(song: dict[str, Any]) -> TrackMeta | None:
    """One spotdl song object as our TrackMeta, or None when it has no Spotify id."""
    song_id = song.get("song_id")
    if not song_id:
        return None
    artists = [str(artist) for artist in song.get("artists") or [] if artist]
    artist = str(song.get("artist") or (artists[0] if artists else ""))
    return TrackMeta(
        spotify_id=str(song_id),
        title=str(song.get("name") or ""),
        artists=artists or [artist],
        album=str(song.get("album_name") or ""),
        album_id=str(song.get("album_id") or ""),
        album_artist=str(song.get("album_artist") or artist),
        duration_ms=int(float(song.get("duration") or 0) * 1000),
        track_number=int(song.get("track_number") or 1),
        disc_number=int(song.get("disc_number") or 1),
        disc_count=int(song.get("disc_count") or 1),
        tracks_count=int(song.get("tracks_count") or 1),
        release_date=str(song.get("date") or song.get("year") or ""),
        isrc=song.get("isrc") or None,
        publisher=str(song.get("publisher") or ""),
        genres=[str(genre) for genre in song.get("genres") or []],
        cover_url=song.get("cover_url") or None,
        explicit=bool(song.get("explicit")),
        copyright=song.get("copyright_text") or None,
        popularity=song.get("popularity"),
        artist_id=song.get("artist_id"),
        album_type=song.get("album_type"),
    )


def _tail(text: str) -> str:
    """The end of spotdl's output, on one line."""
    return " ".join(text.strip().split())[-ERROR_TAIL_CHARS:] or "no output"


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
