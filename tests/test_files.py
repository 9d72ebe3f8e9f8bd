"""The file server's signed links, Range answers and names, and the cover thumbnail."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from mutagen.id3 import APIC, ID3
from PIL import Image

from bot.files import (
    FileServer,
    LinkSigner,
    ServedFile,
    TokenExpired,
    TokenRejected,
    content_disposition,
    job_file_lookup,
)
from bot.thumbnail import MAX_BYTES, MAX_SIDE_PX, cover_thumbnail
from config.settings import Settings
from core.types import JobStatus
from storage.db import Database
from storage.models import DownloadJob, Track

SECRET = b"a-secret-for-tests"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_signed_token_names_its_job() -> None:
    signer = LinkSigner(SECRET)

    assert signer.verify(signer.sign(42)) == 42


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token.replace("42.", "43.", 1),
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        lambda token: "../../etc/passwd",
        lambda token: "",
        lambda token: token.rpartition(".")[0],
    ],
)
def test_a_tampered_token_is_rejected(tamper) -> None:
    signer = LinkSigner(SECRET)

    with pytest.raises(TokenRejected):
        signer.verify(tamper(signer.sign(42)))


def test_a_token_signed_with_another_key_is_rejected() -> None:
    with pytest.raises(TokenRejected):
        LinkSigner(SECRET).verify(LinkSigner(b"another key").sign(42))


def test_a_token_past_its_expiry_is_expired() -> None:
    clock = Clock()
    signer = LinkSigner(SECRET, clock=clock)
    token = signer.sign(42, ttl_secs=60)

    clock.now += 61

    with pytest.raises(TokenExpired):
        signer.verify(token)


def test_content_disposition_keeps_non_ascii_names_in_rfc_5987_form() -> None:
    header = content_disposition("Sigur Rós - Hoppípolla.mp3")

    assert header.startswith('attachment; filename="Sigur Ros - Hoppipolla.mp3"')
    assert "filename*=UTF-8''Sigur%20R%C3%B3s%20-%20Hopp%C3%ADpolla.mp3" in header


@pytest.fixture
def song(tmp_path: Path) -> Path:
    path = tmp_path / "Ólafur - Song.mp3"
    path.write_bytes(bytes(range(256)) * 40)
    return path


@pytest.fixture
async def server(tmp_path: Path, song: Path) -> AsyncIterator[FileServer]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        http_host="127.0.0.1",
        http_port=0,
        download_dir=tmp_path / "downloads",
        public_base_url="http://127.0.0.1:1",
    )
    files = {7: ServedFile(song, song.name)}

    async def lookup(job_id: int) -> ServedFile | None:
        return files.get(job_id)

    server = FileServer(settings, lookup, LinkSigner(SECRET))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(server: FileServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        yield client


def path_of(server: FileServer, job_id: int) -> str:
    return "/files/" + server.link_for(job_id).rpartition("/files/")[2]


async def test_a_link_serves_the_whole_file_with_its_name(
    server: FileServer, client: httpx.AsyncClient, song: Path
) -> None:
    assert server.link_for(7).startswith("http://127.0.0.1:1/files/")

    response = await client.get(path_of(server, 7))

    assert response.status_code == 200
    assert response.content == song.read_bytes()
    assert "filename*=UTF-8''%C3%93lafur%20-%20Song.mp3" in response.headers["content-disposition"]


async def test_a_range_request_gets_just_that_range(
    server: FileServer, client: httpx.AsyncClient, song: Path
) -> None:
    response = await client.get(path_of(server, 7), headers={"Range": "bytes=100-199"})

    assert response.status_code == 206
    assert response.content == song.read_bytes()[100:200]


async def test_a_tampered_link_is_forbidden(server: FileServer, client: httpx.AsyncClient) -> None:
    token = path_of(server, 7).rpartition("/")[2]
    forged = token.replace("7.", "8.", 1)

    response = await client.get(f"/files/{forged}")

    assert response.status_code == 403
    assert "not valid" in response.text


async def test_an_expired_link_is_gone(server: FileServer, client: httpx.AsyncClient) -> None:
    response = await client.get("/files/" + server.signer.sign(7, ttl_secs=-10))

    assert response.status_code == 410


async def test_a_link_to_a_job_without_a_file_is_not_found(
    server: FileServer, client: httpx.AsyncClient
) -> None:
    response = await client.get(path_of(server, 99))

    assert response.status_code == 404


async def test_healthz_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")

    assert response.status_code == 200


async def test_the_database_lookup_finds_only_completed_jobs_with_a_file(
    database: Database, song: Path
) -> None:
    async with database.session() as session:
        track = Track(
            spotify_id="t1",
            title="Song",
            artists=["A"],
            album="B",
            album_id="b",
            album_artist="A",
            duration_ms=1000,
            isrc=None,
            cover_url=None,
            copyright=None,
        )
        session.add(track)
        await session.flush()
        done = DownloadJob(
            track_id=track.id,
            quality="high",
            status=JobStatus.COMPLETED.value,
            output_path=str(song),
        )
        waiting = DownloadJob(track_id=track.id, quality="low", status=JobStatus.QUEUED.value)
        session.add_all([done, waiting])
        await session.flush()
        done_id, waiting_id = done.id, waiting.id
    lookup = job_file_lookup(database)

    found = await lookup(done_id)

    assert found == ServedFile(song, song.name)
    assert await lookup(waiting_id) is None
    assert await lookup(12345) is None


def picture(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.effect_noise(size, 90).convert("RGB").save(out, format="PNG")
    return out.getvalue()


def test_the_thumbnail_is_a_small_jpeg_of_the_embedded_cover(tmp_path: Path) -> None:
    path = tmp_path / "song.mp3"
    path.write_bytes(b"")
    tags = ID3()
    tags.add(APIC(encoding=3, mime="image/png", type=3, desc="Cover", data=picture((1400, 1000))))
    tags.save(path)

    thumbnail = cover_thumbnail(path)

    assert thumbnail is not None
    assert len(thumbnail) <= MAX_BYTES
    with Image.open(io.BytesIO(thumbnail)) as image:
        assert image.format == "JPEG"
        assert max(image.size) == MAX_SIDE_PX
        assert image.size == (320, 229)


def test_a_file_without_a_cover_has_no_thumbnail(tmp_path: Path) -> None:
    path = tmp_path / "song.mp3"
    path.write_bytes(b"")
    ID3().save(path)

    assert cover_thumbnail(path) is None
