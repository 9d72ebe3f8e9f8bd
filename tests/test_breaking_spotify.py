"""Breaks found in the Spotify client: what a strange 429 or a large discography costs.

Both were fixed in core/spotify.py; these tests keep them fixed.
"""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import pytest

from core.errors import SpotifyRateLimited
from core.spotify import SpotifyClient, TokenStore
from tests.fixtures.spotify import spotify_standin_settings
from tests.standins.spotify import Catalog, SpotifyStandin


async def test_a_retry_after_too_large_for_a_float_still_gives_a_sentence(
    spotify_catalog: Catalog, spotify_standin: SpotifyStandin, spotify_client: SpotifyClient
) -> None:
    # Given a rate limit whose Retry-After does not fit a float (it reads as infinity)
    artist = spotify_catalog.add_artist("Patient")
    album = spotify_catalog.add_album("Forever", artist, tracks=1)
    spotify_standin.inject(429, path_contains="/v1/tracks/", retry_after=math.inf)

    # When a track is read
    with pytest.raises(SpotifyRateLimited) as caught:
        await spotify_client.track(album.track_ids[0])

    # Then the person is told to come back later, in words
    assert caught.value.user_message.startswith("Spotify is limiting this bot right now")


async def test_an_artist_link_reads_only_the_albums_the_cap_needs(
    spotify_catalog: Catalog,
    spotify_standin: SpotifyStandin,
    spotify_http: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    # Given an artist with 200 albums of 10 tracks, and a cap of 25 tracks per request
    artist = spotify_catalog.add_artist("Prolific Composer")
    for number in range(200):
        spotify_catalog.add_album(f"Opus {number}", artist, tracks=10)
    settings = spotify_standin_settings(spotify_standin, tmp_path, max_tracks_per_request=25)
    client = SpotifyClient(settings, spotify_http, TokenStore(tmp_path))

    # When the artist is read
    result = await client.artist(artist.spotify_id)

    # Then 25 tracks are taken, and the cap is said
    assert len(result.tracks) == 25
    assert result.capped_at == 25
    # And Spotify was not asked for every album of the discography (each call counts against
    # the app's rolling rate limit): three albums hold those 25 tracks; ten reads is generous
    album_reads = [
        record
        for record in spotify_standin.records
        if record.path.startswith("/v1/albums/") and not record.path.endswith("/tracks")
    ]
    assert len(album_reads) <= 10
