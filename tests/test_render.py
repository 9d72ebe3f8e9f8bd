"""The chat texts: what was found, a track's progress, an album's counts, /status."""

from __future__ import annotations

from bot.render import (
    progress_bar,
    render_found,
    render_link_delivery,
    render_progress,
    render_status,
)
from config.settings import Quality
from core.service import JobView, RequestView
from core.types import (
    JobStatus,
    LinkKind,
    MetadataSource,
    SkipReason,
    SpotifyLink,
    TrackList,
    TrackMeta,
)


def meta(n: int = 1, title: str = "Song") -> TrackMeta:
    return TrackMeta(
        spotify_id=f"t{n}",
        title=title,
        artists=["Artist", "Guest"],
        album="The Album",
        album_id="a1",
        album_artist="Artist",
        duration_ms=187_400,
    )


def job(n: int, status: JobStatus, progress: int = 0, message: str = "") -> JobView:
    return JobView(
        job_id=n,
        position=n,
        title=f"Song {n}",
        artists=("Artist",),
        status=status,
        progress=progress,
        message=message,
        output_path=None,
        file_size=None,
        error=message if status is JobStatus.FAILED else None,
        spotify_id=f"t{n}",
        duration_ms=180_000,
    )


def view(kind: str, jobs: list[JobView], name: str = "The Album", status: str = "open"):
    return RequestView(
        request_id=1,
        platform="fake",
        user_id="u",
        chat_id="c",
        reply_message_id="m",
        kind=kind,
        name=name,
        link="https://open.spotify.com/album/a1",
        quality="high",
        metadata_source="web_api",
        skipped={},
        capped_at=None,
        status=status,
        jobs=jobs,
    )


def test_progress_bar_fills_with_the_percentage() -> None:
    assert progress_bar(0) == "░░░░░░░░░░"
    assert progress_bar(40) == "████░░░░░░"
    assert progress_bar(100) == "██████████"
    assert progress_bar(250) == "██████████"


def test_a_found_track_shows_artist_title_album_and_length() -> None:
    tracklist = TrackList(SpotifyLink(LinkKind.TRACK, "t1"), "Song", [meta()])

    text = render_found(tracklist, Quality.HIGH)

    assert text.splitlines() == [
        "Found: Artist, Guest – Song",
        "Album: The Album · 3:07",
        "Quality: High (320 kbit/s)",
    ]


def test_a_found_playlist_shows_its_count_what_was_skipped_and_the_source() -> None:
    tracklist = TrackList(
        SpotifyLink(LinkKind.PLAYLIST, "p1"),
        "Road trip",
        [meta(n) for n in range(12)],
        source=MetadataSource.SPOTDL,
        owner="ann",
    )
    tracklist.skip(SkipReason.LOCAL_FILE, 2)
    tracklist.skip(SkipReason.EPISODE)

    text = render_found(tracklist, Quality.LOSSLESS)

    assert "Found the playlist Road trip by ann: 12 tracks" in text
    assert "Skipped 3: 2 local file, 1 podcast episode." in text
    assert "spotdl read it instead" in text
    assert "Lossless (FLAC)" in text


def test_a_capped_request_says_so() -> None:
    tracklist = TrackList(
        SpotifyLink(LinkKind.ARTIST, "ar1"),
        "Artist",
        [meta(n) for n in range(3)],
        capped_at=3,
        total_available=40,
    )

    assert "Only the first 3 of 40 tracks" in render_found(tracklist, Quality.HIGH)


def test_a_downloading_track_shows_stage_bar_and_percentage() -> None:
    text = render_progress(view("track", [job(1, JobStatus.DOWNLOADING, 40, "downloading")]))

    assert text.splitlines() == ["Artist – Song 1", "Downloading", "████░░░░░░ 40%"]


def test_a_failed_track_shows_the_reason_sentence() -> None:
    failed = job(1, JobStatus.FAILED, message="No audio source has this track.")

    text = render_progress(view("track", [failed]))

    assert text.splitlines()[-1] == "Failed: No audio source has this track."


def test_an_album_shows_counts_and_the_current_track() -> None:
    jobs = [job(n, JobStatus.COMPLETED) for n in range(7)]
    jobs.append(job(7, JobStatus.FAILED, message="No audio source has this track."))
    jobs.append(job(8, JobStatus.DOWNLOADING, 60))
    jobs.extend(job(n, JobStatus.QUEUED) for n in range(9, 12))

    text = render_progress(view("album", jobs))

    assert text.splitlines()[:2] == ["The Album", "7/12 done, 1 failed"]
    assert "Now: Artist – Song 8" in text
    assert "60%" in text


def test_a_finished_album_lists_what_failed() -> None:
    jobs = [job(1, JobStatus.COMPLETED), job(2, JobStatus.FAILED, message="Source gone.")]

    text = render_progress(view("album", jobs))

    assert "1/2 done, 1 failed" in text
    assert "✗ Artist – Song 2: Source gone." in text


def test_status_lists_running_requests_with_the_queue_ahead_then_recent_ones() -> None:
    running = view("track", [job(1, JobStatus.DOWNLOADING, 30)])
    done = view("album", [job(2, JobStatus.COMPLETED)], status="finished")
    done.request_id = 2

    text = render_status([running, done], {1: 4})

    assert text.splitlines() == [
        "Running:",
        "• Artist – Song 1: downloading 30%, 4 ahead in the queue",
        "Recent:",
        "• The Album: 1/1 done",
    ]


def test_status_with_nothing_says_how_to_start() -> None:
    assert "send me a Spotify link" in render_status([], {})


def test_a_link_delivery_names_the_size_and_how_long_it_works() -> None:
    text = render_link_delivery("Artist – Song", "http://h/files/x", 63 * 1024 * 1024, 86_400)

    assert "63.0 MB" in text
    assert "24 h" in text
    assert text.endswith("http://h/files/x")
