"""The Spotify Web API client against the loopback stand-in, rule by rule."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from config.settings import Settings
from core.errors import (
    SpotifyAuthError,
    SpotifyCredentialsMissing,
    SpotifyForbidden,
    SpotifyNotFound,
    SpotifyRateLimited,
    SpotifyUnavailable,
)
from core.spotify import SpotifyClient, TokenStore
from core.types import LinkKind, SkipReason, SpotifyLink
from tests.fixtures.spotify import spotify_standin_settings
from tests.standins.spotify import Catalog, Entry, SpotifyStandin


def client_for(settings: Settings, http: httpx.AsyncClient) -> SpotifyClient:
    return SpotifyClient(settings, http, TokenStore(settings.data_dir))


async def test_an_album_gives_every_track_with_every_field_filled(
    spotify_catalog: Catalog, spotify_standin: SpotifyStandin, spotify_client: SpotifyClient
) -> None:
    # Given a two-disc album by an artist with genres
    artist = spotify_catalog.add_artist("Kraftwerk", ["electronic", "krautrock"])
    album = spotify_catalog.add_album(
        "Computer World", artist, tracks=8, discs=2, label="Kling Klang", release_date="1981-05-10"
    )

    # When its link is read
    result = await spotify_client.fetch(SpotifyLink(LinkKind.ALBUM, album.spotify_id))

    # Then every track comes with what spotdl needs to tag it offline
    assert result.name == "Computer World"
    assert [t.spotify_id for t in result.tracks] == album.track_ids
    first, last = result.tracks[0], result.tracks[-1]
    assert (first.disc_number, last.disc_number, last.disc_count) == (1, 2, 2)
    assert first.tracks_count == 8
    assert first.album_artist == "Kraftwerk"
    assert first.release_date == "1981-05-10"
    assert first.publisher == "Kling Klang"
    assert first.genres == ["electronic", "krautrock"]
    assert first.isrc == spotify_catalog.tracks[first.spotify_id].isrc
    assert first.cover_url is not None and first.cover_url.endswith("-640.jpg")
    assert first.album_id == album.spotify_id
    assert result.skipped == {}
    assert result.capped_at is None


async def test_only_single_item_endpoints_are_used(
    spotify_catalog: Catalog, spotify_standin: SpotifyStandin, spotify_client: SpotifyClient
) -> None:
    # Given an artist, an album and a playlist
    artist = spotify_catalog.add_artist("Stereolab")
    album = spotify_catalog.add_album("Dots and Loops", artist, tracks=5)
    playlist = spotify_catalog.add_playlist("Mix", spotify_catalog.album_tracks(album))

    # When each is read
    for link in (
        SpotifyLink(LinkKind.ALBUM, album.spotify_id),
        SpotifyLink(LinkKind.PLAYLIST, playlist.spotify_id),
        SpotifyLink(LinkKind.ARTIST, artist.spotify_id),
        SpotifyLink(LinkKind.TRACK, album.track_ids[0]),
    ):
        await spotify_client.fetch(link)

    # Then no batch endpoint, no top tracks and no renamed playlist path was asked for
    assert not [r for r in spotify_standin.records if "ids" in r.query]
    assert spotify_standin.hits("/top-tracks") == 0
    assert spotify_standin.hits(f"/playlists/{playlist.spotify_id}/tracks") == 0
    assert spotify_standin.hits("/v1/", status=403) == 0


async def test_pages_shorter_than_asked_do_not_end_the_list(
    spotify_catalog: Catalog, spotify_standin: SpotifyStandin, spotify_client: SpotifyClient
) -> None:
    # Given an album of 160 tracks, some of whose pages come back shorter than asked
    artist = spotify_catalog.add_artist("The Long Band")
    album = spotify_catalog.add_album("Everything", artist, tracks=160)

    # When it is read
    result = await spotify_client.album(album.spotify_id)

    # Then every track is there once, in album order
    assert [t.spotify_id for t in result.tracks] == album.track_ids
    # (the gaps short pages left were asked for with a smaller limit)
    shortened = [
        r
        for r in spotify_standin.records
        if r.path.endswith("/tracks") and r.query["limit"] != "50"
    ]
    assert shortened, "the stand-in should have answered at least one page short"


async def test_remaining_pages_are_fetched_concurrently_and_once(
    spotify_catalog: Catalog, spotify_standin: SpotifyStandin, spotify_client: SpotifyClient
) -> None:
    # Given a 400-track playlist on a slow Spotify
    playlist = spotify_catalog.generate_playlist(400, tracks_per_album=20)
    spotify_standin.delay_secs = 0.05

    # When it is read
    result = await spotify_client.playlist(playlist.spotify_id)

    # Then every track is there in order, pages overlapped and none was asked twice
    assert [t.spotify_id for t in result.tracks] == [e.track_id for e in playlist.entries]
    assert spotify_standin.peak_in_flight["/v1/playlists/{id}/items"] > 1
    offsets = spotify_standin.offsets(f"/playlists/{playlist.spotify_id}/items")
    assert len(offsets) == len(set(offsets))


async def test_a_playlist_is_read_from_its_pages_alone(
    spotify_catalog: Catalog, spotify_standin: SpotifyStandin, spotify_client: SpotifyClient
) -> None:
    # Given a playlist whose tracks come from several two-disc albums
    artist = spotify_catalog.add_artist("Pages Only", ["shoegaze"])
    albums = [
        spotify_catalog.add_album(f"Double {n}", artist, tracks=4, discs=2, release_date="1991")
        for n in (1, 2, 3)
    ]
    tracks = [track for album in albums for track in spotify_catalog.album_tracks(album)]
    playlist = spotify_catalog.add_playlist("Doubles", tracks)

    # When it is read
    result = await spotify_client.playlist(playlist.spotify_id)

    # Then no album was asked for
    assert spotify_standin.hits("/albums/") == 0
    # And each track is tagged from the album its playlist item carries
    assert [t.spotify_id for t in result.tracks] == [t.spotify_id for t in tracks]
    last = result.tracks[3]
    assert (last.album, last.album_id, last.album_artist) == (
        "Double 1",
        albums[0].spotify_id,
        "Pages Only",
    )
    assert (last.tracks_count, last.disc_number, last.release_date) == (4, 2, "1991")
    assert last.disc_count >= last.disc_number
    assert last.cover_url is not None and last.cover_url.endswith("-640.jpg")
    assert last.isrc == spotify_catalog.tracks[last.spotify_id].isrc
    # (a playlist item's album holds no label and no genres)
    assert (last.publisher, last.genres) == ("", [])


async def test_the_gaps_short_pages_leave_are_filled_concurrently(
    spotify_catalog: Catalog, spotify_standin: SpotifyStandin, tmp_path: Path
) -> None:
    # Given a 600-track playlist, every third page of which comes back short, on a slow Spotify
    playlist = spotify_catalog.generate_playlist(600, tracks_per_album=20)
    spotify_standin.delay_secs = 0.05
    settings = spotify_standin_settings(spotify_standin, tmp_path, max_tracks_per_request=600)
    watcher = _GapWatcher()

    # When it is read
    async with httpx.AsyncClient(transport=watcher, trust_env=False) as http:
        result = await client_for(settings, http).playlist(playlist.spotify_id)

    # Then every track is there once, in order
    assert [t.spotify_id for t in result.tracks] == [e.track_id for e in playlist.entries]
    # And the gaps were each asked for once, several at the same time
    gap_offsets = [
        int(r.query["offset"])
        for r in spotify_standin.records
        if r.path.endswith("/items") and r.query.get("limit") != "50"
    ]
    assert len(gap_offsets) > 2
    assert len(gap_offsets) == len(set(gap_offsets))
    assert watcher.peak_gaps_in_flight > 1


class _GapWatcher(httpx.AsyncHTTPTransport):
    """A real transport that counts the gap requests (limit below 50) in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.gaps_in_flight = 0
        self.peak_gaps_in_flight = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        is_gap = request.url.params.get("limit", "50") != "50"
        if is_gap:
            self.gaps_in_flight += 1
            self.peak_gaps_in_flight = max(self.peak_gaps_in_flight, self.gaps_in_flight)
        try:
            response = await super().handle_async_request(request)
            await response.aread()
            return response
        finally:
            if is_gap:
                self.gaps_in_flight -= 1


