"""Finding Spotify links in chat text and resolving spotify.link short links."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import InvalidLink, ShortLinkError, SoundForgeError, UnsupportedLink
from core.links import LinkScan, find_links, resolve_links
from core.types import LinkKind, SpotifyLink
from tests.standins.spotify import SpotifyStandin

TRACK_ID = "4uLU6hMCjMI75M1A2tKUQC"
ALBUM_ID = "1DFixLWuPkv3KT3TnV35m3"
PLAYLIST_ID = "37i9dQZF1DXcBWIGoYBM5M"
ARTIST_ID = "0OdUWJ0sBjDrqHygGUXeCF"
EPISODE_ID = "512ojhOuo1ktJprKbVcKyQ"
SHOW_ID = "4rOoJ6Egrf8K2IrywzwOMk"

TRACK = SpotifyLink(LinkKind.TRACK, TRACK_ID)
ALBUM = SpotifyLink(LinkKind.ALBUM, ALBUM_ID)
PLAYLIST = SpotifyLink(LinkKind.PLAYLIST, PLAYLIST_ID)
ARTIST = SpotifyLink(LinkKind.ARTIST, ARTIST_ID)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"https://open.spotify.com/track/{TRACK_ID}", TRACK),
        (f"https://open.spotify.com/intl-de/track/{TRACK_ID}", TRACK),
        (f"https://open.spotify.com/intl-pt-BR/album/{ALBUM_ID}", ALBUM),
        (f"open.spotify.com/track/{TRACK_ID}?si=a1b2c3d4e5f6", TRACK),
        (f"https://open.spotify.com/track/{TRACK_ID}?si=x&context=spotify%3Aalbum", TRACK),
        (f"http://play.spotify.com/album/{ALBUM_ID}", ALBUM),
        (f"https://spotify.com/artist/{ARTIST_ID}", ARTIST),
        (f"https://www.spotify.com/playlist/{PLAYLIST_ID}", PLAYLIST),
        (f"https://open.spotify.com/embed/track/{TRACK_ID}?utm_source=generator", TRACK),
        (f"https://embed.spotify.com/?uri=spotify:track:{TRACK_ID}", TRACK),
        (f"https://embed.spotify.com/?uri=spotify%3Aalbum%3A{ALBUM_ID}", ALBUM),
        (f"spotify:track:{TRACK_ID}", TRACK),
        (f"spotify:artist:{ARTIST_ID}", ARTIST),
        (f"spotify:user:some.one:playlist:{PLAYLIST_ID}", PLAYLIST),
        (f"https://open.spotify.com/user/spotify/playlist/{PLAYLIST_ID}", PLAYLIST),
        (f"https://open.spotify.com/user/j%C3%BCrgen/playlist/{PLAYLIST_ID}?si=1", PLAYLIST),
        (f"<https://open.spotify.com/track/{TRACK_ID}>", TRACK),
        (f"[my song](https://open.spotify.com/track/{TRACK_ID})", TRACK),
        (f"**https://open.spotify.com/album/{ALBUM_ID}**!", ALBUM),
        (f"listen: (open.spotify.com/track/{TRACK_ID}).", TRACK),
        (f"HTTPS://OPEN.SPOTIFY.COM/TRACK/{TRACK_ID}", TRACK),
        (f"`https://open.spotify.com/playlist/{PLAYLIST_ID}`", PLAYLIST),
    ],
)
def test_every_form_gives_the_canonical_link(text: str, expected: SpotifyLink) -> None:
    assert find_links(text).links == [expected]


def test_several_links_come_in_order_each_once() -> None:
    # Given a message with four links, one of them twice in two forms
    text = (
        f"first https://open.spotify.com/album/{ALBUM_ID}?si=1\n"
        f"then spotify:track:{TRACK_ID} and <https://open.spotify.com/intl-fr/track/{TRACK_ID}>\n"
        f"and https://open.spotify.com/playlist/{PLAYLIST_ID}, "
        f"https://open.spotify.com/artist/{ARTIST_ID}"
    )

    # When it is read
    scan = find_links(text)

    # Then each link comes once, in order
    assert scan.links == [ALBUM, TRACK, PLAYLIST, ARTIST]
    assert scan.links[0].url == f"https://open.spotify.com/album/{ALBUM_ID}"


def test_links_hidden_behind_text_entities_are_found() -> None:
    scan = find_links("look at this", [f"https://open.spotify.com/track/{TRACK_ID}?si=z"])
    assert scan.links == [TRACK]


def test_episode_and_show_links_are_set_apart() -> None:
    scan = find_links(
        f"https://open.spotify.com/episode/{EPISODE_ID} spotify:show:{SHOW_ID} "
        f"https://open.spotify.com/embed-podcast/episode/{EPISODE_ID}"
    )
    assert scan.links == []
    assert scan.unsupported == [
        f"https://open.spotify.com/episode/{EPISODE_ID}",
        f"https://open.spotify.com/show/{SHOW_ID}",
    ]


def test_short_links_are_kept_to_resolve() -> None:
    scan = find_links("https://spotify.link/AbC123xyz and spotify.app.link/Zz9?_p=1")
    assert scan.short_links == ["https://spotify.link/AbC123xyz", "https://spotify.app.link/Zz9"]


@pytest.mark.parametrize(
    "text",
    [
        f"https://open.spotify.com/track/{TRACK_ID[:-1]}",
        f"https://open.spotify.com/track/{TRACK_ID}x",
        f"spotify:track:{TRACK_ID}{TRACK_ID}",
        f"https://open.spotify.com/podcast/{TRACK_ID}",
        f"https://notspotify.com/track/{TRACK_ID}",
        f"https://open.spotify.com.example.org/track/{TRACK_ID}",
        f"https://example.org/open.spotify.com/track/{TRACK_ID}",
        "https://open.spotify.com/",
        "just some words about spotify",
        "",
    ],
)
def test_what_is_not_a_link_is_ignored(text: str) -> None:
    assert find_links(text) == LinkScan()


@given(st.text())
def test_arbitrary_text_gives_links_or_nothing(text: str) -> None:
    try:
        scan = find_links(text, [text[::-1]])
    except SoundForgeError:
        return
    assert all(len(link.spotify_id) == 22 for link in scan.links)
    assert len(scan.links) == len(set(scan.links))


LINK_PIECES = st.sampled_from(
    [
        "https://",
        "open.",
        "spotify.com/",
        "spotify:",
        "intl-de/",
        "embed/",
        "user/x/",
        "track/",
        "playlist:",
        "episode/",
        "spotify.link/",
        TRACK_ID,
        TRACK_ID[:11],
        "?si=",
        "<",
        ">",
        "%3A",
        " ",
        "/",
    ]
)


@given(st.lists(st.one_of(LINK_PIECES, st.text(max_size=3)), max_size=12).map("".join))
def test_text_made_of_link_pieces_never_breaks_the_finder(text: str) -> None:
    try:
        scan = find_links(text)
    except SoundForgeError:
        return
    for link in scan.links:
        assert link.spotify_id in text
        assert link.kind.value in text.lower()


async def test_short_links_follow_redirects_to_the_item(
    spotify_standin: SpotifyStandin, short_link_http: httpx.AsyncClient
) -> None:
    # Given a short link that redirects twice before naming a track
    catalog = spotify_standin.catalog
    catalog.add_short_link("hop1", "https://spotify.app.link/hop2?_p=x", status=302)
    catalog.add_short_link("hop2", "/hop3")
    catalog.add_short_link("hop3", f"https://open.spotify.com/track/{TRACK_ID}?si=q", status=307)

    # When the message is resolved
    links = await resolve_links(find_links("https://spotify.link/hop1"), short_link_http)

    # Then the track is found, and open.spotify.com itself was never asked
    assert links == [TRACK]
    assert spotify_standin.hits("/short/") == 3


async def test_a_short_link_page_naming_the_item_is_read(
    spotify_standin: SpotifyStandin, short_link_http: httpx.AsyncClient
) -> None:
    spotify_standin.catalog.add_short_page(
        "page", f'<meta property="og:url" content="https://open.spotify.com/album/{ALBUM_ID}">'
    )
    scan = find_links(f"https://spotify.link/page https://open.spotify.com/track/{TRACK_ID}")
    assert await resolve_links(scan, short_link_http) == [TRACK, ALBUM]


async def test_a_short_link_that_leaves_spotify_is_refused(
    spotify_standin: SpotifyStandin, short_link_http: httpx.AsyncClient
) -> None:
    # Given a short link that redirects to another site
    spotify_standin.catalog.add_short_link("away", "https://tracker.example.com/open?x=1")

    # When it is resolved
    with pytest.raises(ShortLinkError) as caught:
        await resolve_links(find_links("spotify.link/away"), short_link_http)

    # Then it is refused before anything asks that site
    assert "tracker.example.com" in caught.value.reason
    assert "copy the full link" in caught.value.user_message
    assert spotify_standin.hits("/short/") == 1


async def test_a_short_link_with_too_many_redirects_is_refused(
    spotify_standin: SpotifyStandin, short_link_http: httpx.AsyncClient
) -> None:
    # Given a chain of seven redirects
    for n in range(7):
        spotify_standin.catalog.add_short_link(f"loop{n}", f"https://spotify.link/loop{n + 1}")
    spotify_standin.catalog.add_short_link("loop7", f"https://open.spotify.com/track/{TRACK_ID}")

    # When it is resolved
    with pytest.raises(ShortLinkError) as caught:
        await resolve_links(find_links("https://spotify.link/loop0"), short_link_http)

    # Then it stops after five redirects
    assert "more than 5 redirects" in caught.value.reason
    assert spotify_standin.hits("/short/") == 6


async def test_a_dead_short_link_is_an_error(
    spotify_standin: SpotifyStandin, short_link_http: httpx.AsyncClient
) -> None:
    with pytest.raises(ShortLinkError) as caught:
        await resolve_links(find_links("https://spotify.link/gone"), short_link_http)
    assert "404" in caught.value.reason


async def test_a_message_with_only_podcasts_is_unsupported(
    short_link_http: httpx.AsyncClient,
) -> None:
    scan = find_links(f"https://open.spotify.com/episode/{EPISODE_ID}")
    with pytest.raises(UnsupportedLink) as caught:
        await resolve_links(scan, short_link_http)
    assert caught.value.kind == "episode"
    assert "Podcasts are not supported" in caught.value.user_message


async def test_a_short_link_to_an_episode_is_unsupported(
    spotify_standin: SpotifyStandin, short_link_http: httpx.AsyncClient
) -> None:
    spotify_standin.catalog.add_short_link("pod", f"https://open.spotify.com/show/{SHOW_ID}")
    with pytest.raises(UnsupportedLink):
        await resolve_links(find_links("https://spotify.link/pod"), short_link_http)


async def test_a_message_without_links_is_invalid(short_link_http: httpx.AsyncClient) -> None:
    with pytest.raises(InvalidLink) as caught:
        await resolve_links(find_links("hello there"), short_link_http)
    assert "open.spotify.com" in caught.value.user_message
