"""A thin wrapper around the real spotdl that keeps it on the loopback stand-ins.

Run as `python -m tests.standins.spotdl_wrapper ARGS...` (or `tests/standins/bin/spotdl-standin`),
with the same arguments as spotdl. Before handing over to spotdl's own console entry point,
in this process, it:

- for `download` of `.spotdl` files, asks the audio stand-in (`SOUNDFORGE_AUDIO_URL`) about
  each song: a song the source has gets the stand-in's address as its `download_url`; a song
  it lacks keeps no `download_url`, and spotdl's own YouTube search is made to come up empty,
  so spotdl reports "No results found" the way it does for real. A song marked sign-in makes
  yt-dlp raise YouTube's "Sign in to confirm you're not a bot" through its own error path.
  A cover address that is not on loopback is pointed at the stand-in's cover;
- for `save`, when `SOUNDFORGE_SPOTIFY_URL` is set, points spotdl's Spotify client at that
  stand-in (`tests.standins.spotdl_spotify_patch`);
- always adds `--audio youtube` (spotdl's default YouTube Music provider calls its host as it
  starts) and `--lyrics` with no providers;
- refuses, in this process, every name lookup and connection that is not to a loopback
  address, so nothing spotdl or yt-dlp does can leave the machine;
- when `SOUNDFORGE_SPOTDL_LOG` names a file, appends one line to it per invocation (its
  process id and operation), so a benchmark or test can count spotdl runs.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import socket
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

AUDIO_URL_ENV = "SOUNDFORGE_AUDIO_URL"
SPOTIFY_URL_ENV = "SOUNDFORGE_SPOTIFY_URL"
RUN_LOG_ENV = "SOUNDFORGE_SPOTDL_LOG"
# What YouTube answers when it wants cookies; yt-dlp adds its own hint after it.
SIGN_IN_REASON = "Sign in to confirm you’re not a bot"
_LOOKUP_TIMEOUT_SECS = 10.0
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class StandinError(Exception):
    """Raised when the wrapper cannot prepare a run (no stand-in address, bad save file)."""


def main(argv: list[str] | None = None) -> None:
    """Prepare the stand-ins for this spotdl invocation, then run spotdl in this process."""
    args = list(sys.argv[1:] if argv is None else argv)
    _guard_network()
    operation = _operation(args)
    _log_run(operation)
    if operation == "download":
        args = _prepare_download(args)
    elif operation == "save" and os.environ.get(SPOTIFY_URL_ENV):
        from tests.standins.spotdl_spotify_patch import patch_spotdl_spotify

        patch_spotdl_spotify(os.environ[SPOTIFY_URL_ENV])
    args += ["--audio", "youtube", "--lyrics"]

    from spotdl.console.entry_point import console_entry_point

    sys.argv = ["spotdl", *args]
    console_entry_point()


def _operation(args: list[str]) -> str:
    """The spotdl operation named first on the command line ('download' when none is)."""
    for arg in args:
        if not arg.startswith("-"):
            return arg if arg in {"download", "save", "sync", "meta", "url", "web"} else "download"
    return "download"


def _log_run(operation: str) -> None:
    """Append this invocation to the run log named by SOUNDFORGE_SPOTDL_LOG, if any."""
    run_log = os.environ.get(RUN_LOG_ENV)
    if run_log:
        with open(run_log, "a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()} {operation}\n")


def _prepare_download(args: list[str]) -> list[str]:
    save_files = [arg for arg in args if arg.endswith(".spotdl") and Path(arg).is_file()]
    if not save_files:
        _no_search()
        return args
    base_url = os.environ.get(AUDIO_URL_ENV, "").rstrip("/")
    if not base_url:
        raise StandinError(f"{AUDIO_URL_ENV} is not set: start the audio stand-in first")
    sign_in_urls: set[str] = set()
    rewritten: dict[str, str] = {}
    for save_file in save_files:
        songs = json.loads(Path(save_file).read_text(encoding="utf-8"))
        for song in songs:
            _point_at_source(song, base_url, sign_in_urls)
        target = Path(save_file).with_name(f"standin-{Path(save_file).name}")
        target.write_text(json.dumps(songs), encoding="utf-8")
        rewritten[save_file] = str(target)
    _no_search()
    if sign_in_urls:
        _demand_sign_in(sign_in_urls)
    return [rewritten.get(arg, arg) for arg in args]


def _point_at_source(song: dict[str, Any], base_url: str, sign_in_urls: set[str]) -> None:
    found = _lookup(base_url, str(song.get("song_id") or ""))
    song["download_url"] = found.get("url") if found.get("found") else None
    if found.get("fault") == "sign_in" and song["download_url"]:
        sign_in_urls.add(song["download_url"])
    cover = song.get("cover_url")
    if cover and not _is_loopback(urllib.parse.urlsplit(cover).hostname or ""):
        song["cover_url"] = f"{base_url}/cover.jpg"


def _lookup(base_url: str, track_id: str) -> dict[str, Any]:
    url = f"{base_url}/lookup/{urllib.parse.quote(track_id, safe='')}"
    with urllib.request.urlopen(url, timeout=_LOOKUP_TIMEOUT_SECS) as response:
        answer: dict[str, Any] = json.load(response)
    return answer


def _no_search() -> None:
    """Make spotdl's YouTube search find nothing, so a song without a source is not found."""
    from spotdl.providers.audio.youtube import YouTube

    def get_results(self: YouTube, search_term: str, *args: Any, **kwargs: Any) -> list[Any]:
        return []

    YouTube.get_results = get_results


def _demand_sign_in(urls: set[str]) -> None:
    """Make yt-dlp's generic extractor ask for sign-in, as YouTube does, for `urls`."""
    from yt_dlp.extractor.generic import GenericIE

    real_extract = GenericIE._real_extract

    def extract(self: GenericIE, url: str) -> Any:
        if url in urls:
            self.raise_login_required(SIGN_IN_REASON, method="cookies")
        return real_extract(self, url)

    GenericIE._real_extract = extract


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _guard_network() -> None:
    """Refuse every name lookup and connection in this process that is not to loopback."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def refuse(name: str) -> None:
        print(f"spotdl stand-in: refused to reach {name}", file=sys.stderr, flush=True)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host or "")
        if host is not None and not _is_loopback(name):
            refuse(name)
            raise socket.gaierror(socket.EAI_NONAME, f"stand-in refuses non-loopback host {name}")
        return real_getaddrinfo(host, *args, **kwargs)

    def allowed(sock: socket.socket, address: Any) -> bool:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return True
        host = str(address[0])
        if _is_loopback(host):
            return True
        refuse(host)
        return False

    def connect(sock: socket.socket, address: Any) -> None:
        if not allowed(sock, address):
            raise ConnectionRefusedError(f"stand-in refuses non-loopback address {address[0]}")
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        if not allowed(sock, address):
            return errno.ECONNREFUSED
        return real_connect_ex(sock, address)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]


if __name__ == "__main__":
    main()