async def test_playlist_entries_under_item_and_under_track_are_both_read(
    spotify_catalog: Catalog, spotify_standin: SpotifyStandin, spotify_client: SpotifyClient
) -> None:
    # Given one playlist in the current shape and one in the older shape
    artist = spotify_catalog.add_artist("Broadcast")
    tracks = spotify_catalog.album_tracks(spotify_catalog.add_album("Tender Buttons", artist))
    current = spotify_catalog.add_playlist("Current", tracks[:6])
    older = spotify_catalog.add_playlist("Older", tracks[4:], legacy_shape=True)

    # When both are read
    current_result = await spotify_client.playlist(current.spotify_id)
    older_result = await spotify_client.playlist(older.spotify_id)

    # Then both give their tracks
    assert [t.title for t in current_result.tracks] == [t.name for t in tracks[:6]]
    assert [t.title for t in older_result.tracks] == [t.name for t in tracks[4:]]


async def test_entries_that_cannot_be_imported_are_skipped_and_counted(
    spotify_catalog: Catalog, spotify_standin: SpotifyStandin, spotify_client: SpotifyClient
) -> None:
    # Given a playlist with a local file, an episode, null entries and an unplayable track
    artist = spotify_catalog.add_artist("Mixed")
    a, b, c, d = spotify_catalog.album_tracks(spotify_catalog.add_album("Four", artist, tracks=4))
    playlist = spotify_catalog.add_playlist(
        "Everything at once",
        [
            a,
            Entry.local(),
            b,
            Entry.episode(),
            Entry.null(),
            c,
            Entry.missing(),
            Entry.unplayable(d),
        ],
    )

    # When it is read
    result = await spotify_client.playlist(playlist.spotify_id)

    # Then only the three playable tracks are kept and the rest is counted by reason
    assert [t.spotify_id for t in result.tracks] == [a.spotify_id, b.spotify_id, c.spotify_id]
    assert all(t.spotify_id for t in result.tracks)
    assert result.skipped == {
        SkipReason.LOCAL_FILE: 1,
        SkipReason.EPISODE: 1,
        SkipReason.UNAVAILABLE: 2,
        SkipReason.UNPLAYABLE: 1,
    }
    assert result.total_available == 8


