"""What the benchmark prints: the machine, the versions, one table of rows, and notes."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from enum import StrEnum


class Verdict(StrEnum):
    """How a row compares with its target."""

    MET = "met"
    MISSED = "missed"
    INVALID = "invalid"
    INFO = ""


@dataclass(frozen=True)
class Row:
    """One line of the table; empty cells print as a dash."""

    scenario: str
    measure: str
    ours: str
    reference: str = ""
    ratio: str = ""
    target: str = ""
    verdict: Verdict = Verdict.INFO


@dataclass
class Report:
    """The header lines, the rows and the notes, printed in that order."""

    header: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *rows: Row) -> None:
        """Append rows to the table."""
        self.rows.extend(rows)

    def note(self, text: str) -> None:
        """Append a line below the table."""
        self.notes.append(text)

    def render(self) -> str:
        """The whole report as text."""
        columns = ("row", "measure", "SoundForge", "reference", "ratio", "target", "verdict")
        # Empty cells print as a dash.
        cells = [
            tuple(
                cell or "-"
                for cell in (
                    row.scenario,
                    row.measure,
                    row.ours,
                    row.reference,
                    row.ratio,
                    row.target,
                    row.verdict.value,
                )
            )
            for row in self.rows
        ]
        widths = [
            max(len(column), *(len(line[index]) for line in cells))
            for index, column in enumerate(columns)
        ]
        rule = "  ".join("-" * width for width in widths)
        lines = [*self.header, "", _line(columns, widths), rule]
        lines.extend(_line(line, widths) for line in cells)
        if self.notes:
            lines.extend(["", *self.notes])
        return "\n".join(lines) + "\n"


def _line(cells: tuple[str, ...], widths: list[int]) -> str:
    # Text columns align left, figures right.
    parts = [
        cell.ljust(width) if index < 2 else cell.rjust(width)
        for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
    ]
    return "  ".join(parts).rstrip()


def machine_lines(argv: list[str]) -> list[str]:
    """The machine, the load, the versions and the command line, one line each."""
    usable = len(os.sched_getaffinity(0))
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        f"machine   {platform.system()} {platform.release()}, {os.cpu_count()} cores "
        f"({usable} usable), load {load} (1, 5, 15 min) at the start",
        f"versions  Python {platform.python_version()}, spotdl {_version('spotdl')}, "
        f"yt-dlp {_version('yt-dlp')}, ffmpeg {_ffmpeg_version()}",
        f"command   {shlex.join([sys.executable, '-m', 'bench', *argv])}",
    ]


def load_line() -> str:
    """The load average now, for the end of the report."""
    return "load at the end: " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _ffmpeg_version() -> str:
    try:
        first = subprocess.run(
            ["ffmpeg", "-version"], capture_output=True, text=True, check=True
        ).stdout.split("\n", 1)[0]
    except (OSError, subprocess.CalledProcessError):
        return "not installed"
    # "ffmpeg version 5.1.6-0+deb12u1 Copyright ..."
    words = first.split()
    return words[2] if len(words) > 2 else first


def ratio(ours: float, reference: float) -> str:
    """`ours / reference` to two places, or a dash when the reference is zero."""
    return f"{ours / reference:.2f}" if reference > 0 else "-"


def secs(value: float) -> str:
    """Seconds to a width that reads well in the table."""
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def megabytes(value: float | None) -> str:
    """MB to one place, or a dash when nothing was measured."""
    return f"{value:.0f} MB" if value is not None else "-"
