"""The bot's small HTTP server: signed, expiring links to finished files, and a health check.

`GET /files/<token>` serves the file of the download job the token names; the token
holds a job id and an expiry signed with the secret key, never a path, so nothing a
client sends is joined to a folder. A tampered token is refused with 403, an expired
one with 410. Range requests are answered (aiohttp's FileResponse does it).
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from config.settings import Settings
from core.errors import PortUnavailable
from core.types import JobStatus
from storage.db import Database
from storage.models import DownloadJob

_log = logging.getLogger(__name__)

# How long a download link works.
LINK_TTL_SECS = 24 * 3600
_PURPOSE = b"soundforge-file-link:"


class TokenRejected(Exception):
    """Raised when a link token was not signed by us (tampered or malformed)."""


class TokenExpired(Exception):
    """Raised when a link token is genuine but past its expiry."""


class LinkSigner:
    """Makes and checks link tokens: `<job id>.<expiry>.<signature>`, all URL-safe."""

    def __init__(self, secret: bytes, *, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._clock = clock

    def sign(self, job_id: int, ttl_secs: float = LINK_TTL_SECS) -> str:
        """A token for `job_id` that works for `ttl_secs` seconds."""
        expires = int(self._clock() + ttl_secs)
        payload = f"{job_id}.{expires}"
        return f"{payload}.{_b64(self._mac(payload))}"

    def verify(self, token: str) -> int:
        """The job id in a genuine, unexpired token; raises TokenRejected or TokenExpired."""
        payload, _, signature = token.rpartition(".")
        job_text, _, expires_text = payload.partition(".")
        if not (job_text.isdigit() and expires_text.isdigit()):
            raise TokenRejected(token)
        try:
            given = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
            self._hmac(payload).verify(given)  # constant-time
        except (binascii.Error, ValueError, InvalidSignature) as exc:
            raise TokenRejected(token) from exc
        if int(expires_text) < self._clock():
            raise TokenExpired(token)
        return int(job_text)

    def _hmac(self, payload: str) -> hmac.HMAC:
        mac = hmac.HMAC(self._secret, hashes.SHA256())
        mac.update(_PURPOSE + payload.encode())
        return mac

    def _mac(self, payload: str) -> bytes:
        return self._hmac(payload).finalize()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class ServedFile:
    """A finished file and the name a browser saves it under."""

    path: Path
    name: str


FileLookup = Callable[[int], Awaitable[ServedFile | None]]


def job_file_lookup(db: Database) -> FileLookup:
    """Find a completed job's file in the database."""

    async def lookup(job_id: int) -> ServedFile | None:
        async with db.session() as session:
            job = await session.scalar(
                select(DownloadJob)
                .where(DownloadJob.id == job_id)
                .options(selectinload(DownloadJob.track))
            )
            if job is None or job.status != JobStatus.COMPLETED.value or not job.output_path:
                return None
            path = Path(job.output_path)
            return ServedFile(path, path.name) if path.is_file() else None

    return lookup


def content_disposition(name: str) -> str:
    """`attachment` with an ASCII fallback name and the real one in RFC 5987 form."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = "".join(c for c in ascii_name if c.isprintable() and c not in '"\\/') or "audio"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


class FileServer:
    """The aiohttp server on settings.http_host and settings.http_port."""

    def __init__(self, settings: Settings, lookup: FileLookup, signer: LinkSigner) -> None:
        self._settings = settings
        self._lookup = lookup
        self.signer = signer
        self._runner: web.AppRunner | None = None
        self.port = 0

    def link_for(self, job_id: int, ttl_secs: float = LINK_TTL_SECS) -> str:
        """A public, signed link to a job's file."""
        return f"{self._settings.public_base_url}/files/{self.signer.sign(job_id, ttl_secs)}"

    async def start(self) -> None:
        """Listen on the configured host and port (port 0 takes a free one)."""
        app = web.Application()
        app.router.add_get("/files/{token}", self._serve_file)
        app.router.add_get("/healthz", self._health)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await self._runner.setup()
        host, port = self._settings.http_host, self._settings.http_port
        site = web.TCPSite(self._runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise PortUnavailable(host, port, exc.strerror or str(exc)) from exc
        self.port = int(self._runner.addresses[0][1])
        _log.info("File server listening on %s:%d", self._settings.http_host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            _log.info("File server stopped")

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _serve_file(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        try:
            job_id = self.signer.verify(token)
        except TokenRejected:
            _log.warning("Refused a file link with a bad signature")
            raise web.HTTPForbidden(text="This link is not valid.\n") from None
        except TokenExpired:
            raise web.HTTPGone(text="This link has expired; ask the bot again.\n") from None
        served = await self._lookup(job_id)
        if served is None:
            raise web.HTTPNotFound(text="This file is no longer here; ask the bot again.\n")
        _log.info("Serving the file of job %s", job_id)
        return web.FileResponse(
            served.path, headers={"Content-Disposition": content_disposition(served.name)}
        )