async def test_a_short_rate_limit_is_waited_out(
    spotify_catalog: Catalog, spotify_standin: SpotifyStandin, spotify_client: SpotifyClient
) -> None:
    # Given Spotify asks once to wait one second
    artist = spotify_catalog.add_artist("Patient")
    album = spotify_catalog.add_album("Waiting", artist, tracks=2)
    spotify_standin.inject(429, path_contains="/v1/tracks/", retry_after=1)

    # When a track is read
    result = await spotify_client.track(album.track_ids[0])

    # Then it is read after the wait
    assert result.tracks[0].title == "Waiting 1"
    assert spotify_standin.hits("/v1/tracks/", status=429) == 1
    assert spotify_standin.hits("/v1/tracks/", status=200) == 1


async def test_a_long_rate_limit_ends_the_import_with_the_time_to_retry(
    spotify_catalog: Catalog, spotify_standin: SpotifyStandin, spotify_client: SpotifyClient
) -> None:
    # Given Spotify's daily quota is spent for two hours
    artist = spotify_catalog.add_artist("Impatient")
    album = spotify_catalog.add_album("Quota", artist, tracks=2)
    spotify_standin.inject(429, retry_after=7200)

    # When a track is read
    with pytest.raises(SpotifyRateLimited) as caught:
        await spotify_client.track(album.track_ids[0])

    # Then the person is told when to try again
    assert caught.value.retry_after_secs == 7200
    assert "2 h" in caught.value.user_message


async def test_a_revoked_token_is_renewed_once(
    spotify_catalog: Catalog, spotify_standin: SpotifyStandin, spotify_client: SpotifyClient
) -> None:
    # Given a token that worked and was then revoked
    artist = spotify_catalog.add_artist("Renewed")
    album = spotify_catalog.add_album("Again", artist, tracks=2)
    await spotify_client.track(album.track_ids[0])
    spotify_standin.revoke_tokens()

    # When the next track is read
    result = await spotify_client.track(album.track_ids[1])

    # Then a new token was asked for and the read succeeded
    assert result.tracks[0].title == "Again 2"
    assert spotify_standin.token_requests == 2
    assert spotify_standin.hits("/v1/tracks/", status=401) == 1


async def test_a_token_refused_twice_is_an_auth_error(
    spotify_catalog: Catalog, spotify_standin: SpotifyStandin, spotify_client: SpotifyClient
) -> None:
    # Given Spotify refuses every token
    artist = spotify_catalog.add_artist("Refused")
    album = spotify_catalog.add_album("Never", artist, tracks=1)
    spotify_standin.inject(401, times=5)

    # When a track is read
    with pytest.raises(SpotifyAuthError):
        await spotify_client.track(album.track_ids[0])

    # Then the token was renewed only once
    assert spotify_standin.token_requests == 2


