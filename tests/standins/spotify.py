"""A loopback stand-in for the Spotify Web API, its accounts service and spotify.link.

`Catalog` holds the music, built in Python by each test; `SpotifyStandin` serves it on
127.0.0.1 with the shapes the real API answers with:

- `/api/token`: the client-credentials flow, checking Basic auth;
- `/v1/...`: the Web API as an app in Development Mode sees it: single-item endpoints only,
  playlist entries under `item` (or `track` for playlists built with `legacy_shape`), 403 for
  playlists its user neither owns nor collaborates on, 404 for Spotify's editorial playlists;
- `/free/v1/...`: the same catalog without Development Mode, in the older shape spotipy and
  spotdl 4.6 read (what spotdl's own lookup sees);
- `/short/<code>`: spotify.link short links, answering with redirect chains;
- `/images/<name>`: cover images, so nothing downstream reaches the internet.

Faults (429 short or long, 5xx, anything) are queued with `inject`, tokens are revoked with
`revoke_tokens` (the next call answers 401), `delay_secs` slows every answer, and every
request is recorded so tests can tell which pages were fetched, how often, and how many at
once. `LoopbackTransport` lets an httpx client reach the real short-link host names here.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import itertools
import logging
import re
import secrets
import string
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import httpx
from aiohttp import web
from PIL import Image

logger = logging.getLogger(__name__)

BASE62 = string.digits + string.ascii_letters
APP_CLIENT_ID = "standin-client-id"
APP_CLIENT_SECRET = "standin-client-secret"
# The credentials tests/standins/spotdl_spotify_patch.py presents for spotdl's own lookup.
FREE_CLIENT_ID = "spotdl-standin-client"
FREE_CLIENT_SECRET = "spotdl-standin-secret"
# The Spotify user who owns the app: with the app token, their playlists are readable.
APP_OWNER_ID = "soundforge-dev"
EDITORIAL_OWNER_ID = "spotify"
TOKEN_LIFETIME_SECS = 3600
# Development Mode caps these pages at 50; the playlist object embeds its first 100 entries.
DEV_PAGE_LIMIT_MAX = 50
EMBEDDED_PLAYLIST_PAGE = 100
EMBEDDED_ALBUM_PAGE = 50
# Every third page is answered this much shorter than asked, the way Spotify sometimes does.
SHORT_PAGE_BY = 7
IMAGE_SIZES = (640, 300, 64)

Json = dict[str, Any]
T = TypeVar("T")


def encode_base62(number: int) -> str:
    """`number` written in base62."""
    digits = ""
    while True:
        number, rest = divmod(number, 62)
        digits = BASE62[rest] + digits
        if number == 0:
            return digits


@dataclass
class Artist:
    """An artist of the catalog."""

    spotify_id: str
    name: str
    genres: list[str] = field(default_factory=list)


@dataclass
class Track:
    """A track of the catalog; it always belongs to one album."""

    spotify_id: str
    name: str
    artist_ids: list[str]
    album_id: str
    disc_number: int
    track_number: int
    duration_ms: int
    isrc: str | None
    explicit: bool = False
    is_playable: bool = True


@dataclass
class Album:
    """An album (or single) of the catalog and its tracks in order."""

    spotify_id: str
    name: str
    artist_ids: list[str]
    album_type: str
    release_date: str
    label: str
    genres: list[str]
    track_ids: list[str]
    copyright: str


@dataclass
class Entry:
    """One entry of a playlist: a track, or something an importer has to skip."""

    kind: str  # "track", "episode", "local", "null" (the entry is null), "missing" (item null)
    track_id: str | None = None
    name: str = ""
    is_playable: bool | None = None

    @classmethod
    def local(cls, name: str = "My own recording") -> Entry:
        """A local file the playlist's owner added from their disk."""
        return cls("local", name=name)

    @classmethod
    def episode(cls, name: str = "A podcast episode") -> Entry:
        """A podcast episode."""
        return cls("episode", name=name)

    @classmethod
    def null(cls) -> Entry:
        """An entry Spotify answers as `null`."""
        return cls("null")

    @classmethod
    def missing(cls) -> Entry:
        """An entry whose track is `null` (removed from Spotify)."""
        return cls("missing")

    @classmethod
    def unplayable(cls, track: Track) -> Entry:
        """A track that cannot be played in the listener's market."""
        return cls("track", track_id=track.spotify_id, is_playable=False)


