"""`soundforge import` end to end: the real command, spotdl, yt-dlp and ffmpeg on stand-ins."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

import mutagen
import psutil
import pytest
from mutagen.flac import FLAC
from mutagen.id3 import ID3
from mutagen.mp3 import MP3

from tests.fixtures.cli import Soundforge
from tests.standins.audio import AudioSource
from tests.standins.spotify import Catalog

pytestmark = pytest.mark.e2e


def album_link(catalog: Catalog, name: str = "Night Drive", tracks: int = 3) -> tuple[str, list]:
    artist = catalog.add_artist("Ørjan & The Sines", ["synthwave"])
    album = catalog.add_album(name, artist, tracks=tracks)
    return f"https://open.spotify.com/album/{album.spotify_id}", catalog.album_tracks(album)


async def first_fetch(audio_source: AudioSource, track_id: str) -> None:
    """Wait until spotdl has asked the audio source for `track_id` (a guard, not a timing)."""
    for _ in range(600):
        if audio_source.audio_requests[track_id]:
            return
        await asyncio.sleep(0.1)
    pytest.fail("spotdl never asked the audio source")


async def test_a_track_becomes_a_tagged_mp3_with_its_cover(
    soundforge: Soundforge, spotify_catalog: Catalog
) -> None:
    # given a track on an album
    _, tracks = album_link(spotify_catalog, tracks=2)
    track = tracks[1]

    # when it is imported
    done = await soundforge.run(
        "import", f"https://open.spotify.com/intl-de/track/{track.spotify_id}?si=abc", "--json"
    )

    # then one job completed and its file is tagged like the Spotify track
    assert done.returncode == 0, done.stderr
    [record] = done.records
    assert record["status"] == "completed" and record["spotify_id"] == track.spotify_id
    path = Path(record["output_path"])
    assert path.is_file() and path.stat().st_size == record["file_size"]
    assert path.parent.parent == soundforge.download_dir
    tags = ID3(path)
    assert tags["TIT2"].text == ["Night Drive 2"]
    assert tags["TPE1"].text[0].startswith("Ørjan & The Sines")
    assert tags["TALB"].text == ["Night Drive"]
    assert tags.getall("APIC"), "the cover is embedded"
    assert 300_000 <= MP3(path).info.bitrate <= 330_000


async def test_an_album_at_low_quality_gives_every_track_at_128k(
    soundforge: Soundforge, spotify_catalog: Catalog
) -> None:
    link, tracks = album_link(spotify_catalog, tracks=3)

    done = await soundforge.run("import", link, "--quality", "low", "--json")

    assert done.returncode == 0, done.stderr
    assert sorted(r["spotify_id"] for r in done.records) == sorted(t.spotify_id for t in tracks)
    for record in done.records:
        audio = MP3(record["output_path"])
        assert 120_000 <= audio.info.bitrate <= 136_000
        assert record["output_path"].endswith(".128k.mp3")


async def test_lossless_gives_flac_with_a_picture(
    soundforge: Soundforge, spotify_catalog: Catalog
) -> None:
    _, tracks = album_link(spotify_catalog, tracks=1)

    done = await soundforge.run(
        "import", f"spotify:track:{tracks[0].spotify_id}", "--quality", "lossless", "--json"
    )

    assert done.returncode == 0, done.stderr
    flac = FLAC(done.records[0]["output_path"])
    assert flac["title"] == ["Night Drive 1"]
    assert flac.pictures


async def test_a_playlist_skips_what_cannot_be_downloaded_and_says_so(
    soundforge: Soundforge, spotify_catalog: Catalog
) -> None:
    from tests.standins.spotify import Entry

    _, tracks = album_link(spotify_catalog, tracks=2)
    playlist = spotify_catalog.add_playlist(
        "Mixed / bag ✓", [tracks[0], Entry.local(), Entry.episode(), Entry.null(), tracks[1]]
    )

    done = await soundforge.run(
        "import", f"https://open.spotify.com/playlist/{playlist.spotify_id}", "--json"
    )

    assert done.returncode == 0, done.stderr
    assert len(done.records) == 2
    assert "Mixed / bag ✓" in done.stderr
    assert "local file" in done.stderr and "podcast episode" in done.stderr


async def test_a_second_import_reuses_every_file_without_running_spotdl(
    soundforge: Soundforge, spotify_catalog: Catalog, audio_source: AudioSource
) -> None:
    link, _tracks = album_link(spotify_catalog, tracks=3)
    first = await soundforge.run("import", link, "--json")
    assert first.returncode == 0, first.stderr
    fetched = sum(audio_source.audio_requests.values())

    # when the same album is imported again
    again = await soundforge.run("import", link, "--json")

    # then the same files come back and the audio source was not asked again
    assert again.returncode == 0, again.stderr
    assert sorted(r["output_path"] for r in again.records) == sorted(
        r["output_path"] for r in first.records
    )
    assert sum(audio_source.audio_requests.values()) == fetched
    assert "3 already downloaded" in again.stderr
    rows = sqlite3.connect(soundforge.database_path).execute("select count(*) from tracks")
    assert rows.fetchone()[0] == 3


async def test_a_track_the_source_lacks_fails_alone(
    soundforge: Soundforge, spotify_catalog: Catalog, audio_source: AudioSource
) -> None:
    link, tracks = album_link(spotify_catalog, tracks=3)
    audio_source.set_missing(tracks[1].spotify_id)

    done = await soundforge.run("import", link, "--json")

    # then the exit status says a job failed, with the reason beside that track only
    assert done.returncode == 1
    by_id = {r["spotify_id"]: r for r in done.records}
    assert by_id[tracks[1].spotify_id]["status"] == "failed"
    assert by_id[tracks[1].spotify_id]["error"] == "No audio source has this track."
    assert by_id[tracks[0].spotify_id]["status"] == "completed"
    assert by_id[tracks[2].spotify_id]["status"] == "completed"


async def test_a_flaky_source_is_retried_to_success(
    soundforge: Soundforge, spotify_catalog: Catalog, audio_source: AudioSource
) -> None:
    _, tracks = album_link(spotify_catalog, tracks=1)
    audio_source.set_flaky(tracks[0].spotify_id, failures=1)

    done = await soundforge.run("import", f"spotify:track:{tracks[0].spotify_id}", "--json")

    assert done.returncode == 0, done.stderr
    assert done.records[0]["status"] == "completed"
    attempts = sqlite3.connect(soundforge.database_path).execute(
        "select attempts from download_jobs"
    )
    assert attempts.fetchone()[0] == 2


async def test_missing_spotdl_is_one_clear_sentence(
    soundforge: Soundforge, spotify_catalog: Catalog
) -> None:
    _, tracks = album_link(spotify_catalog, tracks=1)

    done = await soundforge.run(
        "import",
        f"spotify:track:{tracks[0].spotify_id}",
        "--json",
        SPOTDL_COMMAND="/nonexistent/spotdl",
    )

    assert done.returncode == 1
    assert done.records[0]["error"] == (
        "spotdl is not installed on the server; the operator should run `soundforge doctor`."
    )
    assert "Traceback" not in done.stderr


async def test_the_web_api_refusal_falls_back_to_spotdl_metadata(
    soundforge: Soundforge, spotify_catalog: Catalog
) -> None:
    _, tracks = album_link(spotify_catalog, tracks=2)
    editorial = spotify_catalog.add_editorial_playlist("Today's Loopback Hits", tracks)
    link = f"https://open.spotify.com/playlist/{editorial.spotify_id}"

    refused = await soundforge.run("import", link, "--json")
    assert refused.returncode == 1
    assert "editorial playlist" in refused.stderr

    done = await soundforge.run("import", link, "--json", METADATA_FALLBACK="spotdl")
    assert done.returncode == 0, done.stderr
    assert len(done.records) == 2
    assert "metadata from spotdl" in done.stderr


@pytest.mark.parametrize(
    ("args", "env", "sentence"),
    [
        (["import", "https://example.com/not-spotify"], {}, "not a Spotify link"),
        (
            ["import", "https://open.spotify.com/episode/4rOoJ6Egrf8K2IrywzwOMk"],
            {},
            "Podcasts are not supported",
        ),
        (
            ["import", "spotify:track:4uLU6hMCjMI75M1A2tKUQC"],
            {"SPOTIFY_CLIENT_ID": ""},
            "SPOTIFY_CLIENT_ID",
        ),
        (
            ["import", "spotify:track:4uLU6hMCjMI75M1A2tKUQC"],
            {"REDIS_URL": "redis://127.0.0.1:1/0"},
            "Redis could not be reached",
        ),
        (
            ["import", "spotify:track:4uLU6hMCjMI75M1A2tKUQC"],
            {"DATABASE_URL": "sqlite+aiosqlite:////proc/no/such/dir/x.db"},
            "database could not be opened",
        ),
    ],
)
async def test_bad_input_gets_one_sentence_and_status_1(
    soundforge: Soundforge, args: list[str], env: dict[str, str], sentence: str
) -> None:
    done = await soundforge.run(*args, **env)

    assert done.returncode == 1
    assert sentence in done.stderr
    assert "Traceback" not in done.stderr


async def test_a_crash_mid_download_resumes_on_the_next_start(
    soundforge: Soundforge, spotify_catalog: Catalog, audio_source: AudioSource
) -> None:
    link, tracks = album_link(spotify_catalog, tracks=2)
    audio_source.set_hanging(tracks[0].spotify_id)

    # given an import killed while spotdl is fetching
    process = await soundforge.start("import", link, "--json")
    await first_fetch(audio_source, tracks[0].spotify_id)
    children = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signal.SIGKILL)
    await process.wait()
    for child in children:
        if child.is_running():
            child.kill()

    # when it is started again with the source healthy
    audio_source.clear(tracks[0].spotify_id)
    done = await soundforge.run("import", link, "--json")

    # then both tracks finish, each file whole and readable
    assert done.returncode == 0, done.stderr
    assert {r["status"] for r in done.records} == {"completed"}
    for record in done.records:
        assert mutagen.File(record["output_path"]) is not None
    # and no half-written file sits where finished files live (spotdl's work is under _runs)
    placed = [
        p
        for p in soundforge.download_dir.rglob("*")
        if p.is_file() and "_runs" not in p.relative_to(soundforge.download_dir).parts
    ]
    assert sorted(map(str, placed)) == sorted(r["output_path"] for r in done.records)


async def test_scaled_mode_runs_jobs_on_a_separate_worker(
    soundforge: Soundforge, spotify_catalog: Catalog, redis_url: str
) -> None:
    link, _tracks = album_link(spotify_catalog, tracks=2)
    worker = await soundforge.start("worker", REDIS_URL=redis_url)
    try:
        done = await soundforge.run("import", link, "--json", REDIS_URL=redis_url)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, worker_err = await asyncio.wait_for(worker.communicate(), 60)

    assert done.returncode == 0, done.stderr + worker_err.decode()
    assert len(done.records) == 2
    assert "Download worker" in worker_err.decode()


async def test_ctrl_c_mid_download_gives_the_jobs_back_quietly(
    soundforge: Soundforge, spotify_catalog: Catalog, audio_source: AudioSource
) -> None:
    link, tracks = album_link(spotify_catalog, tracks=2)
    audio_source.set_hanging(tracks[0].spotify_id)
    process = await soundforge.start("import", link, "--json")
    await first_fetch(audio_source, tracks[0].spotify_id)

    # when the person presses Ctrl-C
    process.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(process.communicate(), 60)

    # then it stops at once, says nothing alarming, and leaves the jobs to resume
    assert process.returncode == 130
    assert "Traceback" not in err.decode() and "ERROR" not in err.decode()
    states = sqlite3.connect(soundforge.database_path).execute("select status from download_jobs")
    assert {row[0] for row in states} == {"queued"}
