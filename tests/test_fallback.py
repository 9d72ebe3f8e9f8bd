"""The spotdl fallback: links the Web API refuses, read with spotdl's own lookup.

spotdl runs for real, its Spotify client pointed at the stand-in's `/free/v1/` API by
tests/standins/spotdl_spotify_patch.py, and every name lookup outside the loopback refused.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import httpx
import pytest

from config.settings import Settings
from core.errors import MetadataFallbackError, SpotdlMissing, SpotifyNotFound
from core.fallback import SpotdlMetadata, find_song_list
from core.metadata import MetadataReader
from core.spotify import SpotifyClient, TokenStore
from core.types import LinkKind, MetadataSource, SpotifyLink
from tests.fixtures.spotify import spotify_standin_settings
from tests.standins.spotify import Catalog, Entry, Playlist, SpotifyStandin

ROOT = Path(__file__).resolve().parent.parent
WRAPPER = ROOT / "tests" / "standins" / "bin" / "spotdl-standin"

# The smallest spotdl launcher: refuse non-loopback lookups, patch, hand over to spotdl.
TINY_LAUNCHER = """\
import socket, sys
sys.path.insert(0, {root!r})
real_getaddrinfo = socket.getaddrinfo
def loopback_only(host, *args, **kwargs):
    if host not in ("127.0.0.1", "localhost"):
        raise socket.gaierror(socket.EAI_NONAME, "refused " + str(host))
    return real_getaddrinfo(host, *args, **kwargs)
socket.getaddrinfo = loopback_only
from tests.standins.spotdl_spotify_patch import patch_spotdl_spotify
patch_spotdl_spotify({base_url!r})
from spotdl.console.entry_point import console_entry_point
sys.argv = ["spotdl", *sys.argv[1:], "--audio", "youtube", "--lyrics"]
console_entry_point()
"""


@pytest.fixture
def spotdl_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder of the test's own, where spotdl writes its config."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def tiny_launcher(spotify_standin: SpotifyStandin, tmp_path: Path, spotdl_home: Path) -> str:
    """SPOTDL_COMMAND for a launcher that runs the real spotdl against the stand-in."""
    script = tmp_path / "spotdl_launcher.py"
    script.write_text(TINY_LAUNCHER.format(root=str(ROOT), base_url=spotify_standin.base_url))
    return shlex.join([sys.executable, str(script)])


@pytest.fixture
def editorial(spotify_catalog: Catalog) -> Playlist:
    """Spotify's own playlist of four tracks, a local file and an episode."""
    artist = spotify_catalog.add_artist("Кино", ["post-punk"])
    album = spotify_catalog.add_album("Группа крови", artist, tracks=4, discs=2, label="Мелодия")
    return spotify_catalog.add_editorial_playlist(
        "Today's Top Hits/Хиты",
        [*spotify_catalog.album_tracks(album), Entry.local(), Entry.episode()],
    )


def reader_for(settings: Settings, http: httpx.AsyncClient) -> MetadataReader:
    spotify = SpotifyClient(settings, http, TokenStore(settings.data_dir))
    return MetadataReader(settings, spotify, SpotdlMetadata(settings))


async def test_an_editorial_playlist_is_read_with_spotdl_and_says_so(
    spotify_catalog: Catalog,
    spotify_standin: SpotifyStandin,
    spotify_http: httpx.AsyncClient,
    editorial: Playlist,
    tiny_launcher: str,
    tmp_path: Path,
) -> None:
    # Given the Web API answers 404 for Spotify's editorial playlist
    settings = spotify_standin_settings(
        spotify_standin, tmp_path, metadata_fallback="spotdl", spotdl_command=tiny_launcher
    )
    link = SpotifyLink(LinkKind.PLAYLIST, editorial.spotify_id)

    # When the link is read
    result = await reader_for(settings, spotify_http).read(link)

    # Then spotdl read it, and the result says spotdl was the source
    assert result.source is MetadataSource.SPOTDL
    assert result.name == "Today's Top Hits/Хиты"
    tracks = spotify_catalog.album_tracks(spotify_catalog.albums[result.tracks[0].album_id])
    assert [t.spotify_id for t in result.tracks] == [t.spotify_id for t in tracks]
    first = result.tracks[0]
    assert (first.title, first.artist, first.album) == ("Группа крови 1", "Кино", "Группа крови")
    assert (first.disc_count, first.tracks_count, first.publisher) == (2, 4, "Мелодия")
    assert first.isrc == tracks[0].isrc
    assert first.duration_ms == 180_000
    # And the Web API was asked first, spotdl's lookup after
    assert spotify_standin.hits(f"/v1/playlists/{editorial.spotify_id}", status=404) == 1
    assert spotify_standin.hits(f"/free/v1/playlists/{editorial.spotify_id}") >= 1


