"""Where finished files live: `DOWNLOAD_DIR/{spotify_id}/{artist} - {title}{suffix}`.

The suffix names the quality (`.flac`, `.mp3` for 320k, `.192k.mp3`, `.128k.mp3`), so the
qualities of one track never overwrite each other. Artist and title are made safe as a
single file name: no path separators, no control characters, none of the characters Windows
refuses (`:?*"<>|`), no leading dots, NFC-normalised
and at most `MAX_NAME_BYTES` bytes of UTF-8, and the result never resolves outside the
download folder.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from config.settings import Quality
from core.errors import DownloadDirUnavailable

# Longest file name we write, in bytes of UTF-8 (file systems allow 255; this leaves room
# for the temporary prefix used while a file is moved into place).
MAX_NAME_BYTES = 180

QUALITY_SUFFIXES: dict[Quality, str] = {
    Quality.LOSSLESS: ".flac",
    Quality.HIGH: ".mp3",
    Quality.MEDIUM: ".192k.mp3",
    Quality.LOW: ".128k.mp3",
}

_SPOTIFY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SEPARATORS = re.compile(r"[/\\]+")
# Characters Windows, SMB shares and exFAT refuse in a name, and what stands in for them.
_NOT_PORTABLE = str.maketrans({":": " - ", "|": "-", '"': "'", "?": "", "*": "", "<": "", ">": ""})
_WHITESPACE = re.compile(r"\s+")
# A name ending like a bitrate marker (`.192k`) would meet another quality's suffix.
_BITRATE_TAIL = re.compile(r"\.(\d+k)$", re.IGNORECASE)
# Bidirectional overrides and isolates: legal, but they disguise a name's real ending.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def quality_suffix(quality: Quality) -> str:
    """The file ending for `quality`, bitrate marker included."""
    return QUALITY_SUFFIXES[quality]


def track_dir(download_dir: Path, spotify_id: str) -> Path:
    """The folder that holds every quality of one track."""
    if not _SPOTIFY_ID.match(spotify_id):
        raise ValueError(f"not a Spotify track id: {spotify_id!r}")
    return download_dir / spotify_id


def final_path(
    download_dir: Path, spotify_id: str, artist: str, title: str, quality: Quality
) -> Path:
    """Return where the finished file of this track at `quality` lives.

    Raises ValueError when `spotify_id` is not an id or the path would resolve outside
    `download_dir` (a symlinked track folder, for instance).
    """
    suffix = quality_suffix(quality)
    parts = [part for part in (safe_name(artist), safe_name(title)) if part]
    stem = safe_name(" - ".join(parts), MAX_NAME_BYTES - len(suffix.encode())) or spotify_id
    path = track_dir(download_dir, spotify_id) / f"{stem}{suffix}"
    root = download_dir.resolve()
    if not path.resolve().is_relative_to(root):
        raise ValueError(f"{path} resolves outside the download folder {root}")
    return path


def safe_name(text: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """Return `text` as one safe file name of at most `max_bytes` bytes of UTF-8 (may be '')."""
    text = _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text))
    text = "".join(char for char in text if not _is_control(char)).translate(_NOT_PORTABLE)
    text = _WHITESPACE.sub(" ", _SEPARATORS.sub("-", text)).strip()
    text = _truncate_utf8(text.lstrip(". "), max_bytes).rstrip(". ")
    return _BITRATE_TAIL.sub(r"_\1", text)


def _is_control(char: str) -> bool:
    # Cc: C0/C1 controls (NUL, newline, ESC ...); Cs: lone surrogates, which UTF-8 cannot hold.
    return unicodedata.category(char) in ("Cc", "Cs") or char in _BIDI_CONTROLS


def _truncate_utf8(text: str, max_bytes: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", errors="ignore")


def prepare_download_dir(download_dir: Path) -> None:
    """Create DOWNLOAD_DIR if needed and check it can be written to.

    Raises DownloadDirUnavailable with the reason when it cannot.
    """
    try:
        download_dir.mkdir(parents=True, exist_ok=True)
        probe = download_dir / ".write-check"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DownloadDirUnavailable(str(download_dir), exc.strerror or str(exc)) from exc
