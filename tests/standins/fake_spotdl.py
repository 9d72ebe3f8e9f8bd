"""A tiny fake spotdl for the runner's failure paths, where the real one cannot be made to fail.

Run as `python fake_spotdl.py MODE [--pid-file FILE] SPOTDL-ARGS...`; it reads the `.spotdl`
file, `--output` and `--save-errors` from the spotdl arguments the runner passes. Modes:

- `hang`: starts a child that ignores SIGTERM, writes both process ids to `--pid-file`,
  prints one progress line per song, then sleeps (ignoring SIGTERM too) and prints nothing;
- `chatter`: prints a line every 0.2 s for ever, so only the wall-clock limit stops it;
- `enospc`: prints a traceback ending in `[Errno 28] No space left on device` and lists every
  song in the errors file, as spotdl does when the disk fills while it converts;
- `bad-files`: exits 0 leaving, for its songs in turn, an empty file, an untagged MP3 and a
  file of garbage bytes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _option(args: list[str], name: str) -> str | None:
    if name in args:
        index = args.index(name)
        if index + 1 < len(args):
            return args[index + 1]
    return None


def _songs(args: list[str]) -> list[dict[str, object]]:
    save_file = next(arg for arg in args if arg.endswith(".spotdl"))
    songs: list[dict[str, object]] = json.loads(Path(save_file).read_text(encoding="utf-8"))
    return songs


def _output_path(args: list[str], song: dict[str, object]) -> Path:
    template = _option(args, "--output") or "{track-id}.{output-ext}"
    fmt = _option(args, "--format") or "mp3"
    return Path(template.replace("{track-id}", str(song["song_id"])).replace("{output-ext}", fmt))


def _display(song: dict[str, object]) -> str:
    return f"{song['artist']} - {song['name']}"


def _hang(args: list[str]) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)",
        ]
    )
    pid_file = _option(args, "--pid-file")
    if pid_file:
        Path(pid_file).write_text(f"{os.getpid()} {child.pid}")
    # Progress only once the ids are written, so a test that saw progress can read them.
    for song in _songs(args):
        print(f"[12:00:00] INFO     MainThread - {_display(song)}: Getting audio meta", flush=True)
    time.sleep(3600)


def _chatter(args: list[str]) -> None:
    while True:
        print("[12:00:00] DEBUG    MainThread - still thinking", flush=True)
        time.sleep(0.2)


def _enospc(args: list[str]) -> None:
    songs = _songs(args)
    print("[12:00:00] ERROR    MainThread - Traceback (most recent call last):", flush=True)
    print('                     File "spotdl/utils/ffmpeg.py", line 1, in convert', flush=True)
    print("                     OSError: [Errno 28] No space left on device", flush=True)
    errors = _option(args, "--save-errors")
    if errors:
        lines = [
            f"{song['url']} - FFmpegError: Failed to convert {_display(song)}" for song in songs
        ]
        Path(errors).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _bad_files(args: list[str]) -> None:
    songs = _songs(args)
    makers = [_empty_file, _untagged_mp3, _garbage_file]
    for song, make in zip(songs, makers, strict=False):
        path = _output_path(args, song)
        path.parent.mkdir(parents=True, exist_ok=True)
        make(path)
        print(f"[12:00:00] INFO     MainThread - {_display(song)}: Done", flush=True)


def _empty_file(path: Path) -> None:
    path.write_bytes(b"")


def _untagged_mp3(path: Path) -> None:
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1",
            "-map_metadata",
            "-1",
            str(path),
        ],
        check=True,
        stdin=subprocess.DEVNULL,
    )


def _garbage_file(path: Path) -> None:
    path.write_bytes(os.urandom(4096))


_MODES = {"hang": _hang, "chatter": _chatter, "enospc": _enospc, "bad-files": _bad_files}


def main() -> None:
    """Act out the mode named first on the command line."""
    mode, *args = sys.argv[1:]
    _MODES[mode](args)


if __name__ == "__main__":
    main()