async def test_someone_elses_playlist_is_forbidden_without_their_token(
    spotify_catalog: Catalog, spotify_standin: SpotifyStandin, spotify_client: SpotifyClient
) -> None:
    # Given a playlist owned by another user
    artist = spotify_catalog.add_artist("Private")
    tracks = spotify_catalog.album_tracks(spotify_catalog.add_album("Mine", artist, tracks=3))
    playlist = spotify_catalog.add_playlist("Alice's", tracks, owner_id="alice")

    # When the app reads it
    with pytest.raises(SpotifyForbidden) as caught:
        await spotify_client.playlist(playlist.spotify_id)

    # Then the person learns how to get it read
    assert "add that account as a collaborator" in caught.value.user_message
    # And with Alice's own token it is read
    alice_token = spotify_standin.issue_user_token("alice")
    result = await spotify_client.playlist(playlist.spotify_id, user_token=alice_token)
    assert [t.title for t in result.tracks] == ["Mine 1", "Mine 2", "Mine 3"]


async def test_an_editorial_playlist_is_not_found_with_its_own_sentence(
    spotify_catalog: Catalog, spotify_standin: SpotifyStandin, spotify_client: SpotifyClient
) -> None:
    # Given a playlist Spotify itself owns
    artist = spotify_catalog.add_artist("Popular")
    tracks = spotify_catalog.album_tracks(spotify_catalog.add_album("Hits", artist, tracks=3))
    playlist = spotify_catalog.add_editorial_playlist("Today's Top Hits", tracks)

    # When it is read
    with pytest.raises(SpotifyNotFound) as caught:
        await spotify_client.fetch(SpotifyLink(LinkKind.PLAYLIST, playlist.spotify_id))

    # Then the answer says it is editorial
    assert caught.value.editorial
    assert "editorial" in caught.value.user_message


async def test_a_missing_track_is_not_found(
    spotify_standin: SpotifyStandin, spotify_client: SpotifyClient
) -> None:
    with pytest.raises(SpotifyNotFound) as caught:
        await spotify_client.track("0" * 22)
    assert caught.value.kind == "track"


async def test_names_with_slashes_and_other_scripts_come_through_unchanged(
    spotify_catalog: Catalog, spotify_standin: SpotifyStandin, spotify_client: SpotifyClient
) -> None:
    # Given names with slashes and non-Latin letters
    artist = spotify_catalog.add_artist("AC/DC × Кино")
    names = ["Back/In/Black", "Группа крови", "夜に駆ける", "مرحبا/عالم"]
    album = spotify_catalog.add_album("Live/Жизнь/人生", artist, tracks=names)
    playlist = spotify_catalog.add_playlist("Mix/Микс", spotify_catalog.album_tracks(album))

    # When the playlist is read
    result = await spotify_client.playlist(playlist.spotify_id)

    # Then every name is as Spotify gave it
    assert result.name == "Mix/Микс"
    assert [t.title for t in result.tracks] == names
    assert {t.album for t in result.tracks} == {"Live/Жизнь/人生"}
    assert {t.artist for t in result.tracks} == {"AC/DC × Кино"}


async def test_an_artist_gives_albums_and_singles_each_song_once(
    spotify_catalog: Catalog, spotify_standin: SpotifyStandin, spotify_client: SpotifyClient
) -> None:
    # Given an album, a single repeating one of its songs, and a compilation
    artist = spotify_catalog.add_artist("Róisín Murphy", ["disco"])
    spotify_catalog.add_album("Hit Parade", artist, tracks=["Fader", "CooCool", "Hurtz So Bad"])
    single = spotify_catalog.add_album(
        "CooCool", artist, tracks=["CooCool", "Fader (Edit)"], album_type="single"
    )
    # (the single's "CooCool" is the album's song: same title, same length, another id)
    spotify_catalog.album_tracks(single)[0].duration_ms = 181_000
    spotify_catalog.add_album("Best Of", artist, tracks=["Overpowered"], album_type="compilation")

    # When the artist's link is read
    result = await spotify_client.fetch(SpotifyLink(LinkKind.ARTIST, artist.spotify_id))

    # Then each song comes once, compilations left out
    assert [t.title for t in result.tracks] == ["Fader", "CooCool", "Hurtz So Bad", "Fader (Edit)"]
    assert result.skipped == {SkipReason.DUPLICATE: 1}
    assert result.name == "Róisín Murphy"
    assert all("disco" in t.genres for t in result.tracks)
    groups = [
        r.query.get("include_groups") for r in spotify_standin.records if "/albums" in r.path
    ]
    assert "album,single" in groups


