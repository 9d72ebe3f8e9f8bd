"""Finding Spotify links in chat text, and resolving spotify.link short links.

`find_links` is pure: it reads every form a person pastes (open.spotify.com with or without
`/intl-xx/`, `spotify:` URIs, embeds, legacy `user/NAME/playlist/ID` paths, Discord `<...>`
wrapping) and reduces each to its canonical kind and id. `resolve_links` then follows the
short links, one redirect at a time and only across Spotify's own hosts, and no more of them
than the caller's limit needs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from core.errors import InvalidLink, ShortLinkError, UnsupportedLink
from core.types import LinkKind, SpotifyLink

logger = logging.getLogger(__name__)

# Hosts a short link may pass through or land on; subdomains of spotify.com are allowed too.
SHORT_LINK_HOSTS = frozenset({"spotify.link", "spotify.app.link"})
SPOTIFY_DOMAIN = "spotify.com"
# How much of a page we read when a short link answers 200 instead of redirecting.
SHORT_LINK_PAGE_MAX_BYTES = 256 * 1024
SHORT_LINK_TIMEOUT_SECS = 10.0
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

PODCAST_KINDS = frozenset({"episode", "show"})

# A Spotify id is exactly 22 base62 characters; one more base62 character means it is not one.
# Case-sensitive on purpose: under IGNORECASE, [A-Za-z] also takes look-alikes such as the
# Kelvin sign or the dotless i, which fold to Latin letters.
_ID = r"(?-i:[0-9A-Za-z]{22}(?![0-9A-Za-z]))"
_KINDS = r"track|album|playlist|artist|episode|show"
# A host may follow a scheme, or stand alone when nothing that could belong to another
# address (a letter, a dot, a slash, an @) comes right before it.
_START = r"(?:https?://|(?<![\w.\-/@%]))"
_WEB_LINK = (
    rf"{_START}(?:(?:open|play|www|embed)\.)?spotify\.com/"
    r"(?:(?:intl-[a-z]{2}(?:[-_][a-z]{2,4})?|embed(?:-podcast|-legacy)?)/)*"
    r"(?:user/[^/\s?#<>]{1,64}/)?"
    rf"(?P<web_kind>{_KINDS})/(?P<web_id>{_ID})"
)
_URI = (
    r"(?<![\w:])spotify(?::|%3A)(?:user(?::|%3A)[^:%\s]{1,64}(?::|%3A))?"
    rf"(?P<uri_kind>{_KINDS})(?::|%3A)(?P<uri_id>{_ID})"
)
_SHORT_LINK = (
    rf"{_START}(?P<short_host>spotify\.link|spotify\.app\.link)/"
    r"(?P<short_code>[0-9A-Za-z_-]{1,64})"
)
_LINK_PATTERN = re.compile(f"{_WEB_LINK}|{_URI}|{_SHORT_LINK}", re.IGNORECASE)


@dataclass
class LinkScan:
    """What `find_links` saw in one message."""

    links: list[SpotifyLink] = field(default_factory=list)
    short_links: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when the message held nothing that even looked like a Spotify link."""
        return not (self.links or self.short_links or self.unsupported)

    @property
    def importable(self) -> int:
        """How many links could be imported, counting each short link before it is followed."""
        return len(self.links) + len(self.short_links)


def find_links(text: str, hidden_urls: Iterable[str] = ()) -> LinkScan:
    """Find every Spotify link in `text`, then in `hidden_urls` (Telegram text links).

    Links come back canonical, de-duplicated and in order of appearance; podcast links are
    listed apart as unsupported and short links as still to resolve.
    """
    scan = LinkScan()
    seen: set[SpotifyLink] = set()
    for chunk in (text, *hidden_urls):
        if not isinstance(chunk, str):
            raise InvalidLink(repr(chunk))
        for match in _LINK_PATTERN.finditer(chunk):
            _record(scan, seen, match)
    return scan


def _record(scan: LinkScan, seen: set[SpotifyLink], match: re.Match[str]) -> None:
    """Add one pattern match to the scan."""
    if match.group("short_code"):
        url = f"https://{match.group('short_host').lower()}/{match.group('short_code')}"
        if url not in scan.short_links:
            scan.short_links.append(url)
        return

    kind = (match.group("web_kind") or match.group("uri_kind")).lower()
    spotify_id = match.group("web_id") or match.group("uri_id")
    if kind in PODCAST_KINDS:
        url = f"https://open.spotify.com/{kind}/{spotify_id}"
        if url not in scan.unsupported:
            scan.unsupported.append(url)
        return

    link = SpotifyLink(LinkKind(kind), spotify_id)
    if link not in seen:
        seen.add(link)
        scan.links.append(link)


