"""The Spotify Web API client, written for the rules Spotify sets apps in Development Mode.

Only single-item endpoints are used (no `?ids=` batches, no top tracks); albums and playlists
are read 50 entries a page, the first page alone and the rest concurrently once its total is
known. The app token (client-credentials flow) is cached by `TokenStore` in memory and in a
file every process with the same credentials reads, until shortly before it expires.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from config.settings import Settings
from core.errors import (
    SpotifyAuthError,
    SpotifyCredentialsMissing,
    SpotifyForbidden,
    SpotifyNotFound,
    SpotifyRateLimited,
    SpotifyUnavailable,
)
from core.types import LinkKind, SkipReason, SpotifyLink, TrackList, TrackMeta

logger = logging.getLogger(__name__)

T = TypeVar("T")
Json = dict[str, Any]

# A cached token is renewed this long before Spotify says it expires.
TOKEN_RENEW_MARGIN_SECS = 60.0
# Spotify's largest page for album tracks, playlist items and artist albums.
PAGE_LIMIT = 50
# A server error or a dropped connection is retried this many times, waiting longer each time.
TRANSIENT_RETRIES = 2
TRANSIENT_BACKOFF_SECS = 0.5
# At most this many 429 answers are waited out for one request before giving up.
MAX_RATE_LIMIT_WAITS = 5
# Used when a 429 carries no readable Retry-After.
DEFAULT_RETRY_AFTER_SECS = 1.0
# A Retry-After beyond a week (or one that is not a number we can hold) is read as a week.
MAX_RETRY_AFTER_SECS = 7 * 24 * 3600.0
REQUEST_TIMEOUT_SECS = 15.0
TOKEN_FILE_PREFIX = "spotify-token-"


@dataclass(frozen=True)
class AppToken:
    """An app access token and the wall-clock time (epoch seconds) it stops working."""

    access_token: str
    expires_at: float

    def fresh(self, now: float | None = None) -> bool:
        """True while the token is not about to expire."""
        now = time.time() if now is None else now
        return now < self.expires_at - TOKEN_RENEW_MARGIN_SECS

    def __repr__(self) -> str:
        return f"AppToken(expires_at={self.expires_at:.0f})"


class TokenStore:
    """The app token, kept in memory and in a JSON file shared by every process.

    The file lives in `directory` and is named by a hash of the credentials, so a process
    with other (or wrong) credentials never reads it; it is replaced atomically and
    readable by its owner only.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._memory: dict[str, AppToken] = {}

    def path_for(self, client_id: str) -> Path:
        """The file that holds the token for `client_id`."""
        digest = hashlib.sha256(client_id.encode()).hexdigest()[:16]
        return self._directory / f"{TOKEN_FILE_PREFIX}{digest}.json"

    async def load(self, client_id: str) -> AppToken | None:
        """Return a fresh token for `client_id`, from memory or from the shared file."""
        token = self._memory.get(client_id)
        if token is not None and token.fresh():
            return token
        token = await asyncio.to_thread(self._read_file, self.path_for(client_id))
        if token is None or not token.fresh():
            return None
        self._memory[client_id] = token
        return token

    async def save(self, client_id: str, token: AppToken) -> None:
        """Keep `token` for every later caller, in this process and others."""
        self._memory[client_id] = token
        await asyncio.to_thread(self._write_file, self.path_for(client_id), token)

    async def discard(self, client_id: str, access_token: str) -> None:
        """Forget `access_token` (Spotify refused it), unless a newer one already replaced it."""
        current = self._memory.get(client_id)
        if current is not None and current.access_token == access_token:
            del self._memory[client_id]
        path = self.path_for(client_id)
        stored = await asyncio.to_thread(self._read_file, path)
        if stored is not None and stored.access_token == access_token:
            await asyncio.to_thread(path.unlink, missing_ok=True)

    @staticmethod
    def _read_file(path: Path) -> AppToken | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return AppToken(str(data["access_token"]), float(data["expires_at"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            logger.warning("Ignoring the unreadable Spotify token file %s.", path)
            return None

    @staticmethod
    def _write_file(path: Path, token: AppToken) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"access_token": token.access_token, "expires_at": token.expires_at})
        handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as temp_file:
                temp_file.write(payload)
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise


@dataclass(frozen=True)
class _Album:
    """What every track of one album shares."""

    spotify_id: str
    name: str
    artist: str
    artist_id: str | None
    label: str
    genres: list[str]
    release_date: str
    total_tracks: int
    disc_count: int
    cover_url: str | None
    copyright: str | None
    album_type: str | None


class SpotifyClient:
    """Reads tracks, albums, playlists and artists from the Spotify Web API."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient, token_store: TokenStore):
        self._settings = settings
        self._http = http
        self._tokens = token_store
        self._token_lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(settings.spotify_page_concurrency)
        # After a 429, no request leaves before this event-loop time.
        self._resume_at = 0.0

    async def fetch(self, link: SpotifyLink, *, user_token: str | None = None) -> TrackList:
        """Read whatever `link` points at; `user_token` lets a linked user read their playlists."""
        if link.kind is LinkKind.TRACK:
            return await self.track(link.spotify_id)
        if link.kind is LinkKind.ALBUM:
            return await self.album(link.spotify_id)
        if link.kind is LinkKind.PLAYLIST:
            return await self.playlist(link.spotify_id, user_token=user_token)
        return await self.artist(link.spotify_id)

    async def track(self, track_id: str) -> TrackList:
        """Read one track, with its album's label, genres and disc count."""
        link = SpotifyLink(LinkKind.TRACK, track_id)
        raw = await self._get(f"/tracks/{quote(track_id, safe='')}", link=link)
        result = TrackList(link=link, name=str(raw.get("name") or track_id), tracks=[])
        result.total_available = 1
        reason = _skip_reason(raw)
        if reason is not None:
            result.skip(reason)
            return result

        album = (await self._albums([raw.get("album") or {}]))[0]
        artist_genres = await self._artist_genres(_first_artist_id(raw))
        meta = _track_meta(raw, album, artist_genres)
        result.tracks.append(meta)
        result.name = meta.display_name
        result.owner = meta.artist
        return result

    async def album(self, album_id: str) -> TrackList:
        """Read every track of an album."""
        link = SpotifyLink(LinkKind.ALBUM, album_id)
        raw = await self._get(f"/albums/{quote(album_id, safe='')}", link=link)
        entries, total = await self._collect(
            f"/albums/{quote(album_id, safe='')}/tracks",
            link=link,
            first=raw.get("tracks"),
            wanted=self._cap + 1,
            keep=lambda entry: _skip_reason(entry) is None,
        )
        album = _album_summary(raw, await self._disc_count(raw, entries, link))
        result = TrackList(link=link, name=album.name, tracks=[], owner=album.artist)
        result.total_available = max(total, album.total_tracks)

        # Keep what can be imported, then read each kept track whole for its ISRC.
        kept = _keep_importable(entries, result, self._cap)
        artist_genres = await self._artist_genres(album.artist_id)
        full = await self._full_tracks(kept, link, result)
        result.tracks = [_track_meta(track, album, artist_genres) for track in full]
        return cap_track_list(result, self._cap)

    async def playlist(self, playlist_id: str, user_token: str | None = None) -> TrackList:
        """Read a playlist's tracks; other people's playlists need the owner's `user_token`."""
        link = SpotifyLink(LinkKind.PLAYLIST, playlist_id)
        path = f"/playlists/{quote(playlist_id, safe='')}"
        raw = await self._get(path, link=link, user_token=user_token)
        owner = raw.get("owner") or {}
        result = TrackList(
            link=link,
            name=str(raw.get("name") or playlist_id),
            tracks=[],
            owner=owner.get("display_name") or owner.get("id"),
        )

        # The playlist object may carry its first page (under `items`, formerly `tracks`).
        embedded = raw.get("items") if isinstance(raw.get("items"), dict) else raw.get("tracks")
        first = embedded if isinstance(embedded, dict) and "items" in embedded else None
        entries, total = await self._collect(
            f"{path}/items",
            link=link,
            first=first,
            wanted=self._cap + 1,
            keep=lambda entry: _skip_reason(_playlist_track(entry)) is None,
            user_token=user_token,
        )
        result.total_available = total

        # Each item carries its simplified album, which is enough to tag the track: no album
        # is read, so playlist tracks have no label or genres.
        tracks = [_playlist_track(entry) for entry in entries]
        kept = _keep_importable(tracks, result, self._cap)
        albums: dict[str, _Album] = {}
        for track in kept:
            simplified = track.get("album") or {}
            album_id = str(simplified.get("id") or "")
            album = albums.get(album_id) if album_id else None
            if album is None:
                album = albums[album_id] = _album_summary(simplified, disc_count=1)
            result.tracks.append(_track_meta(track, album))
        return cap_track_list(result, self._cap)

    async def artist(self, artist_id: str) -> TrackList:
        """Read an artist's albums and singles, each track once."""
        link = SpotifyLink(LinkKind.ARTIST, artist_id)
        path = f"/artists/{quote(artist_id, safe='')}"
        raw = await self._get(path, link=link)
        result = TrackList(link=link, name=str(raw.get("name") or artist_id), tracks=[])
        result.owner = result.name
        artist_genres = [str(genre) for genre in raw.get("genres") or []]

        # The artist's albums and singles, then each album whole.
        listed, _ = await self._collect(
            f"{path}/albums", link=link, params={"include_groups": "album,single"}
        )
        album_ids = _unique(str(entry["id"]) for entry in listed if _has_id(entry))
        listed_sizes = {
            str(entry["id"]): entry.get("total_tracks") for entry in listed if _has_id(entry)
        }

        # Read albums a wave at a time and stop once the cap is full: a large discography
        # would otherwise cost a request per album against Spotify's rate window.
        seen_ids: set[str] = set()
        seen_songs: set[tuple[str, int]] = set()
        kept: list[tuple[Json, _Album]] = []
        unique_count = 0
        wave = self._settings.spotify_page_concurrency
        read = 0
        while read < len(album_ids) and len(kept) < self._cap:
            batch = album_ids[read : read + wave]
            read += len(batch)
            loaded = await _gather_all(
                (self._raw_album_or_none(album_id) for album_id in batch),
                name="spotify:artist-album",
            )
            raw_albums = [raw_album for raw_album in loaded if raw_album is not None]
            album_entries = await _gather_all(
                (
                    self._collect(
                        f"/albums/{quote(str(raw_album['id']), safe='')}/tracks",
                        link=link,
                        first=raw_album.get("tracks"),
                    )
                    for raw_album in raw_albums
                ),
                name="spotify:artist-album-tracks",
            )

            # Every track once, by id and by (title, duration) across albums and singles.
            for raw_album, (entries, _) in zip(raw_albums, album_entries, strict=True):
                album = _album_summary(raw_album, _max_disc(entries))
                for entry in entries:
                    reason = _skip_reason(entry)
                    if reason is not None:
                        result.skip(reason)
                        continue
                    song = (
                        str(entry.get("name") or "").casefold().strip(),
                        _duration_secs(entry),
                    )
                    if entry["id"] in seen_ids or song in seen_songs:
                        result.skip(SkipReason.DUPLICATE)
                        continue
                    seen_ids.add(entry["id"])
                    seen_songs.add(song)
                    unique_count += 1
                    if len(kept) < self._cap:
                        kept.append((entry, album))
        # Albums left unread count with the size Spotify listed for them.
        unread = sum(int(listed_sizes.get(album_id) or 0) for album_id in album_ids[read:])
        result.total_available = unique_count + unread
        if result.total_available > len(kept):
            result.capped_at = self._cap

        # Read the kept tracks whole for their ISRCs.
        full = await self._full_tracks([entry for entry, _ in kept], link, result)
        albums_by_track = {str(entry["id"]): album for entry, album in kept}
        result.tracks = [
            _track_meta(track, albums_by_track[str(track["id"])], artist_genres) for track in full
        ]
        return cap_track_list(result, self._cap)

    @property
    def _cap(self) -> int:
        return self._settings.max_tracks_per_request

    async def _albums(self, simplified: list[Json]) -> list[_Album]:
        """Read each distinct album once, concurrently, and return one per entry given."""
        album_ids = _unique(str(album["id"]) for album in simplified if _has_id(album))
        loaded = await _gather_all(
            (self._album_or_none(album_id) for album_id in album_ids), name="spotify:album"
        )
        by_id = {album.spotify_id: album for album in loaded if album is not None}
        return [
            by_id.get(str(album.get("id"))) or _album_summary(album, disc_count=1)
            for album in simplified
        ]

    async def _album_or_none(self, album_id: str) -> _Album | None:
        """The album's summary, or None when Spotify no longer has it."""
        raw = await self._raw_album_or_none(album_id)
        if raw is None:
            return None
        return _album_summary(
            raw, await self._disc_count(raw, [], SpotifyLink(LinkKind.ALBUM, album_id))
        )

    async def _raw_album_or_none(self, album_id: str) -> Json | None:
        """The full album object, or None when Spotify no longer has it."""
        link = SpotifyLink(LinkKind.ALBUM, album_id)
        try:
            return await self._get(f"/albums/{quote(album_id, safe='')}", link=link)
        except SpotifyNotFound:
            logger.warning(
                "Album %s is listed but gone; its tracks are read without it.", album_id
            )
            return None

    async def _disc_count(self, raw_album: Json, known: list[Any], link: SpotifyLink) -> int:
        """The album's number of discs: its last track's disc number."""
        page = raw_album.get("tracks") or {}
        entries = [*(page.get("items") or []), *known]
        total = int(page.get("total") or raw_album.get("total_tracks") or 0)
        if len(known) >= total or len(page.get("items") or []) >= total:
            return _max_disc(entries)

        # Only part of the album is at hand: ask for its last track alone.
        album_id = quote(str(raw_album.get("id")), safe="")
        last = await self._get(
            f"/albums/{album_id}/tracks", link=link, params={"offset": total - 1, "limit": 1}
        )
        return max(_max_disc(last.get("items") or []), _max_disc(entries))

    async def _artist_genres(self, artist_id: str | None) -> list[str]:
        """The artist's genres, or none when the artist cannot be read."""
        if not artist_id:
            return []
        link = SpotifyLink(LinkKind.ARTIST, artist_id)
        try:
            raw = await self._get(f"/artists/{quote(artist_id, safe='')}", link=link)
        except SpotifyNotFound:
            return []
        return [str(genre) for genre in raw.get("genres") or []]

    async def _full_tracks(
        self, simplified: list[Json], link: SpotifyLink, result: TrackList
    ) -> list[Json]:
        """Read each track whole (album pages omit the ISRC); gone tracks are skipped."""

        async def one(entry: Json) -> Json | None:
            track_id = str(entry["id"])
            try:
                return await self._get(f"/tracks/{quote(track_id, safe='')}", link=link)
            except SpotifyNotFound:
                return None

        loaded = await _gather_all((one(entry) for entry in simplified), name="spotify:track")
        full = []
        for track in loaded:
            if track is None or _skip_reason(track) is not None:
                result.skip(SkipReason.UNAVAILABLE if track is None else _reason(track))
            else:
                full.append(track)
        return full

    async def _collect(
        self,
        path: str,
        *,
        link: SpotifyLink,
        first: Json | None = None,
        wanted: int | None = None,
        keep: Callable[[Any], bool] | None = None,
        params: dict[str, Any] | None = None,
        user_token: str | None = None,
    ) -> tuple[list[Any], int]:
        """Read the entries of a paged list in order, and the total Spotify reports.

        The first page comes alone; once it gives the total, the spans of 50 entries up to
        `wanted` kept entries are read concurrently. A page shorter than asked leaves a gap
        in its span (its `next` says where it ended), which that span's task asks for at once,
        while the other spans go on. Returns at least `wanted` entries that pass `keep` when
        the list holds that many.
        """

        async def page_at(offset: int, limit: int = PAGE_LIMIT) -> Json:
            query = {**(params or {}), "offset": offset, "limit": limit}
            return await self._get(path, link=link, params=query, user_token=user_token)

        async def span(offset: int, stop: int) -> dict[int, Json]:
            """The pages that together hold entries `offset` to `stop` (or up to the end)."""
            held: dict[int, Json] = {}
            while True:
                page = held[offset] = await page_at(offset, min(PAGE_LIMIT, stop - offset))
                following = _next_offset(page, offset)
                if following is None or following <= offset or following >= stop:
                    return held
                offset = following

        if not isinstance(first, dict) or not isinstance(first.get("items"), list):
            first = await page_at(0)
        total = int(first.get("total") or 0)
        start = int(first.get("offset") or 0)
        pages: dict[int, Json] = {start: first}
        planned_to = start + len(first["items"])

        while True:
            entries, kept_count, missing = _walk(pages, start, path, wanted, keep)
            if missing is None:
                return entries, total
            if missing >= planned_to:
                # Past what was planned: plan the spans that should bring the rest.
                shortfall = total - missing if wanted is None else wanted - kept_count
                planned_to = max(min(total, missing + shortfall), missing + 1)
            stop = min((offset for offset in pages if offset > missing), default=planned_to)
            spans = await _gather_all(
                (
                    span(offset, min(offset + PAGE_LIMIT, stop))
                    for offset in range(missing, stop, PAGE_LIMIT)
                ),
                name="spotify:page",
            )
            for held in spans:
                pages.update(held)

    async def _get(
        self,
        path: str,
        *,
        link: SpotifyLink,
        params: dict[str, Any] | None = None,
        user_token: str | None = None,
    ) -> Json:
        """GET one API resource, handling 401, 429 and passing faults; raises our errors."""
        url = f"{self._settings.spotify_api_base_url}{path}"
        renewed = False
        failures = 0
        rate_waits = 0
        while True:
            token = user_token or await self._app_token()
            await self._wait_for_rate_window()
            try:
                async with self._slots:
                    response = await self._http.get(
                        url,
                        params=params,
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=REQUEST_TIMEOUT_SECS,
                    )
            except httpx.TransportError as exc:
                failures += 1
                if failures > TRANSIENT_RETRIES:
                    raise SpotifyUnavailable(f"{path}: {type(exc).__name__}") from exc
                logger.warning("Spotify request %s failed (%s); retrying.", path, exc)
                await asyncio.sleep(TRANSIENT_BACKOFF_SECS * failures)
                continue

            status = response.status_code
            if status == httpx.codes.OK:
                return _json_body(response, path)
            if status == httpx.codes.UNAUTHORIZED:
                if user_token is not None:
                    raise SpotifyAuthError(f"the linked user's token was refused for {path}")
                if renewed:
                    raise SpotifyAuthError(f"a renewed app token was refused for {path}")
                renewed = True
                logger.info("Spotify refused the app token for %s; renewing it.", path)
                await self._discard_token(token)
                continue
            if status == httpx.codes.FORBIDDEN:
                raise SpotifyForbidden(link.kind.value, link.spotify_id)
            if status == httpx.codes.NOT_FOUND:
                raise SpotifyNotFound(
                    link.kind.value, link.spotify_id, editorial=link.kind is LinkKind.PLAYLIST
                )
            if status == httpx.codes.BAD_REQUEST:
                raise SpotifyNotFound(link.kind.value, link.spotify_id)
            if status == httpx.codes.TOO_MANY_REQUESTS:
                retry_after = _retry_after_secs(response)
                rate_waits += 1
                if (
                    retry_after > self._settings.spotify_max_wait_secs
                    or rate_waits > MAX_RATE_LIMIT_WAITS
                ):
                    raise SpotifyRateLimited(retry_after)
                logger.warning("Spotify asked to wait %.0f s before %s.", retry_after, path)
                self._hold_requests(retry_after)
                continue
            if status >= httpx.codes.INTERNAL_SERVER_ERROR and failures < TRANSIENT_RETRIES:
                failures += 1
                logger.warning("Spotify answered %d for %s; retrying.", status, path)
                await asyncio.sleep(TRANSIENT_BACKOFF_SECS * failures)
                continue
            raise SpotifyUnavailable(f"HTTP {status} for {path}")

    async def _wait_for_rate_window(self) -> None:
        delay = self._resume_at - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)

    def _hold_requests(self, secs: float) -> None:
        """Keep every request of this client back for `secs` (Spotify's window is shared)."""
        loop_now = asyncio.get_running_loop().time()
        self._resume_at = max(self._resume_at, loop_now + secs)

    def _credentials(self) -> tuple[str, str]:
        client_id = self._settings.spotify_client_id
        secret = self._settings.spotify_client_secret
        if not client_id or secret is None or not secret.get_secret_value():
            raise SpotifyCredentialsMissing("SPOTIFY_CLIENT_ID or SPOTIFY_CLIENT_SECRET unset")
        return client_id, secret.get_secret_value()

    async def _app_token(self) -> str:
        """The app's access token, from the shared store or freshly asked for."""
        client_id, secret = self._credentials()
        key = _credentials_key(client_id, secret)
        async with self._token_lock:
            token = await self._tokens.load(key)
            if token is None:
                token = await self._request_token(client_id, secret)
                await self._tokens.save(key, token)
            return token.access_token

    async def check_credentials(self) -> None:
        """Raise our Spotify error when the app's credentials cannot get a token."""
        await self._app_token()

    async def _discard_token(self, access_token: str) -> None:
        key = _credentials_key(*self._credentials())
        async with self._token_lock:
            await self._tokens.discard(key, access_token)

    async def _request_token(self, client_id: str, secret: str) -> AppToken:
        """Ask Spotify's accounts service for an app token (client-credentials flow)."""
        url = f"{self._settings.spotify_accounts_base_url}/api/token"
        try:
            response = await self._http.post(
                url,
                data={"grant_type": "client_credentials"},
                auth=(client_id, secret),
                timeout=REQUEST_TIMEOUT_SECS,
            )
        except httpx.TransportError as exc:
            raise SpotifyUnavailable(f"accounts service: {type(exc).__name__}") from exc

        status = response.status_code
        if status in (httpx.codes.BAD_REQUEST, httpx.codes.UNAUTHORIZED):
            raise SpotifyAuthError(f"the accounts service refused the app (HTTP {status})")
        if status == httpx.codes.TOO_MANY_REQUESTS:
            raise SpotifyRateLimited(_retry_after_secs(response))
        if status != httpx.codes.OK:
            raise SpotifyUnavailable(f"HTTP {status} from the accounts service")
        body = _json_body(response, "/api/token")
        try:
            token = AppToken(
                access_token=str(body["access_token"]),
                expires_at=time.time() + float(body.get("expires_in") or 3600),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SpotifyUnavailable("the accounts service sent no access token") from exc
        logger.info("Spotify app token obtained; it expires at %.0f.", token.expires_at)
        return token


def cap_track_list(result: TrackList, limit: int) -> TrackList:
    """Keep the first `limit` tracks of `result`, noting on it that the cap was applied."""
    if not result.total_available:
        result.total_available = len(result.tracks) + result.skipped_total
    if len(result.tracks) > limit:
        result.tracks = result.tracks[:limit]
        result.capped_at = limit
    return result


async def _gather_all(awaitables: Iterable[Awaitable[T]], *, name: str) -> list[T]:
    """Run the awaitables concurrently; on the first failure cancel the rest and raise it."""

    async def run(awaitable: Awaitable[T]) -> T:
        return await awaitable

    tasks = [
        asyncio.create_task(run(awaitable), name=f"{name}:{index}")
        for index, awaitable in enumerate(awaitables)
    ]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _json_body(response: httpx.Response, path: str) -> Json:
    try:
        body = response.json()
    except ValueError as exc:
        raise SpotifyUnavailable(f"{path} answered with something that is not JSON") from exc
    if not isinstance(body, dict):
        raise SpotifyUnavailable(f"{path} answered with a JSON {type(body).__name__}")
    return body


def _credentials_key(client_id: str, secret: str) -> str:
    """What a stored token is filed under: a token got with other credentials is not ours."""
    return f"{client_id}:{hashlib.sha256(secret.encode()).hexdigest()}"


def _retry_after_secs(response: httpx.Response) -> float:
    """Seconds Spotify asks us to wait, from the Retry-After header."""
    try:
        secs = float(response.headers.get("retry-after", ""))
    except ValueError:
        return DEFAULT_RETRY_AFTER_SECS
    if not math.isfinite(secs):
        return MAX_RETRY_AFTER_SECS
    return min(max(0.0, secs), MAX_RETRY_AFTER_SECS)


def _next_offset(page: Json, offset: int) -> int | None:
    """Where the page after `page` starts, or None when `page` is the last."""
    next_url = page.get("next")
    if not next_url:
        return None
    values = parse_qs(urlsplit(str(next_url)).query).get("offset")
    if values and values[0].isdigit():
        return int(values[0])
    return offset + len(page.get("items") or [])


def _walk(
    pages: dict[int, Json],
    start: int,
    path: str,
    wanted: int | None,
    keep: Callable[[Any], bool] | None,
) -> tuple[list[Any], int, int | None]:
    """Follow the pages held from `start`, in order, until one is missing.

    Returns their entries, how many of them pass `keep`, and the offset of the first missing
    page: None when the list is complete or `wanted` entries are kept.
    """
    entries: list[Any] = []
    kept_count = 0
    cursor = start
    while True:
        page = pages.get(cursor)
        if page is None:
            return entries, kept_count, cursor
        items = page.get("items") or []
        entries.extend(items)
        kept_count += sum(1 for item in items if keep is None or keep(item))
        if wanted is not None and kept_count >= wanted:
            return entries, kept_count, None
        following = _next_offset(page, cursor)
        if following is None:
            return entries, kept_count, None
        if following <= cursor:
            logger.warning("Spotify paging of %s stopped moving at %d.", path, cursor)
            return entries, kept_count, None
        cursor = following


def _playlist_track(entry: Any) -> Any:
    """The track inside a playlist entry (under `item`, or `track` in older answers)."""
    if not isinstance(entry, dict):
        return None
    track = entry.get("item") or entry.get("track")
    if isinstance(track, dict) and entry.get("is_local") and not track.get("is_local"):
        return {**track, "is_local": True}
    return track


def _skip_reason(track: Any) -> SkipReason | None:
    """Why a track entry cannot be imported, or None when it can."""
    if not isinstance(track, dict):
        return SkipReason.UNAVAILABLE
    if track.get("is_local"):
        return SkipReason.LOCAL_FILE
    if track.get("type", "track") == "episode":
        return SkipReason.EPISODE
    if not track.get("id"):
        return SkipReason.UNAVAILABLE
    if track.get("is_playable") is False:
        return SkipReason.UNPLAYABLE
    return None


def _reason(track: Any) -> SkipReason:
    return _skip_reason(track) or SkipReason.UNAVAILABLE


def _keep_importable(tracks: list[Any], result: TrackList, cap: int) -> list[Json]:
    """The first `cap` importable tracks, each id once, with what was skipped on the way.

    When one more importable track follows them, the cap is noted on `result`.
    """
    kept: list[Json] = []
    seen: set[str] = set()
    for track in tracks:
        reason = _skip_reason(track)
        if reason is None and track["id"] in seen:
            reason = SkipReason.DUPLICATE
        if reason is not None:
            result.skip(reason)
            continue
        if len(kept) == cap:
            result.capped_at = cap
            break
        seen.add(track["id"])
        kept.append(track)
    return kept


def _album_summary(raw: Json, disc_count: int) -> _Album:
    """What the tracks of album `raw` (full or simplified) share."""
    artists = raw.get("artists") or [{}]
    copyrights = raw.get("copyrights") or []
    return _Album(
        spotify_id=str(raw.get("id") or ""),
        name=str(raw.get("name") or ""),
        artist=str(artists[0].get("name") or ""),
        artist_id=artists[0].get("id"),
        label=str(raw.get("label") or ""),
        genres=[str(genre) for genre in raw.get("genres") or []],
        release_date=str(raw.get("release_date") or ""),
        total_tracks=int(raw.get("total_tracks") or 0),
        disc_count=max(1, disc_count),
        cover_url=_largest_image(raw.get("images") or []),
        copyright=copyrights[0].get("text") if copyrights else None,
        album_type=raw.get("album_type"),
    )


def _track_meta(track: Json, album: _Album, extra_genres: Iterable[str] = ()) -> TrackMeta:
    """One full track object, completed with what its album shares."""
    artists = [str(artist.get("name") or "") for artist in track.get("artists") or []]
    simplified_album = track.get("album") or {}
    genres = _unique([*album.genres, *extra_genres])
    return TrackMeta(
        spotify_id=str(track["id"]),
        title=str(track.get("name") or ""),
        artists=artists,
        album=album.name or str(simplified_album.get("name") or ""),
        album_id=album.spotify_id or str(simplified_album.get("id") or ""),
        album_artist=album.artist or (artists[0] if artists else ""),
        duration_ms=int(track.get("duration_ms") or 0),
        track_number=int(track.get("track_number") or 1),
        disc_number=int(track.get("disc_number") or 1),
        disc_count=max(album.disc_count, int(track.get("disc_number") or 1)),
        tracks_count=album.total_tracks or int(simplified_album.get("total_tracks") or 1),
        release_date=album.release_date or str(simplified_album.get("release_date") or ""),
        isrc=(track.get("external_ids") or {}).get("isrc"),
        publisher=album.label,
        genres=genres,
        cover_url=album.cover_url or _largest_image(simplified_album.get("images") or []),
        explicit=bool(track.get("explicit")),
        copyright=album.copyright,
        popularity=track.get("popularity"),
        artist_id=_first_artist_id(track),
        album_type=album.album_type or simplified_album.get("album_type"),
    )


def _largest_image(images: list[Json]) -> str | None:
    """The address of the largest image (width times height; unknown sizes count as 0)."""
    sized = [image for image in images if isinstance(image, dict) and image.get("url")]
    if not sized:
        return None
    largest = max(sized, key=lambda image: (image.get("width") or 0) * (image.get("height") or 0))
    return str(largest["url"])


def _max_disc(entries: Iterable[Any]) -> int:
    discs = [int(entry.get("disc_number") or 1) for entry in entries if isinstance(entry, dict)]
    return max(discs, default=1)


def _duration_secs(track: Json) -> int:
    return round(int(track.get("duration_ms") or 0) / 1000)


def _first_artist_id(track: Json) -> str | None:
    artists = track.get("artists") or []
    return str(artists[0]["id"]) if artists and artists[0].get("id") else None


def _has_id(entry: Any) -> bool:
    return isinstance(entry, dict) and bool(entry.get("id"))


def _unique(values: Iterable[str]) -> list[str]:
    """The values in order, each once."""
    return list(dict.fromkeys(values))