async def test_the_real_wrapper_reads_someone_elses_playlist_through_the_patch(
    spotify_catalog: Catalog,
    spotify_standin: SpotifyStandin,
    spotify_http: httpx.AsyncClient,
    spotdl_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a playlist the app may not read, and the spotdl wrapper the other tests use
    artist = spotify_catalog.add_artist("Private")
    tracks = spotify_catalog.album_tracks(spotify_catalog.add_album("Theirs", artist, tracks=3))
    playlist = spotify_catalog.add_playlist("Bob's", tracks, owner_id="bob")
    monkeypatch.setenv("SOUNDFORGE_SPOTIFY_URL", spotify_standin.base_url)
    settings = spotify_standin_settings(
        spotify_standin, tmp_path, metadata_fallback="spotdl", spotdl_command=str(WRAPPER)
    )

    # When the link is read
    result = await reader_for(settings, spotify_http).read(
        SpotifyLink(LinkKind.PLAYLIST, playlist.spotify_id)
    )

    # Then spotdl read it
    assert result.source is MetadataSource.SPOTDL
    assert [t.title for t in result.tracks] == ["Theirs 1", "Theirs 2", "Theirs 3"]


async def test_the_cap_applies_to_what_spotdl_read(
    spotify_standin: SpotifyStandin,
    spotify_http: httpx.AsyncClient,
    editorial: Playlist,
    tiny_launcher: str,
    tmp_path: Path,
) -> None:
    settings = spotify_standin_settings(
        spotify_standin,
        tmp_path,
        metadata_fallback="spotdl",
        spotdl_command=tiny_launcher,
        max_tracks_per_request=2,
    )
    result = await reader_for(settings, spotify_http).read(
        SpotifyLink(LinkKind.PLAYLIST, editorial.spotify_id)
    )
    assert [t.title for t in result.tracks] == ["Группа крови 1", "Группа крови 2"]
    assert result.capped_at == 2
    assert result.total_available == 4


async def test_without_the_fallback_the_refusal_stands(
    spotify_standin: SpotifyStandin,
    spotify_http: httpx.AsyncClient,
    editorial: Playlist,
    tmp_path: Path,
) -> None:
    settings = spotify_standin_settings(
        spotify_standin, tmp_path, metadata_fallback="none", spotdl_command="/nonexistent/spotdl"
    )
    with pytest.raises(SpotifyNotFound):
        await reader_for(settings, spotify_http).read(
            SpotifyLink(LinkKind.PLAYLIST, editorial.spotify_id)
        )


async def test_a_missing_spotdl_keeps_the_original_refusal_for_the_user(
    spotify_standin: SpotifyStandin,
    spotify_http: httpx.AsyncClient,
    editorial: Playlist,
    tmp_path: Path,
) -> None:
    # Given the fallback is on but spotdl is not installed
    settings = spotify_standin_settings(
        spotify_standin,
        tmp_path,
        metadata_fallback="spotdl",
        spotdl_command=str(tmp_path / "no-such-spotdl"),
    )

    # When the editorial playlist is read
    with pytest.raises(MetadataFallbackError) as caught:
        await reader_for(settings, spotify_http).read(
            SpotifyLink(LinkKind.PLAYLIST, editorial.spotify_id)
        )

    # Then the person hears why Spotify refused, and the detail names spotdl
    assert isinstance(caught.value.original, SpotifyNotFound)
    assert "editorial" in caught.value.user_message
    assert "could not be started" in caught.value.reason
    assert isinstance(caught.value.__cause__, SpotdlMissing)


async def test_a_failing_spotdl_is_a_fallback_error(tmp_path: Path) -> None:
    command = shlex.join(
        [
            sys.executable,
            "-c",
            "import sys; print('Spotify said no', file=sys.stderr); sys.exit(3)",
        ]
    )
    settings = Settings(_env_file=None, spotdl_command=command)  # type: ignore[call-arg]
    with pytest.raises(MetadataFallbackError) as caught:
        await SpotdlMetadata(settings).fetch(SpotifyLink(LinkKind.ALBUM, "0" * 22))
    assert "status 3" in caught.value.reason
    assert "Spotify said no" in caught.value.reason


async def test_a_spotdl_that_hangs_is_stopped(tmp_path: Path) -> None:
    command = shlex.join([sys.executable, "-c", "import time; time.sleep(60)"])
    settings = Settings(_env_file=None, spotdl_command=command)  # type: ignore[call-arg]
    with pytest.raises(MetadataFallbackError) as caught:
        await SpotdlMetadata(settings, timeout_secs=0.5).fetch(
            SpotifyLink(LinkKind.TRACK, "0" * 22)
        )
    assert "took longer" in caught.value.reason


def test_the_song_list_is_found_after_log_lines() -> None:
    output = (
        "Processing query: https://open.spotify.com/album/x\n"
        "[WARNING] something [odd]\n"
        '[\n    {\n        "name": "A",\n        "song_id": "abc"\n    }\n]\n'
    )
    assert find_song_list(output) == [{"name": "A", "song_id": "abc"}]
    assert find_song_list("no list here\n[broken") is None