@dataclass
class Playlist:
    """A playlist of the catalog."""

    spotify_id: str
    name: str
    owner_id: str
    owner_name: str
    entries: list[Entry]
    collaborators: set[str] = field(default_factory=set)
    legacy_shape: bool = False
    description: str = ""

    def readable_by(self, user_id: str | None) -> bool:
        """True when Development Mode lets `user_id` read the entries."""
        return user_id is not None and (user_id == self.owner_id or user_id in self.collaborators)


@dataclass
class ShortLink:
    """What one /short/<code> answers: a redirect, or a page holding a link."""

    status: int
    location: str | None = None
    page: str | None = None


class Catalog:
    """The music a stand-in serves, built by each test."""

    def __init__(self) -> None:
        self.artists: dict[str, Artist] = {}
        self.albums: dict[str, Album] = {}
        self.tracks: dict[str, Track] = {}
        self.playlists: dict[str, Playlist] = {}
        self.short_links: dict[str, ShortLink] = {}
        self._serial = itertools.count(1)

    def new_id(self) -> str:
        """A fresh 22-character base62 id."""
        return "sf" + encode_base62(next(self._serial)).rjust(20, "0")

    def add_artist(self, name: str, genres: Iterable[str] = ()) -> Artist:
        """Add an artist."""
        artist = Artist(self.new_id(), name, list(genres))
        self.artists[artist.spotify_id] = artist
        return artist

    def add_album(
        self,
        name: str,
        artists: Artist | list[Artist],
        *,
        tracks: int | list[str] = 10,
        discs: int = 1,
        album_type: str = "album",
        release_date: str = "2024-05-17",
        label: str = "Loopback Records",
        genres: Iterable[str] = (),
        duration_ms: int = 180_000,
        track_artists: list[Artist] | None = None,
    ) -> Album:
        """Add an album with `tracks` tracks (a count, or their names) over `discs` discs."""
        artist_list = [artists] if isinstance(artists, Artist) else list(artists)
        names = (
            [f"{name} {n}" for n in range(1, tracks + 1)] if isinstance(tracks, int) else tracks
        )
        album = Album(
            spotify_id=self.new_id(),
            name=name,
            artist_ids=[artist.spotify_id for artist in artist_list],
            album_type=album_type,
            release_date=release_date,
            label=label,
            genres=list(genres),
            track_ids=[],
            copyright=f"© {release_date[:4]} {label}",
        )
        self.albums[album.spotify_id] = album
        per_disc = max(1, -(-len(names) // discs))
        for index, track_name in enumerate(names):
            track = Track(
                spotify_id=self.new_id(),
                name=track_name,
                artist_ids=[a.spotify_id for a in (track_artists or artist_list)],
                album_id=album.spotify_id,
                disc_number=index // per_disc + 1,
                track_number=index % per_disc + 1,
                duration_ms=duration_ms + index * 1000,
                isrc=f"QZLB{len(self.tracks):08d}",
            )
            self.tracks[track.spotify_id] = track
            album.track_ids.append(track.spotify_id)
        return album

    def album_tracks(self, album: Album) -> list[Track]:
        """The album's tracks in order."""
        return [self.tracks[track_id] for track_id in album.track_ids]

    def add_playlist(
        self,
        name: str,
        items: Iterable[Track | Entry],
        *,
        owner_id: str = APP_OWNER_ID,
        owner_name: str | None = None,
        collaborators: Iterable[str] = (),
        legacy_shape: bool = False,
    ) -> Playlist:
        """Add a playlist of tracks and other entries, owned by the app's user by default."""
        entries = [
            item if isinstance(item, Entry) else Entry("track", track_id=item.spotify_id)
            for item in items
        ]
        playlist = Playlist(
            spotify_id=self.new_id(),
            name=name,
            owner_id=owner_id,
            owner_name=owner_name or owner_id,
            entries=entries,
            collaborators=set(collaborators),
            legacy_shape=legacy_shape,
        )
        self.playlists[playlist.spotify_id] = playlist
        return playlist

    def add_editorial_playlist(self, name: str, items: Iterable[Track | Entry]) -> Playlist:
        """Add a playlist owned by Spotify itself (404 to apps in Development Mode)."""
        return self.add_playlist(name, items, owner_id=EDITORIAL_OWNER_ID, owner_name="Spotify")

    def generate_playlist(
        self, size: int, *, tracks_per_album: int = 10, name: str | None = None, **options: Any
    ) -> Playlist:
        """Add `size` new tracks, `tracks_per_album` to an album, and a playlist of them all."""
        tracks: list[Track] = []
        artist = self.add_artist(f"Generated Artist {len(self.artists) + 1}", ["synthpop"])
        while len(tracks) < size:
            count = min(tracks_per_album, size - len(tracks))
            album = self.add_album(f"Generated Album {len(self.albums) + 1}", artist, tracks=count)
            tracks.extend(self.album_tracks(album))
        return self.add_playlist(name or f"Generated {size}", tracks, **options)

    def add_short_link(self, code: str, target: str, *, status: int = 301) -> None:
        """Make https://spotify.link/<code> redirect to `target`."""
        self.short_links[code] = ShortLink(status, location=target)

    def add_short_page(self, code: str, page: str) -> None:
        """Make https://spotify.link/<code> answer 200 with `page`."""
        self.short_links[code] = ShortLink(200, page=page)


@dataclass
class Fault:
    """An answer the stand-in gives instead of the real one, `times` times."""

    status: int
    path_contains: str = "/v1/"
    retry_after: float | None = None
    times: int = 1
    body: Json | None = None


@dataclass
class RequestRecord:
    """One request the stand-in received."""

    method: str
    path: str
    query: dict[str, str]
    status: int = 0


@dataclass
class _TokenGrant:
    client_id: str
    user_id: str | None
    revoked: bool = False


@dataclass
class _Call:
    """One API request being answered."""

    request: web.Request
    dev_mode: bool
    user_id: str | None

    @property
    def api_root(self) -> str:
        root = f"{self.request.scheme}://{self.request.host}"
        return f"{root}/v1" if self.dev_mode else f"{root}/free/v1"

    @property
    def root(self) -> str:
        return f"{self.request.scheme}://{self.request.host}"


Handler = Callable[..., Awaitable[web.StreamResponse]]


class SpotifyStandin:
    """The stand-in server; `start()` it on a free loopback port, `stop()` it after."""

    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        client_id: str = APP_CLIENT_ID,
        client_secret: str = APP_CLIENT_SECRET,
    ) -> None:
        self.catalog = catalog or Catalog()
        self.clients = {client_id: client_secret, FREE_CLIENT_ID: FREE_CLIENT_SECRET}
        self.client_id = client_id
        self.client_secret = client_secret
        self.delay_secs = 0.0
        self.short_pages = True
        self.faults: list[Fault] = []
        self.records: list[RequestRecord] = []
        self.token_requests = 0
        self.peak_in_flight: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        self._grants: dict[str, _TokenGrant] = {}
        self._runner: web.AppRunner | None = None
        self._image: bytes | None = None
        self.base_url = ""
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"/tracks/(?P<item_id>[^/]+)/?"), self._track),
            ("GET", re.compile(r"/albums/(?P<item_id>[^/]+)/?"), self._album),
            ("GET", re.compile(r"/albums/(?P<item_id>[^/]+)/tracks/?"), self._album_tracks),
            ("GET", re.compile(r"/artists/(?P<item_id>[^/]+)/?"), self._artist),
            ("GET", re.compile(r"/artists/(?P<item_id>[^/]+)/albums/?"), self._artist_albums),
            ("GET", re.compile(r"/playlists/(?P<item_id>[^/]+)/?"), self._playlist),
            ("GET", re.compile(r"/playlists/(?P<item_id>[^/]+)/items/?"), self._playlist_items),
            ("GET", re.compile(r"/playlists/(?P<item_id>[^/]+)/tracks/?"), self._legacy_tracks),
        ]

    # Life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve on 127.0.0.1 at a free port; `base_url` then says where."""
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/api/token", self._token)
        app.router.add_get("/short/{code}", self._short_link)
        app.router.add_get("/images/{name}", self._image_file)
        app.router.add_route("*", "/{tail:.*}", self._api)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        logger.info("Spotify stand-in listening on %s.", self.base_url)

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def api_base_url(self) -> str:
        """What SPOTIFY_API_BASE_URL should be."""
        return f"{self.base_url}/v1"

    @property
    def accounts_base_url(self) -> str:
        """What SPOTIFY_ACCOUNTS_BASE_URL should be."""
        return self.base_url

    @property
    def short_link_base_url(self) -> str:
        """Where https://spotify.link/<code> is served here."""
        return f"{self.base_url}/short"

    # Test controls ------------------------------------------------------------------------

    def inject(
        self,
        status: int,
        *,
        path_contains: str = "/v1/",
        retry_after: float | None = None,
        times: int = 1,
        body: Json | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` instead."""
        self.faults.append(Fault(status, path_contains, retry_after, times, body))

    def revoke_tokens(self) -> None:
        """Make every token issued so far answer 401 (as if Spotify revoked or expired it)."""
        for grant in self._grants.values():
            grant.revoked = True

    def issue_user_token(self, user_id: str) -> str:
        """A user access token for `user_id`, as the authorization-code flow would give."""
        token = secrets.token_urlsafe(24)
        self._grants[token] = _TokenGrant(self.client_id, user_id)
        return token

    def hits(self, path_contains: str, *, status: int | None = None) -> int:
        """How many requests had `path_contains` in their path (and answered `status`)."""
        return sum(
            1
            for record in self.records
            if path_contains in record.path and (status is None or record.status == status)
        )

    def offsets(self, path_contains: str) -> list[int]:
        """The `offset` of every request whose path holds `path_contains`, in order."""
        return [
            int(record.query.get("offset", "0"))
            for record in self.records
            if path_contains in record.path
        ]

    # Plumbing -----------------------------------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        record = RequestRecord(request.method, request.path, dict(request.query))
        self.records.append(record)
        key = _route_key(request.path)
        self._in_flight[key] += 1
        self.peak_in_flight[key] = max(self.peak_in_flight[key], self._in_flight[key])
        try:
            if self.delay_secs:
                await asyncio.sleep(self.delay_secs)
            response = self._fault_for(request.path) or await handler(request)
            record.status = response.status
            return response
        finally:
            self._in_flight[key] -= 1

    def _fault_for(self, path: str) -> web.Response | None:
        for fault in self.faults:
            if fault.times > 0 and fault.path_contains in path:
                fault.times -= 1
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = f"{fault.retry_after:.0f}"
                body = fault.body or _error_body(fault.status, "Injected fault")
                return web.json_response(body, status=fault.status, headers=headers)
        return None

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        client = _basic_auth(request.headers.get("Authorization", ""))
        if client is None or self.clients.get(client[0]) != client[1]:
            return web.json_response(
                {"error": "invalid_client", "error_description": "Invalid client"}, status=400
            )
        if form.get("grant_type") != "client_credentials":
            return web.json_response(
                {"error": "unsupported_grant_type", "error_description": "grant_type"},
                status=400,
            )
        token = secrets.token_urlsafe(24)
        user_id = APP_OWNER_ID if client[0] == self.client_id else None
        self._grants[token] = _TokenGrant(client[0], user_id)
        return web.json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_SECS}
        )

    async def _short_link(self, request: web.Request) -> web.Response:
        short = self.catalog.short_links.get(request.match_info["code"])
        if short is None:
            return web.Response(status=404, text="Not found")
        if short.location is not None:
            return web.Response(status=short.status, headers={"Location": short.location})
        return web.Response(status=short.status, text=short.page or "", content_type="text/html")

    async def _image_file(self, request: web.Request) -> web.Response:
        if self._image is None:
            self._image = await asyncio.to_thread(_make_cover)
        return web.Response(body=self._image, content_type="image/jpeg")

    async def _api(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/v1/"):
            dev_mode, rest = True, path[len("/v1") :]
        elif path.startswith("/free/v1/"):
            dev_mode, rest = False, path[len("/free/v1") :]
        else:
            return web.json_response(_error_body(404, "Service not found"), status=404)

        grant = self._grants.get(_bearer(request.headers.get("Authorization", "")) or "")
        if grant is None:
            return web.json_response(_error_body(401, "Invalid access token"), status=401)
        if grant.revoked:
            return web.json_response(_error_body(401, "The access token expired"), status=401)
        call = _Call(request, dev_mode, grant.user_id)

        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(rest)
            if match and request.method == method:
                return await handler(call, **match.groupdict())
        if dev_mode:
            # Batch endpoints (`?ids=`), top tracks and the rest are gone in Development Mode.
            return web.json_response(_error_body(403, "Forbidden"), status=403)
        return web.json_response(_error_body(404, "Service not found"), status=404)

    # Endpoints ------------------------------------------------------------------------------

    async def _track(self, call: _Call, item_id: str) -> web.Response:
        track = self.catalog.tracks.get(item_id)
        if track is None:
            return _not_found()
        return web.json_response(self._track_json(call, track))

    async def _album(self, call: _Call, item_id: str) -> web.Response:
        album = self.catalog.albums.get(item_id)
        if album is None:
            return _not_found()
        body = self._album_json(call, album, full=True)
        body["tracks"] = self._page(
            call,
            self.catalog.album_tracks(album),
            lambda track: self._track_json(call, track, simplified=True),
            0,
            EMBEDDED_ALBUM_PAGE,
            f"/albums/{album.spotify_id}/tracks",
            short=False,
        )
        return web.json_response(body)

    async def _album_tracks(self, call: _Call, item_id: str) -> web.Response:
        album = self.catalog.albums.get(item_id)
        if album is None:
            return _not_found()
        paging = self._paging_args(call, default_limit=20)
        if isinstance(paging, web.Response):
            return paging
        page = self._page(
            call,
            self.catalog.album_tracks(album),
            lambda track: self._track_json(call, track, simplified=True),
            *paging,
            f"/albums/{album.spotify_id}/tracks",
        )
        return web.json_response(page)

    async def _artist(self, call: _Call, item_id: str) -> web.Response:
        artist = self.catalog.artists.get(item_id)
        if artist is None:
            return _not_found()
        return web.json_response(self._artist_json(call, artist, full=True))

    async def _artist_albums(self, call: _Call, item_id: str) -> web.Response:
        artist = self.catalog.artists.get(item_id)
        if artist is None:
            return _not_found()
        paging = self._paging_args(call, default_limit=20)
        if isinstance(paging, web.Response):
            return paging
        groups = call.request.query.get("include_groups", "album,single,compilation,appears_on")
        wanted = {group.strip() for group in groups.split(",")}
        albums = [
            album
            for album in self.catalog.albums.values()
            if artist.spotify_id in album.artist_ids and album.album_type in wanted
        ]
        # Spotify lists the groups in the order asked for.
        order = [group.strip() for group in groups.split(",")]
        albums.sort(key=lambda album: order.index(album.album_type))

        def album_json(album: Album) -> Json:
            return {**self._album_json(call, album, full=False), "album_group": album.album_type}

        page = self._page(
            call, albums, album_json, *paging, f"/artists/{artist.spotify_id}/albums"
        )
        return web.json_response(page)

    async def _playlist(self, call: _Call, item_id: str) -> web.Response:
        playlist = self.catalog.playlists.get(item_id)
        refusal = self._playlist_refusal(call, playlist, metadata=True)
        if refusal is not None or playlist is None:
            return refusal or _not_found()

        body = self._playlist_json(call, playlist)
        key = "items" if call.dev_mode and not playlist.legacy_shape else "tracks"
        href_path = f"/playlists/{playlist.spotify_id}/{'items' if call.dev_mode else 'tracks'}"
        if call.dev_mode and not playlist.readable_by(call.user_id):
            # Development Mode shows other people's playlists as metadata only.
            body[key] = {"href": f"{call.api_root}{href_path}", "total": len(playlist.entries)}
        else:
            body[key] = self._page(
                call,
                playlist.entries,
                lambda entry: self._entry_json(call, playlist, entry),
                0,
                EMBEDDED_PLAYLIST_PAGE,
                href_path,
                short=False,
            )
        return web.json_response(body)

    async def _playlist_items(self, call: _Call, item_id: str) -> web.Response:
        playlist = self.catalog.playlists.get(item_id)
        refusal = self._playlist_refusal(call, playlist, metadata=False)
        if refusal is not None or playlist is None:
            return refusal or _not_found()
        paging = self._paging_args(call, default_limit=100 if not call.dev_mode else 20)
        if isinstance(paging, web.Response):
            return paging
        page = self._page(
            call,
            playlist.entries,
            lambda entry: self._entry_json(call, playlist, entry),
            *paging,
            f"/playlists/{playlist.spotify_id}/items",
        )
        return web.json_response(page)

    async def _legacy_tracks(self, call: _Call, item_id: str) -> web.Response:
        if call.dev_mode:
            # Renamed to /items in February 2026; the old path refuses apps in Development Mode.
            return web.json_response(_error_body(403, "Forbidden"), status=403)
        return await self._playlist_items(call, item_id)

    def _playlist_refusal(
        self, call: _Call, playlist: Playlist | None, *, metadata: bool
    ) -> web.Response | None:
        if playlist is None:
            return _not_found()
        if not call.dev_mode:
            return None
        if playlist.owner_id == EDITORIAL_OWNER_ID:
            return _not_found()
        if not metadata and not playlist.readable_by(call.user_id):
            return web.json_response(_error_body(403, "Forbidden"), status=403)
        return None

    # Shapes ---------------------------------------------------------------------------------

    def _paging_args(self, call: _Call, *, default_limit: int) -> tuple[int, int] | web.Response:
        try:
            offset = int(call.request.query.get("offset", "0"))
            limit = int(call.request.query.get("limit", str(default_limit)))
        except ValueError:
            return web.json_response(_error_body(400, "Invalid limit"), status=400)
        top = DEV_PAGE_LIMIT_MAX if call.dev_mode else EMBEDDED_PLAYLIST_PAGE
        if offset < 0 or not 1 <= limit <= top:
            return web.json_response(_error_body(400, "Invalid limit"), status=400)
        return offset, limit

    def _page(
        self,
        call: _Call,
        source: Sequence[T],
        build: Callable[[T], Any],
        offset: int,
        limit: int,
        href_path: str,
        *,
        short: bool = True,
    ) -> Json:
        """One paging object; every third page holds fewer items than asked."""
        count = limit
        if short and self.short_pages and limit > SHORT_PAGE_BY and (offset // limit) % 3 == 1:
            count = limit - SHORT_PAGE_BY
        chunk = [build(item) for item in source[offset : offset + count]]
        end = offset + len(chunk)
        href = f"{call.api_root}{href_path}"
        extra = {
            key: value
            for key, value in call.request.query.items()
            if key not in ("offset", "limit") and href_path in call.request.path
        }

        def link(at: int) -> str:
            return f"{href}?{urlencode({**extra, 'offset': at, 'limit': limit})}"

        return {
            "href": link(offset),
            "items": chunk,
            "limit": limit,
            "next": link(end) if end < len(source) else None,
            "offset": offset,
            "previous": link(max(0, offset - limit)) if offset > 0 else None,
            "total": len(source),
        }

    def _images(self, call: _Call, item_id: str) -> list[Json]:
        return [
            {"url": f"{call.root}/images/{item_id}-{size}.jpg", "width": size, "height": size}
            for size in IMAGE_SIZES
        ]

    def _artist_json(self, call: _Call, artist: Artist, *, full: bool) -> Json:
        body: Json = {
            "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist.spotify_id}"},
            "href": f"{call.api_root}/artists/{artist.spotify_id}",
            "id": artist.spotify_id,
            "name": artist.name,
            "type": "artist",
            "uri": f"spotify:artist:{artist.spotify_id}",
        }
        if full:
            body["genres"] = list(artist.genres)
            body["images"] = self._images(call, artist.spotify_id)
            if not call.dev_mode:
                body["followers"] = {"href": None, "total": 1000}
                body["popularity"] = 50
        return body

    def _album_json(self, call: _Call, album: Album, *, full: bool) -> Json:
        body: Json = {
            "album_type": album.album_type,
            "total_tracks": len(album.track_ids),
            "external_urls": {"spotify": f"https://open.spotify.com/album/{album.spotify_id}"},
            "href": f"{call.api_root}/albums/{album.spotify_id}",
            "id": album.spotify_id,
            "images": self._images(call, album.spotify_id),
            "name": album.name,
            "release_date": album.release_date,
            "release_date_precision": "day",
            "type": "album",
            "uri": f"spotify:album:{album.spotify_id}",
            "artists": [
                self._artist_json(call, self.catalog.artists[artist_id], full=False)
                for artist_id in album.artist_ids
            ],
        }
        if not call.dev_mode:
            body["available_markets"] = ["DE", "US"]
        if full:
            body["copyrights"] = [{"text": album.copyright, "type": "C"}]
            body["external_ids"] = {"upc": f"00{album.spotify_id[-10:]}"}
            body["genres"] = list(album.genres)
            body["label"] = album.label
            if not call.dev_mode:
                body["popularity"] = 40
        return body

    def _track_json(self, call: _Call, track: Track, *, simplified: bool = False) -> Json:
        body: Json = {
            "artists": [
                self._artist_json(call, self.catalog.artists[artist_id], full=False)
                for artist_id in track.artist_ids
            ],
            "disc_number": track.disc_number,
            "duration_ms": track.duration_ms,
            "explicit": track.explicit,
            "external_urls": {"spotify": f"https://open.spotify.com/track/{track.spotify_id}"},
            "href": f"{call.api_root}/tracks/{track.spotify_id}",
            "id": track.spotify_id,
            "is_playable": track.is_playable,
            "name": track.name,
            "preview_url": None,
            "track_number": track.track_number,
            "type": "track",
            "uri": f"spotify:track:{track.spotify_id}",
            "is_local": False,
        }
        if not call.dev_mode:
            body["available_markets"] = ["DE", "US"]
        if not simplified:
            album = self.catalog.albums[track.album_id]
            body["album"] = self._album_json(call, album, full=False)
            body["external_ids"] = {"isrc": track.isrc} if track.isrc else {}
            if not call.dev_mode:
                body["popularity"] = 30
        return body

    def _playlist_json(self, call: _Call, playlist: Playlist) -> Json:
        return {
            "collaborative": bool(playlist.collaborators),
            "description": playlist.description,
            "external_urls": {
                "spotify": f"https://open.spotify.com/playlist/{playlist.spotify_id}"
            },
            "href": f"{call.api_root}/playlists/{playlist.spotify_id}",
            "id": playlist.spotify_id,
            "images": self._images(call, playlist.spotify_id),
            "name": playlist.name,
            "owner": self._user_json(call, playlist.owner_id, playlist.owner_name),
            "public": True,
            "snapshot_id": f"snapshot-{playlist.spotify_id}",
            "type": "playlist",
            "uri": f"spotify:playlist:{playlist.spotify_id}",
        }

    def _user_json(self, call: _Call, user_id: str, name: str) -> Json:
        return {
            "external_urls": {"spotify": f"https://open.spotify.com/user/{user_id}"},
            "href": f"{call.api_root}/users/{user_id}",
            "id": user_id,
            "type": "user",
            "uri": f"spotify:user:{user_id}",
            "display_name": name,
        }

    def _entry_json(self, call: _Call, playlist: Playlist, entry: Entry) -> Json | None:
        if entry.kind == "null":
            return None
        item: Json | None
        if entry.kind == "track" and entry.track_id is not None:
            item = self._track_json(call, self.catalog.tracks[entry.track_id])
            if entry.is_playable is not None:
                item["is_playable"] = entry.is_playable
        elif entry.kind == "local":
            item = {
                "album": {"album_type": None, "id": None, "name": "", "images": [], "uri": None},
                "artists": [{"id": None, "name": "", "type": "artist", "uri": None}],
                "disc_number": 0,
                "duration_ms": 200_000,
                "explicit": False,
                "external_ids": {},
                "external_urls": {},
                "href": None,
                "id": None,
                "is_local": True,
                "name": entry.name,
                "track_number": 0,
                "type": "track",
                "uri": f"spotify:local:::{entry.name.replace(' ', '+')}:200",
            }
        elif entry.kind == "episode":
            episode_id = f"ep{playlist.spotify_id[2:]}"[:22]
            item = {
                "id": episode_id,
                "name": entry.name,
                "duration_ms": 1_800_000,
                "type": "episode",
                "uri": f"spotify:episode:{episode_id}",
                "external_urls": {"spotify": f"https://open.spotify.com/episode/{episode_id}"},
                "is_local": False,
            }
        else:
            item = None

        body: Json = {
            "added_at": "2025-01-01T00:00:00Z",
            "added_by": self._user_json(call, playlist.owner_id, playlist.owner_name),
            "is_local": entry.kind == "local",
        }
        body["item" if call.dev_mode and not playlist.legacy_shape else "track"] = item
        return body


class LoopbackTransport(httpx.AsyncBaseTransport):
    """Sends requests for the real host names in `routes` to loopback bases instead.

    `routes` maps a host (`spotify.link`) to a base (`http://127.0.0.1:PORT/short`); the
    request's path is appended to the base. Any other host is refused with ConnectError, so
    a client using this transport cannot leave the machine.
    """

    def __init__(self, routes: Mapping[str, str]) -> None:
        self._routes = {host.lower(): base.rstrip("/") for host, base in routes.items()}
        self._inner = httpx.AsyncHTTPTransport()
        self.refused: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        base = self._routes.get(request.url.host.lower())
        if base is None:
            self.refused.append(str(request.url))
            raise httpx.ConnectError(f"{request.url.host} is not a stand-in", request=request)
        target = httpx.URL(base + request.url.raw_path.decode("ascii"))
        if urlsplit(str(target)).hostname not in ("127.0.0.1", "localhost"):
            raise httpx.ConnectError(f"{target} is not on the loopback", request=request)
        forwarded = httpx.Request(
            request.method, target, headers=request.headers, content=request.content
        )
        return await self._inner.handle_async_request(forwarded)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _route_key(path: str) -> str:
    """The path with ids replaced, so requests to the same endpoint are counted together."""
    return re.sub(r"/[0-9A-Za-z]{22}(?=/|$)", "/{id}", path.rstrip("/"))


def _error_body(status: int, message: str) -> Json:
    return {"error": {"status": status, "message": message}}


def _not_found() -> web.Response:
    return web.json_response(_error_body(404, "Resource not found"), status=404)


def _basic_auth(header: str) -> tuple[str, str] | None:
    if not header.startswith("Basic "):
        return None
    try:
        client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return client_id, secret


def _bearer(header: str) -> str | None:
    return header[7:] if header.startswith("Bearer ") else None


def _make_cover() -> bytes:
    """A small JPEG cover image."""
    image = Image.new("RGB", (64, 64), (200, 40, 90))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()
