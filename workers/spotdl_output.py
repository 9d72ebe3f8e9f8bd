"""Reading a spotdl run's output: progress per song, the evidence of each failure, its class.

spotdl is run with `--simple-tui --log-level DEBUG` and a wide `COLUMNS`, so rich prints one
log record per line group: a first line (`[12:00:00] INFO  MainThread - message  file.py:12`)
and indented continuation lines (tracebacks). Progress records read `{display_name}:
{stage}`; failures show up in `--save-errors` as `{track url} - {Exception}: {message}`, which
does not tell a missing source from a passing fault, while the debug traceback of the same
song does (yt-dlp's own error sits in the exception chain). So a failed song's evidence is
its errors-file line plus every record that names the song: its display name, track URL,
Spotify id or the address spotdl downloaded it from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from core.errors import (
    DiskFull,
    DownloadError,
    FfmpegMissing,
    SourceNotFound,
    SourceRateLimited,
    SourceSignInRequired,
    SpotdlMissing,
)

# spotdl's simple-tui stages (download/progress_handler.py) as (percent, our stage word).
# spotdl's own "Done" is 100; ours stops at 99 until the file is checked and in place.
STAGES: dict[str, tuple[int, str]] = {
    "Searching for song": (25, "searching"),
    "Getting audio meta": (40, "fetching"),
    "Downloading": (70, "downloading"),
    "Converting": (80, "converting"),
    "Embedding metadata": (95, "tagging"),
    "Done": (99, "finishing"),
}
# Characters spotdl drops from a display name before printing it (utils/static.py BAD_CHARS).
_SPOTDL_BAD_CHARS = frozenset(chr(code) for code in [12441, 12442, *range(769, 880)])

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_SPACES = re.compile(r"[ \t]{2,}")
# Rich draws a second, boxed copy of each traceback; the plain copy above it is enough.
_BOX_CHARS = frozenset("│╭╰─")
_SOURCE_COLUMN = re.compile(r"\s+\S+\.py:\d+$")
_STAGE_LINE = re.compile(r"^(?P<head>.*): (?P<stage>" + "|".join(STAGES) + r")$")
_DOWNLOAD_LINE = re.compile(r"Downloading (?P<name>.+) using (?P<url>\S+)$")
_ERRORS_FILE_LINE = re.compile(r"^(?P<url>https?://open\.spotify\.com/track/\S+) - (?P<text>.*)$")

# Ordered: the first pattern found in a song's evidence decides its class.
_SONG_FAILURES: tuple[tuple[re.Pattern[str], type[DownloadError]], ...] = (
    (re.compile(r"No space left on device|\[Errno 28\]|\bENOSPC\b", re.IGNORECASE), DiskFull),
    (
        re.compile(r"ffmpeg is not installed|No such file or directory: '[^']*ffmpeg'", re.I),
        FfmpegMissing,
    ),
    (re.compile(r"Sign in to confirm you.re not a bot", re.IGNORECASE), SourceSignInRequired),
    (re.compile(r"HTTP Error 429|Too Many Requests", re.IGNORECASE), SourceRateLimited),
    (re.compile(r"\bLookupError\b|No results found for song"), SourceNotFound),
)
# Conditions that fail every song of a run, looked for in the whole output.
_BATCH_FAILURES: tuple[tuple[re.Pattern[str], type[DownloadError]], ...] = (
    _SONG_FAILURES[0],
    _SONG_FAILURES[1],
    (re.compile(r"No module named '?spotdl|spotdl: (?:command )?not found"), SpotdlMissing),
)
# Records that report trouble; a progress line naming a song titled "Too Many Requests" is none.
_FAULT_RECORD = re.compile(r"ERROR|CRITICAL|WARNING|Error\b|Exception\b|Traceback")
_DETAIL_CHARS = 300


def printed_name(display_name: str) -> str:
    """`display_name` the way spotdl prints it in progress lines."""
    return "".join(char for char in display_name if char not in _SPOTDL_BAD_CHARS)


def clean_line(raw: str) -> str:
    """One output line without colour codes, runs of padding or the trailing source column."""
    line = _ANSI.sub("", raw).replace("\r", "").rstrip()
    return _SOURCE_COLUMN.sub("", _SPACES.sub("  ", line))


@dataclass
class SongTrace:
    """What the output told about one song of the run."""

    song_id: str
    url: str
    display_name: str
    download_urls: set[str] = field(default_factory=set)
    done: bool = False
    errors_line: str | None = None
    percent: int = 0
    stage: str = ""

    def names(self) -> list[str]:
        """Strings that name this song in spotdl's output."""
        return [self.url, self.song_id, self.display_name, *sorted(self.download_urls)]


