"""The spotdl runner with the real spotdl, yt-dlp, ffmpeg and mutagen, through the wrapper.

The audio comes from the loopback audio source; failures spotdl cannot be made to show for
real (a hang, a full disk, broken files) come from tests/standins/fake_spotdl.py.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from mutagen.flac import FLAC
from mutagen.id3 import ID3
from mutagen.mp3 import MP3

from config.settings import Quality, Settings
from core.errors import (
    DiskFull,
    DownloadFailed,
    DownloadTimeout,
    FfmpegMissing,
    SourceNotFound,
    SourceRateLimited,
    SourceSignInRequired,
    SpotdlMissing,
)
from core.types import TrackMeta
from storage.layout import final_path
from tests.fixtures.audio import fake_spotdl_command, make_track
from tests.standins.audio import AudioSource
from workers.runner import RUNS_DIR_NAME, RunItem, RunOutcome, SpotdlRunner

SettingsFactory = Callable[..., Settings]


class ProgressLog:
    """Records every progress call, per job."""

    def __init__(self) -> None:
        self.calls: dict[int, list[tuple[int, str]]] = defaultdict(list)
        self.seen = asyncio.Event()

    async def __call__(self, job_id: int, percent: int, stage: str) -> None:
        self.calls[job_id].append((percent, stage))
        self.seen.set()


def items_for(settings: Settings, metas: list[TrackMeta], quality: Quality) -> list[RunItem]:
    return [
        RunItem(
            job_id=index + 1,
            meta=meta,
            final_path=final_path(
                settings.download_dir, meta.spotify_id, meta.artist, meta.title, quality
            ),
        )
        for index, meta in enumerate(metas)
    ]


def assert_ok(outcome: RunOutcome) -> Path:
    assert outcome.error is None, outcome.error and outcome.error.detail
    assert outcome.path is not None
    return outcome.path


def no_run_folders_left(settings: Settings) -> bool:
    runs = settings.download_dir.resolve() / RUNS_DIR_NAME
    return not runs.exists() or not any(runs.iterdir())


async def test_batch_at_high_quality_is_tagged_320k_mp3s_with_progress_per_song(
    audio_source: AudioSource, spotdl_command: str, runner_settings: SettingsFactory
) -> None:
    # Given three songs the source has
    settings = runner_settings(spotdl_command=spotdl_command)
    metas = [
        make_track(f"hiQ{n}aaaaaaaaaaaaaaaaaa", f"Song {n}", n, audio_source.cover_url)
        for n in (1, 2, 3)
    ]
    items = items_for(settings, metas, Quality.HIGH)
    progress = ProgressLog()

    # When they are run as one batch at high quality
    outcomes = await SpotdlRunner(settings).run(items, Quality.HIGH, progress)

    # Then each is a tagged 320k MP3 with a cover at its final place
    assert sorted(outcomes) == [1, 2, 3]
    for item in items:
        path = assert_ok(outcomes[item.job_id])
        assert path == item.final_path
        assert path.name == f"Tone Band - {item.meta.title}.mp3"
        assert outcomes[item.job_id].file_size == path.stat().st_size > 0
        tags = ID3(path)
        assert tags["TIT2"].text == [item.meta.title]
        assert tags["TPE1"].text == ["Tone Band/Guest Sine"]
        assert tags["TALB"].text == ["Sines and Squares"]
        assert tags["TRCK"].text == [f"{item.meta.track_number}/12"]
        assert tags.getall("APIC") and tags.getall("APIC")[0].data
        assert 310_000 <= MP3(path).info.bitrate <= 330_000
    # and every song reported its stages, in order
    for item in items:
        stages = [stage for _, stage in progress.calls[item.job_id]]
        percents = [percent for percent, _ in progress.calls[item.job_id]]
        assert "downloading" in stages and stages[-1] == "finishing"
        assert percents == sorted(percents)
    assert no_run_folders_left(settings)


async def test_low_quality_is_a_128k_mp3_even_when_the_progress_display_breaks(
    audio_source: AudioSource, spotdl_command: str, runner_settings: SettingsFactory
) -> None:
    settings = runner_settings(spotdl_command=spotdl_command)
    items = items_for(settings, [make_track("loQaaaaaaaaaaaaaaaaaaa", "Quiet")], Quality.LOW)
    calls: list[int] = []

    async def broken_display(job_id: int, percent: int, stage: str) -> None:
        calls.append(percent)
        raise RuntimeError("chat unreachable")

    outcomes = await SpotdlRunner(settings).run(items, Quality.LOW, broken_display)

    assert len(calls) > 1

    path = assert_ok(outcomes[1])
    assert path.name == "Tone Band - Quiet.128k.mp3"
    assert 120_000 <= MP3(path).info.bitrate <= 136_000


async def test_lossless_is_a_flac_with_its_cover(
    audio_source: AudioSource, spotdl_command: str, runner_settings: SettingsFactory
) -> None:
    settings = runner_settings(spotdl_command=spotdl_command)
    meta = make_track("flacQaaaaaaaaaaaaaaaaa", "Pure", 4, audio_source.cover_url)
    items = items_for(settings, [meta], Quality.LOSSLESS)

    outcomes = await SpotdlRunner(settings).run(items, Quality.LOSSLESS, ProgressLog())

    path = assert_ok(outcomes[1])
    assert path.suffix == ".flac"
    flac = FLAC(path)
    assert flac["title"] == ["Pure"]
    assert flac["tracknumber"] == ["4"]
    assert flac.pictures and flac.pictures[0].data


async def test_song_missing_on_the_source_fails_alone_as_not_found(
    audio_source: AudioSource, spotdl_command: str, runner_settings: SettingsFactory
) -> None:
    # Given a batch where the source lacks the middle song
    settings = runner_settings(spotdl_command=spotdl_command)
    metas = [make_track(f"misQ{n}aaaaaaaaaaaaaaaaa", f"Song {n}", n) for n in (1, 2, 3)]
    audio_source.set_missing(metas[1].spotify_id)
    items = items_for(settings, metas, Quality.HIGH)

    # When it runs
    outcomes = await SpotdlRunner(settings).run(items, Quality.HIGH, ProgressLog())

    # Then only that song fails, permanently, with the not-found sentence
    assert_ok(outcomes[1])
    assert_ok(outcomes[3])
    error = outcomes[2].error
    assert isinstance(error, SourceNotFound) and error.permanent
    assert error.user_message == "No audio source has this track."
    assert not items[1].final_path.exists()


async def test_source_faults_are_classified_per_song_and_a_flaky_one_succeeds_later(
    audio_source: AudioSource, spotdl_command: str, runner_settings: SettingsFactory
) -> None:
    # Given a good song beside a flaky, a rate-limited and a sign-in song
    settings = runner_settings(spotdl_command=spotdl_command)
    metas = [
        make_track("fltQgoodaaaaaaaaaaaaaa", "Fine", 1),
        make_track("fltQflakyaaaaaaaaaaaaa", "Wobbly", 2),
        make_track("fltQlimitaaaaaaaaaaaaa", "Busy", 3),
        make_track("fltQsigninaaaaaaaaaaaa", "Locked", 4),
    ]
    audio_source.set_flaky(metas[1].spotify_id, failures=1)
    audio_source.set_rate_limited(metas[2].spotify_id, failures=100)
    audio_source.set_sign_in(metas[3].spotify_id)
    items = items_for(settings, metas, Quality.HIGH)
    runner = SpotdlRunner(settings)

    # When the batch runs
    outcomes = await runner.run(items, Quality.HIGH, ProgressLog())

    # Then each fault has its own class: transient ones retryable, sign-in not
    assert_ok(outcomes[1])
    flaky, limited, sign_in = outcomes[2].error, outcomes[3].error, outcomes[4].error
    assert isinstance(flaky, DownloadFailed) and not flaky.permanent
    assert isinstance(limited, SourceRateLimited) and not limited.permanent
    assert isinstance(sign_in, SourceSignInRequired) and sign_in.permanent
    assert "cookies" in sign_in.user_message

    # and the flaky song, run again, succeeds
    again = await runner.run([items[1]], Quality.HIGH, ProgressLog())
    assert_ok(again[2])


async def test_parallel_runs_of_one_track_at_two_qualities_do_not_collide(
    audio_source: AudioSource, spotdl_command: str, runner_settings: SettingsFactory
) -> None:
    settings = runner_settings(spotdl_command=spotdl_command)
    meta = make_track("parQaaaaaaaaaaaaaaaaaa", "Twice")
    high = items_for(settings, [meta], Quality.HIGH)
    low = items_for(settings, [meta], Quality.LOW)
    runner = SpotdlRunner(settings)

    high_outcomes, low_outcomes = await asyncio.gather(
        runner.run(high, Quality.HIGH, ProgressLog()),
        runner.run(low, Quality.LOW, ProgressLog()),
    )

    high_path, low_path = assert_ok(high_outcomes[1]), assert_ok(low_outcomes[1])
    assert high_path != low_path and high_path.parent == low_path.parent
    assert 310_000 <= MP3(high_path).info.bitrate <= 330_000
    assert 120_000 <= MP3(low_path).info.bitrate <= 136_000
    assert no_run_folders_left(settings)


async def test_a_download_folder_under_a_dotted_folder_still_gets_its_file(
    audio_source: AudioSource,
    spotdl_command: str,
    runner_settings: SettingsFactory,
    tmp_path: Path,
) -> None:
    # spotdl strips leading dots from --output folders; the runner must not be fooled by it
    settings = runner_settings(
        spotdl_command=spotdl_command, download_dir=tmp_path / ".local" / "downloads"
    )
    items = items_for(settings, [make_track("dotQaaaaaaaaaaaaaaaaaa", "Hidden")], Quality.LOW)

    outcomes = await SpotdlRunner(settings).run(items, Quality.LOW, ProgressLog())

    assert assert_ok(outcomes[1]) == items[0].final_path
    assert not (tmp_path / "local").exists()


async def test_missing_spotdl_command_fails_every_song_as_spotdl_missing(
    runner_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = runner_settings(spotdl_command=str(tmp_path / "no-such-spotdl"))
    metas = [make_track(f"nospQ{n}aaaaaaaaaaaaaaaa", f"Song {n}") for n in (1, 2)]

    outcomes = await SpotdlRunner(settings).run(
        items_for(settings, metas, Quality.HIGH), Quality.HIGH, ProgressLog()
    )

    for outcome in outcomes.values():
        assert isinstance(outcome.error, SpotdlMissing) and outcome.error.permanent
        assert "soundforge doctor" in outcome.error.user_message


async def test_missing_ffmpeg_fails_every_song_as_ffmpeg_missing(
    audio_source: AudioSource,
    spotdl_command: str,
    runner_settings: SettingsFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Given a PATH without ffmpeg (the runner still puts the virtualenv's bin first)
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    settings = runner_settings(spotdl_command=spotdl_command)
    items = items_for(settings, [make_track("ffmQaaaaaaaaaaaaaaaaaa", "Silent")], Quality.HIGH)

    outcomes = await SpotdlRunner(settings).run(items, Quality.HIGH, ProgressLog())

    assert isinstance(outcomes[1].error, FfmpegMissing)


async def test_disk_below_the_free_space_threshold_fails_the_batch_before_spotdl(
    audio_source: AudioSource, spotdl_command: str, runner_settings: SettingsFactory
) -> None:
    settings = runner_settings(spotdl_command=spotdl_command, download_min_free_mb=10**12)
    metas = [make_track(f"dskQ{n}aaaaaaaaaaaaaaaaa", f"Song {n}") for n in (1, 2)]

    outcomes = await SpotdlRunner(settings).run(
        items_for(settings, metas, Quality.HIGH), Quality.HIGH, ProgressLog()
    )

    for outcome in outcomes.values():
        assert isinstance(outcome.error, DiskFull) and outcome.error.permanent
        assert (
            outcome.error.user_message
            == "The server's disk is full; the operator has to free space."
        )
    assert sum(audio_source.lookups.values()) == 0


async def test_no_space_left_in_spotdl_output_is_disk_full(
    runner_settings: SettingsFactory,
) -> None:
    settings = runner_settings(spotdl_command=fake_spotdl_command("enospc"))
    metas = [make_track(f"nospcQ{n}aaaaaaaaaaaaaaa", f"Song {n}") for n in (1, 2)]

    outcomes = await SpotdlRunner(settings).run(
        items_for(settings, metas, Quality.HIGH), Quality.HIGH, ProgressLog()
    )

    assert all(isinstance(outcome.error, DiskFull) for outcome in outcomes.values())


async def test_empty_untagged_or_garbage_files_are_failures_not_songs(
    runner_settings: SettingsFactory,
) -> None:
    # Given a spotdl that exits 0 leaving an empty, an untagged and a garbage file
    settings = runner_settings(spotdl_command=fake_spotdl_command("bad-files"))
    metas = [make_track(f"badQ{n}aaaaaaaaaaaaaaaaa", f"Song {n}") for n in (1, 2, 3)]
    items = items_for(settings, metas, Quality.HIGH)

    outcomes = await SpotdlRunner(settings).run(items, Quality.HIGH, ProgressLog())

    # Then none of them counts as downloaded, and nothing is left at the final places
    for item in items:
        error = outcomes[item.job_id].error
        assert isinstance(error, DownloadFailed) and not error.permanent
        assert not item.final_path.exists()
    assert "empty" in outcomes[1].error.detail  # type: ignore[union-attr]
    assert "no tags" in outcomes[2].error.detail  # type: ignore[union-attr]


def _pids(pid_file: Path) -> list[int]:
    return [int(pid) for pid in pid_file.read_text().split()]


def _gone(pids: list[int]) -> bool:
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


async def test_silent_run_is_killed_by_the_inactivity_limit_with_its_process_group(
    runner_settings: SettingsFactory, tmp_path: Path
) -> None:
    # Given a spotdl that goes silent, with a child that ignores SIGTERM
    pid_file = tmp_path / "pids"
    settings = runner_settings(
        spotdl_command=fake_spotdl_command("hang", "--pid-file", str(pid_file)),
        download_inactivity_secs=1.0,
    )
    items = items_for(settings, [make_track("hangQaaaaaaaaaaaaaaaaa", "Stuck")], Quality.HIGH)

    # When it runs
    outcomes = await SpotdlRunner(settings).run(items, Quality.HIGH, ProgressLog())

    # Then its song timed out (retryable) and no process of the group survives
    error = outcomes[1].error
    assert isinstance(error, DownloadTimeout) and not error.permanent
    assert "inactivity" in error.detail
    psutil.wait_procs(_live(_pids(pid_file)), timeout=10)
    assert _gone(_pids(pid_file))
    assert no_run_folders_left(settings)


async def test_busy_run_is_killed_by_the_wall_clock_limit(
    runner_settings: SettingsFactory,
) -> None:
    settings = runner_settings(
        spotdl_command=fake_spotdl_command("chatter"),
        download_timeout_secs=2.0,
        download_inactivity_secs=60.0,
    )
    items = items_for(settings, [make_track("wallQaaaaaaaaaaaaaaaaa", "Endless")], Quality.HIGH)

    outcomes = await SpotdlRunner(settings).run(items, Quality.HIGH, ProgressLog())

    error = outcomes[1].error
    assert isinstance(error, DownloadTimeout) and "wall-clock" in error.detail


async def test_cancelling_the_task_kills_the_process_group_and_removes_the_run(
    runner_settings: SettingsFactory, tmp_path: Path
) -> None:
    # Given a run under way (its first progress line has arrived)
    pid_file = tmp_path / "pids"
    settings = runner_settings(
        spotdl_command=fake_spotdl_command("hang", "--pid-file", str(pid_file))
    )
    items = items_for(settings, [make_track("cnclQaaaaaaaaaaaaaaaaa", "Halted")], Quality.HIGH)
    progress = ProgressLog()
    task = asyncio.create_task(SpotdlRunner(settings).run(items, Quality.HIGH, progress))
    await progress.seen.wait()

    # When its task is cancelled
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # Then the whole group is gone and so is the run folder
    psutil.wait_procs(_live(_pids(pid_file)), timeout=10)
    assert _gone(_pids(pid_file))
    assert no_run_folders_left(settings)
    assert not items[0].final_path.exists()


def _live(pids: list[int]) -> list[psutil.Process]:
    processes = []
    for pid in pids:
        try:
            processes.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    return processes