def is_spotify_host(host: str) -> bool:
    """True for spotify.com and its subdomains, spotify.link and spotify.app.link."""
    host = host.lower().rstrip(".")
    return (
        host in SHORT_LINK_HOSTS or host == SPOTIFY_DOMAIN or host.endswith("." + SPOTIFY_DOMAIN)
    )


async def resolve_links(
    scan: LinkScan,
    http: httpx.AsyncClient,
    max_redirects: int = 5,
    *,
    limit: int | None = None,
) -> list[SpotifyLink]:
    """Return the scan's links plus those its short links lead to.

    With `limit`, at most that many links come back, and short links are followed only
    while fewer are known: each one costs a request or more. A short link that cannot be
    followed is left out when other links remain, as a podcast link is. Raises
    ShortLinkError when none remains and a short link could not be followed to Spotify,
    UnsupportedLink when the message only held podcast links, and InvalidLink when it held
    nothing importable at all.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    links = list(scan.links)
    unsupported = list(scan.unsupported)
    broken: list[ShortLinkError] = []
    for followed, short_url in enumerate(scan.short_links):
        if limit is not None and len(links) >= limit:
            left = len(scan.short_links) - followed
            logger.debug("%d short links not followed: %d links are enough.", left, limit)
            break
        try:
            found = await _follow_short_link(short_url, http, max_redirects)
        except ShortLinkError as exc:
            broken.append(exc)
            continue
        for link in found.links:
            if link not in links:
                links.append(link)
        unsupported.extend(found.unsupported)

    if links:
        for refusal in broken:
            logger.warning("Short link %s left out: %s.", refusal.url, refusal.reason)
        return links[:limit]
    if broken:
        raise broken[0]
    if unsupported:
        kind = urlsplit(unsupported[0]).path.strip("/").split("/")[0]
        raise UnsupportedLink(kind, unsupported[0])
    raise InvalidLink(" ".join(scan.short_links))


async def _follow_short_link(
    short_url: str, http: httpx.AsyncClient, max_redirects: int
) -> LinkScan:
    """Follow one short link hop by hop until it names a Spotify item."""
    url = short_url
    for hop in range(max_redirects + 1):
        host = urlsplit(url).hostname or ""
        if not is_spotify_host(host):
            raise ShortLinkError(short_url, f"redirected off Spotify to {host or url!r}")

        # A hop that already names an item ends the walk without a request to it.
        landed = find_links(url)
        if landed.links or landed.unsupported:
            logger.debug("Short link %s resolved after %d redirects.", short_url, hop)
            return landed

        hop_answer = await _request_hop(short_url, url, http)
        if hop_answer.status in REDIRECT_STATUSES:
            if not hop_answer.location:
                raise ShortLinkError(short_url, f"redirect {hop_answer.status} has no target")
            url = urljoin(url, hop_answer.location)
            continue
        if hop_answer.status == httpx.codes.OK:
            page = find_links(hop_answer.page)
            if page.links or page.unsupported:
                return page
            raise ShortLinkError(short_url, "the page it leads to names no Spotify item")
        raise ShortLinkError(short_url, f"answered HTTP {hop_answer.status}")

    raise ShortLinkError(short_url, f"more than {max_redirects} redirects")


@dataclass(frozen=True)
class _HopAnswer:
    """What one short-link hop answered: a status, a redirect target, maybe a page."""

    status: int
    location: str | None
    page: str


async def _request_hop(short_url: str, url: str, http: httpx.AsyncClient) -> _HopAnswer:
    """GET one hop without following redirects, reading at most a small page."""
    body = bytearray()
    try:
        async with http.stream(
            "GET", url, follow_redirects=False, timeout=SHORT_LINK_TIMEOUT_SECS
        ) as response:
            if response.status_code == httpx.codes.OK:
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) >= SHORT_LINK_PAGE_MAX_BYTES:
                        break
            return _HopAnswer(
                status=response.status_code,
                location=response.headers.get("location"),
                page=body[:SHORT_LINK_PAGE_MAX_BYTES].decode("utf-8", errors="replace"),
            )
    except httpx.HTTPError as exc:
        raise ShortLinkError(short_url, f"could not be reached ({type(exc).__name__})") from exc
