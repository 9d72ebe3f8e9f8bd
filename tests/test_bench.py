"""The import benchmark: its table, and one small run of every row end to end."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from bench.report import Report, Row, Verdict, ratio

ROOT = Path(__file__).resolve().parents[1]


def test_the_table_lines_up_and_shows_a_dash_for_what_was_not_measured() -> None:
    # given a report with a compared row and an informational one
    report = Report(header=["machine   test"])
    report.add(
        Row(
            "1 album", "wall time", "41.0 s", "40.0 s", ratio(41.0, 40.0), "<= 1.0", Verdict.MISSED
        ),
        Row("2 again", "spotdl runs", "0"),
    )
    report.note("a note")

    # when it is rendered
    lines = report.render().splitlines()

    # then the header, the column names, one line per row and the note appear in order
    assert lines[0] == "machine   test"
    assert lines[2].split() == [
        "row",
        "measure",
        "SoundForge",
        "reference",
        "ratio",
        "target",
        "verdict",
    ]
    assert "1.02" in lines[4] and lines[4].endswith("missed")
    assert lines[5].split()[-5:] == ["0", "-", "-", "-", "-"]
    assert lines[-1] == "a note"
    # figures are right-aligned, so the rows end in the same column
    assert len(lines[4]) == len(lines[3].rstrip())


def test_a_ratio_against_nothing_is_a_dash() -> None:
    assert ratio(1.0, 0.0) == "-"


def _cells(output: str, scenario: str, measure: str) -> list[str]:
    for line in output.splitlines():
        if line.startswith(scenario) and measure in line:
            return re.split(r"\s{2,}", line.strip())
    pytest.fail(f"no row {scenario!r} {measure!r} in:\n{output}")


@pytest.mark.e2e
async def test_a_small_run_prints_every_row_with_real_downloads() -> None:
    # when the benchmark runs every row at a tiny size
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench",
        "--tracks",
        "2",
        "--seconds",
        "3",
        "--playlist-items",
        "120",
        "--repeats",
        "1",
        "--worker-tracks",
        "1",
        "--no-save",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 280)
    output = out.decode()

    # then it ran to the end and printed the machine and each row
    assert process.returncode == 0, output + err.decode()
    assert "the benchmark stopped" not in output
    assert re.search(r"^machine .* cores", output, re.MULTILINE)
    assert re.search(r"spotdl 4\.\d+\.\d+, yt-dlp \S+, ffmpeg \S+", output)
    # both sides downloaded both songs, ours in one spotdl run
    assert _cells(output, "1 album 2x3s", "files completed")[2:4] == ["2", "2"]
    assert _cells(output, "1 album 2x3s", "spotdl runs")[2] == "1"
    assert _cells(output, "1 album 2x3s", "wall time")[-1] in ("met", "missed")
    # the repeat ran no spotdl at all
    assert _cells(output, "2 same album again", "spotdl runs")[2:] == ["0", "-", "-", "0", "met"]
    # the playlist was read in full by both sides, with the requests counted
    playlist = _cells(output, "3 playlist 120 items", "wall time vs pages in a loop")
    assert playlist[-1] in ("met", "missed")
    naive_requests = _cells(output, "3 playlist 120 items", "requests vs pages in a loop")[3]
    assert int(naive_requests) >= 3
    # and the worker's memory was sampled while it downloaded
    assert _cells(output, "4 peak memory", "soundforge worker")[2].endswith(" MB")
    assert "the worker downloaded 1 of 1 tracks" in output
