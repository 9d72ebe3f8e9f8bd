"""Reading spotdl's output: lines as spotdl 4.6 prints them with --simple-tui at DEBUG."""

from __future__ import annotations

from core.errors import (
    DiskFull,
    FfmpegMissing,
    SourceNotFound,
    SourceRateLimited,
    SourceSignInRequired,
    SpotdlMissing,
)
from workers.spotdl_output import SongTrace, SpotdlOutput, batch_failure, classify

PAD = " " * 300
INDENT = " " * 20
PROGRESS = "progress_handler.py:398"


def line(time: str, level: str, thread: str, message: str, source: str = PROGRESS) -> str:
    """A first line of a record as rich prints it at DEBUG with COLUMNS=1000."""
    return f"[{time}] {level:<8} {thread} - {message}{PAD}{source}"


def song(song_id: str, title: str) -> SongTrace:
    return SongTrace(
        song_id=song_id,
        url=f"https://open.spotify.com/track/{song_id}",
        display_name=f"Tone Band - {title}",
    )


def feed(output: SpotdlOutput, lines: list[str]) -> list[tuple[str, int, str]]:
    seen: list[tuple[str, int, str]] = []
    for line in lines:
        output.feed("stdout", line + "\n", lambda s, p, t: seen.append((s.song_id, p, t)))
    output.finish()
    return seen


def test_progress_lines_move_each_song_through_its_stages() -> None:
    one, ten = song("id1", "Song 1"), song("id10", "Song 10")
    output = SpotdlOutput([one, ten])

    seen = feed(
        output,
        [
            line("15:41:49", "INFO", "MainThread", "Tone Band - Song 1: Getting audio meta"),
            line("15:41:50", "INFO", "asyncio_0", "Tone Band - Song 10: Downloading"),
            line("15:41:50", "INFO", "asyncio_1", "Tone Band - Song 1: Downloading"),
            line("15:41:52", "INFO", "MainThread", "Tone Band - Song 1: Embedding metadata"),
            line("15:41:52", "INFO", "MainThread", "Tone Band - Song 1: Done"),
        ],
    )

    assert seen == [
        ("id1", 40, "fetching"),
        ("id10", 70, "downloading"),
        ("id1", 70, "downloading"),
        ("id1", 95, "tagging"),
        ("id1", 99, "finishing"),
    ]
    assert one.done and not ten.done


def test_a_traceback_is_the_evidence_of_the_song_it_names_through_its_address() -> None:
    good, flaky = song("goodid", "Fine"), song("flakyid", "Wobbly")
    output = SpotdlOutput([good, flaky])
    address = "http://127.0.0.1:1/audio/x.opus"
    feed(
        output,
        [
            line(
                "15:41:50",
                "DEBUG",
                "MainThread",
                f"Downloading Tone Band - Wobbly using {address}",
                "downloader.py:716",
            ),
            line("15:41:50", "ERROR", "MainThread", "Traceback (most recent call last):"),
            f"{INDENT}yt_dlp.networking.exceptions.HTTPError: HTTP Error 429: Too Many Requests",
            f"{INDENT}AudioProviderError: YT-DLP download error - {address}",
            line("15:41:52", "INFO", "MainThread", "Tone Band - Fine: Done"),
        ],
    )
    output.read_errors_file(
        "2026-12-04-15-41-55\n"
        "https://open.spotify.com/track/flakyid - AudioProviderError: YT-DLP download error - "
        "http://127.0.0.1:1/audio/x.opus\n"
    )

    assert isinstance(classify(flaky, output.evidence(flaky)), SourceRateLimited)
    assert classify(good, output.evidence(good)) is None
    assert good.errors_line is None


def test_each_failure_shows_its_class() -> None:
    subject = song("id", "Any")
    cases = {
        "LookupError: No results found for song: Tone Band - Any": SourceNotFound,
        "ERROR: [youtube] abc: Sign in to confirm you’re not a bot. Use --cookies": (
            SourceSignInRequired
        ),
        "ERROR: unable to download video data: HTTP Error 429: Too Many Requests": (
            SourceRateLimited
        ),
        "OSError: [Errno 28] No space left on device": DiskFull,
        "FFmpegError: FFmpeg is not installed. Please run `spotdl --download-ffmpeg`": (
            FfmpegMissing
        ),
    }
    for text, error_class in cases.items():
        error = classify(subject, text)
        assert isinstance(error, error_class), text
        assert error.user_message


def test_a_passing_fault_has_no_class_of_its_own() -> None:
    text = "ERROR: [generic] x: Unable to download webpage: HTTP Error 503: Service Unavailable"

    assert classify(song("id", "Any"), text) is None


def test_run_wide_failures_are_found_in_the_whole_output() -> None:
    assert isinstance(batch_failure("/venv/bin/python: No module named spotdl"), SpotdlMissing)
    assert isinstance(batch_failure("ffmpeg is not installed"), FfmpegMissing)
    assert batch_failure("LookupError: No results found for song: A - B") is None


def test_a_title_that_reads_like_a_fault_does_not_decide_the_class() -> None:
    busy = song("busyid", "Too Many Requests")
    output = SpotdlOutput([busy])
    feed(output, [line("15:41:50", "INFO", "MainThread", "Tone Band - Too Many Requests: Done")])
    output.read_errors_file(
        "https://open.spotify.com/track/busyid - MetadataError: Failed to embed metadata\n"
    )

    assert classify(busy, output.evidence(busy)) is None