async def test_the_cap_keeps_the_first_tracks_and_says_so(
    spotify_catalog: Catalog,
    spotify_standin: SpotifyStandin,
    spotify_http: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    # Given a cap of 25 tracks and a playlist of 300
    playlist = spotify_catalog.generate_playlist(300)
    settings = spotify_standin_settings(spotify_standin, tmp_path, max_tracks_per_request=25)

    # When it is read
    result = await client_for(settings, spotify_http).playlist(playlist.spotify_id)

    # Then the first 25 are kept and the list says it was capped
    assert [t.spotify_id for t in result.tracks] == [e.track_id for e in playlist.entries[:25]]
    assert result.capped_at == 25
    assert result.total_available == 300
    # And the pages past the cap were never asked for
    assert spotify_standin.hits(f"/playlists/{playlist.spotify_id}/items") == 0


async def test_the_cap_applies_to_albums_and_artists_too(
    spotify_catalog: Catalog,
    spotify_standin: SpotifyStandin,
    spotify_http: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    # Given a cap of 3 tracks, an album of 5 and a single of 2 by the same artist
    artist = spotify_catalog.add_artist("Prolific")
    album = spotify_catalog.add_album("Five", artist, tracks=5)
    spotify_catalog.add_album("Two", artist, tracks=2, album_type="single")
    client = client_for(
        spotify_standin_settings(spotify_standin, tmp_path, max_tracks_per_request=3),
        spotify_http,
    )

    # When the album and the artist are read
    album_result = await client.album(album.spotify_id)
    artist_result = await client.artist(artist.spotify_id)

    # Then each keeps its first 3 tracks and says how many there were
    assert [t.title for t in album_result.tracks] == ["Five 1", "Five 2", "Five 3"]
    assert (album_result.capped_at, album_result.total_available) == (3, 5)
    assert [t.title for t in artist_result.tracks] == ["Five 1", "Five 2", "Five 3"]
    assert (artist_result.capped_at, artist_result.total_available) == (3, 7)
    # And no track past the cap was read whole
    assert spotify_standin.hits("/v1/tracks/") == 6


async def test_two_clients_with_the_same_credentials_share_one_token(
    spotify_catalog: Catalog,
    spotify_standin: SpotifyStandin,
    spotify_settings: Settings,
    spotify_http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given two clients, as in two processes, with their own stores on one data folder
    artist = spotify_catalog.add_artist("Shared")
    album = spotify_catalog.add_album("Token", artist, tracks=2)
    caplog.set_level(logging.DEBUG)

    # When both read a track
    await client_for(spotify_settings, spotify_http).track(album.track_ids[0])
    await client_for(spotify_settings, spotify_http).track(album.track_ids[1])

    # Then one token was asked for, stored in the data folder, and never logged
    assert spotify_standin.token_requests == 1
    token_files = list(spotify_settings.data_dir.glob("spotify-token-*.json"))
    assert len(token_files) == 1
    token = token_files[0].read_text()
    access_token = token.split('"access_token": "')[1].split('"')[0]
    assert access_token not in caplog.text
    assert spotify_standin.client_secret not in caplog.text
    assert (token_files[0].stat().st_mode & 0o077) == 0


async def test_server_errors_are_retried_then_reported(
    spotify_catalog: Catalog, spotify_standin: SpotifyStandin, spotify_client: SpotifyClient
) -> None:
    # Given one passing server error, then a lasting one
    artist = spotify_catalog.add_artist("Flaky")
    album = spotify_catalog.add_album("Sometimes", artist, tracks=2)
    spotify_standin.inject(503, path_contains="/v1/tracks/")
    assert (await spotify_client.track(album.track_ids[0])).tracks

    spotify_standin.inject(502, path_contains="/v1/tracks/", times=10)
    with pytest.raises(SpotifyUnavailable) as caught:
        await spotify_client.track(album.track_ids[1])
    assert "did not answer" in caught.value.user_message


async def test_missing_credentials_are_named(
    spotify_standin: SpotifyStandin, spotify_http: httpx.AsyncClient, tmp_path: Path
) -> None:
    settings = spotify_standin_settings(
        spotify_standin, tmp_path, spotify_client_id=None, spotify_client_secret=None
    )
    with pytest.raises(SpotifyCredentialsMissing) as caught:
        await client_for(settings, spotify_http).track("0" * 22)
    assert "SPOTIFY_CLIENT_ID" in caught.value.user_message
    assert spotify_standin.records == []


async def test_wrong_credentials_are_an_auth_error(
    spotify_standin: SpotifyStandin, spotify_http: httpx.AsyncClient, tmp_path: Path
) -> None:
    settings = spotify_standin_settings(spotify_standin, tmp_path, spotify_client_secret="wrong")
    with pytest.raises(SpotifyAuthError) as caught:
        await client_for(settings, spotify_http).track("0" * 22)
    assert "SPOTIFY_CLIENT_SECRET" in caught.value.user_message
