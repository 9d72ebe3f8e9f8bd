"""Breaks found in link finding: look-alike letters in ids, one bad short link in a message."""

from __future__ import annotations

import httpx
import pytest

from core.links import find_links, resolve_links
from core.types import LinkKind, SpotifyLink
from tests.standins.spotify import SpotifyStandin

TRACK_ID = "4uLU6hMCjMI75M1A2tKUQC"
ALBUM_ID = "1DFixLWuPkv3KT3TnV35m3"
# 21 characters of a real id; the 22nd is where a look-alike goes.
ID_HEAD = TRACK_ID[:21]


@pytest.mark.parametrize(
    "text",
    [
        f"https://open.spotify.com/track/{ID_HEAD}\u212a",  # KELVIN SIGN, folds to "k"
        f"https://open.spotify.com/album/{ID_HEAD}\u0131",  # dotless i, folds to "I"
        f"spotify:playlist:{ID_HEAD}\u0130",  # dotted capital I, folds to "i"
        f"https://open.spotify.com/artist/{ID_HEAD}\u017f",  # long s, folds to "s"
    ],
    ids=["kelvin", "dotless-i", "dotted-I", "long-s"],
)
def test_a_look_alike_letter_does_not_make_an_id(text: str) -> None:
    # Given a link whose last id character only looks like a Latin letter
    # When it is scanned
    scan = find_links(text)

    # Then nothing in it is taken for a Spotify id (ids are 22 ASCII base62 characters)
    assert scan.links == []


async def test_a_dead_short_link_does_not_cost_the_other_links_of_the_message(
    spotify_standin: SpotifyStandin, short_link_http: httpx.AsyncClient
) -> None:
    # Given a message with a track link, a short link that no longer works and one that does
    spotify_standin.catalog.add_short_link("alive", f"https://open.spotify.com/album/{ALBUM_ID}")
    text = (
        f"https://open.spotify.com/track/{TRACK_ID} https://spotify.link/gone "
        "https://spotify.link/alive"
    )

    # When it is resolved
    links = await resolve_links(find_links(text), short_link_http)

    # Then the links that work are still imported, as a podcast link beside them would be
    assert links == [
        SpotifyLink(LinkKind.TRACK, TRACK_ID),
        SpotifyLink(LinkKind.ALBUM, ALBUM_ID),
    ]