ProgressSink = Callable[[SongTrace, int, str], None]


class SpotdlOutput:
    """Collects a run's output records and turns them into progress and evidence."""

    def __init__(self, songs: Iterable[SongTrace]) -> None:
        self.songs = list(songs)
        self.records: list[str] = []
        self._open: dict[str, list[str]] = {}
        self._by_name: dict[str, list[SongTrace]] = {}
        for song in self.songs:
            self._by_name.setdefault(song.display_name, []).append(song)
        # Longest first, so `B - X` never claims a line meant for `A - B - X`.
        self._names = sorted(self._by_name, key=len, reverse=True)

    def feed(self, stream: str, raw: str, on_progress: ProgressSink) -> None:
        """Take one line of `stream` (stdout or stderr); report any progress it shows."""
        line = clean_line(raw)
        if not line.strip() or _BOX_CHARS.intersection(line):
            return
        current = self._open.get(stream)
        if line[0].isspace() and current is not None:
            current.append(line.strip())
            return
        self._close(stream)
        self._open[stream] = [line]
        self._read_first_line(line, on_progress)

    def add_text(self, text: str) -> None:
        """Add a block of text read elsewhere (an ffmpeg error file) as one record."""
        self.records.append(text)

    def finish(self) -> None:
        """Close the records still open at the end of the output."""
        for stream in list(self._open):
            self._close(stream)

    def read_errors_file(self, text: str) -> None:
        """Attach each `--save-errors` line to its song; keep the others as a record."""
        by_url = {song.url: song for song in self.songs}
        others = []
        for line in text.splitlines():
            match = _ERRORS_FILE_LINE.match(line.strip())
            song = by_url.get(match["url"]) if match else None
            if match and song is not None:
                song.errors_line = match["text"]
            elif line.strip():
                others.append(line.strip())
        if others:
            self.records.append("\n".join(others))

    def evidence(self, song: SongTrace) -> str:
        """Everything the output says about `song`, errors-file line first."""
        patterns = [_mention(key) for key in song.names() if key]
        found = [song.errors_line or ""]
        found += [
            text
            for text in self.records
            if _FAULT_RECORD.search(text) and any(p.search(text) for p in patterns)
        ]
        return "\n".join(found)

    def text(self) -> str:
        """The whole output."""
        return "\n".join(self.records)

    def _close(self, stream: str) -> None:
        lines = self._open.pop(stream, None)
        if lines:
            self.records.append("\n".join(lines))

    def _read_first_line(self, line: str, on_progress: ProgressSink) -> None:
        stage_match = _STAGE_LINE.match(line)
        if stage_match:
            for song in self._named(stage_match["head"]):
                percent, stage = STAGES[stage_match["stage"]]
                song.done = song.done or stage_match["stage"] == "Done"
                if percent > song.percent or (percent == song.percent and stage != song.stage):
                    song.percent, song.stage = percent, stage
                    on_progress(song, percent, stage)
            return
        download_match = _DOWNLOAD_LINE.search(line)
        if download_match:
            for song in self._named(download_match["name"], printed=False):
                song.download_urls.add(download_match["url"])

    def _named(self, head: str, printed: bool = True) -> list[SongTrace]:
        """The songs whose name `head` ends with, as printed (or, `printed=False`, as is)."""
        for name in self._names:
            shown = printed_name(name) if printed else name
            if head == shown or head.endswith(f" {shown}"):
                return self._by_name[name]
        return []


def classify(song: SongTrace, evidence: str) -> DownloadError | None:
    """The error class the evidence of a failed song shows, or None when it shows none."""
    return _first_match(_SONG_FAILURES, evidence, song.display_name)


def batch_failure(text: str) -> DownloadError | None:
    """A failure that concerns the whole run (disk full, ffmpeg or spotdl missing), if any."""
    return _first_match(_BATCH_FAILURES, text, "spotdl run")


def _first_match(
    table: tuple[tuple[re.Pattern[str], type[DownloadError]], ...], text: str, subject: str
) -> DownloadError | None:
    for pattern, error_class in table:
        match = pattern.search(text)
        if match:
            return error_class(f"{subject}: {_line_around(text, match)}")
    return None


def _line_around(text: str, match: re.Match[str]) -> str:
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    line = text[start : end if end != -1 else len(text)].strip()
    return line[:_DETAIL_CHARS]


def _mention(key: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(key) + r"(?!\w)")
