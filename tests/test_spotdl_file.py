"""The `.spotdl` file: spotdl 4.6 reads it back whole and has no reason to ask Spotify again."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from core.types import TrackMeta
from workers.spotdl_file import song_dict, write_save_file

# spotdl re-fetches a song from Spotify when any of these is null (downloader.py).
REFETCH_FIELDS = (
    "genres",
    "disc_count",
    "tracks_count",
    "track_number",
    "album_id",
    "album_artist",
)
# spotdl's tagging fails on a null value in any of these (utils/metadata.py).
TAGGED_FIELDS = ("isrc", "publisher", "date")


@pytest.fixture
def spotdl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """spotdl's Song and save-file reader, imported with HOME in tmp_path (spotdl makes
    folders on import)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    # spotdl's package import registers FastAPI handlers the deprecated way; not ours to fix.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from spotdl.types.song import Song
        from spotdl.utils import search

    return SimpleNamespace(Song=Song, get_simple_songs=search.get_simple_songs)


def sparse_meta() -> TrackMeta:
    """A track Spotify told us little about."""
    return TrackMeta(
        spotify_id="0eGsygTp906u18L0Oimnem",
        title="Untitled",
        artists=[],
        album="",
        album_id="",
        album_artist="",
        duration_ms=61_400,
        track_number=0,
        disc_number=0,
        disc_count=0,
        tracks_count=0,
    )


def full_meta() -> TrackMeta:
    return TrackMeta(
        spotify_id="4uLU6hMCjMI75M1A2tKUQC",
        title="Never Gonna Give You Up",
        artists=["Rick Astley"],
        album="Whenever You Need Somebody",
        album_id="6N9PS4QXF1D0OWPk0Sxtb4",
        album_artist="Rick Astley",
        duration_ms=213_573,
        track_number=1,
        disc_number=1,
        disc_count=1,
        tracks_count=10,
        release_date="1987-11-12",
        isrc="GBARL9300135",
        publisher="Sony Music UK",
        genres=["dance pop"],
        cover_url="https://i.scdn.co/image/ab67616d0000b273",
        explicit=False,
        copyright="1987 Sony Music",
        popularity=80,
        artist_id="0gxyHStUsqpMadRV0Di1Qt",
        album_type="album",
    )


def test_a_full_track_keeps_its_metadata_and_its_spotify_address() -> None:
    song = song_dict(full_meta())

    assert song["name"] == "Never Gonna Give You Up"
    assert song["artists"] == ["Rick Astley"] and song["artist"] == "Rick Astley"
    assert song["url"] == "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC"
    assert song["song_id"] == "4uLU6hMCjMI75M1A2tKUQC"
    assert song["cover_url"] == "https://i.scdn.co/image/ab67616d0000b273"
    assert song["year"] == 1987 and song["date"] == "1987-11-12"
    assert song["duration"] == 214
    assert song["download_url"] is None


@pytest.mark.parametrize("meta", [full_meta(), sparse_meta()], ids=["full", "sparse"])
def test_no_field_that_makes_spotdl_refetch_or_fail_tagging_is_null(meta: TrackMeta) -> None:
    song = song_dict(meta)

    for name in REFETCH_FIELDS + TAGGED_FIELDS:
        assert song[name] is not None, name


def test_a_sparse_track_gets_safe_fillers() -> None:
    song = song_dict(sparse_meta())

    assert song["artists"] == ["Unknown artist"] and song["album_artist"] == "Unknown artist"
    assert song["track_number"] == 1 and song["tracks_count"] == 1
    assert song["disc_number"] == 1 and song["disc_count"] == 1
    assert (song["isrc"], song["publisher"], song["date"], song["year"]) == ("", "", "", 0)


def test_a_year_only_release_date_gives_the_year() -> None:
    meta = full_meta()
    meta.release_date = "1999"

    assert song_dict(meta)["year"] == 1999


def test_spotdl_builds_its_song_from_every_field(spotdl: SimpleNamespace) -> None:
    song = spotdl.Song.from_dict(song_dict(full_meta()))

    assert set(song_dict(full_meta())) == set(spotdl.Song.__dataclass_fields__)
    assert song.display_name == "Rick Astley - Never Gonna Give You Up"
    assert song.json == song_dict(full_meta())


def test_spotdl_reads_the_save_file_back_as_its_songs(
    tmp_path: Path, spotdl: SimpleNamespace
) -> None:
    path = write_save_file(tmp_path / "batch.spotdl", [full_meta(), sparse_meta()])

    songs = spotdl.get_simple_songs([str(path)])

    assert [song.song_id for song in songs] == ["4uLU6hMCjMI75M1A2tKUQC", "0eGsygTp906u18L0Oimnem"]
    assert json.loads(path.read_text("utf-8"))[1]["artists"] == ["Unknown artist"]


def test_a_save_file_must_end_in_spotdl(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.spotdl"):
        write_save_file(tmp_path / "batch.json", [full_meta()])
