"""The Spotify stand-in in a process of its own, serving the catalog the benchmark reads.

    python -m bench.spotify_server --album-tracks 20 --track-secs 180 --playlist-items 2000

It builds the catalog (an album for the import rows, a smaller album for the worker row, a
generated playlist), serves it on 127.0.0.1 and prints one JSON line saying where and under
which ids. Then it answers commands, one a line on stdin, each with one JSON line on stdout:
`stats` (requests since the last `reset`, by endpoint), `reset`, `delay SECS` (added to every
answer from now on). It stops at `stop` or when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections import Counter
from typing import Any

from tests.standins.spotify import Catalog, SpotifyStandin

# Spotify ids in a path are replaced by this, so requests are counted per endpoint.
_ID_IN_PATH = re.compile(r"/[0-9A-Za-z]{22}(?=/|$)")


def build_catalog(
    album_tracks: int,
    track_secs: float,
    worker_tracks: int,
    playlist_items: int,
    tracks_per_album: int,
) -> tuple[Catalog, dict[str, str]]:
    """The benchmark's catalog and the ids of what it holds."""
    catalog = Catalog()
    artist = catalog.add_artist("Bench Sine Ensemble", ["test tone"])
    duration_ms = round(track_secs * 1000)
    album = catalog.add_album(
        "Twenty Long Tones", artist, tracks=album_tracks, duration_ms=duration_ms
    )
    worker_album = catalog.add_album(
        "Worker Tones", artist, tracks=worker_tracks, duration_ms=duration_ms
    )
    playlist = catalog.generate_playlist(
        playlist_items, tracks_per_album=tracks_per_album, name="Bench Mix"
    )
    ids = {
        "album_id": album.spotify_id,
        "worker_album_id": worker_album.spotify_id,
        "playlist_id": playlist.spotify_id,
    }
    return catalog, ids


def endpoint_of(path: str) -> str:
    """`path` with its ids replaced: `/v1/albums/{id}/tracks`."""
    return _ID_IN_PATH.sub("/{id}", path.rstrip("/"))


def stats(standin: SpotifyStandin) -> dict[str, Any]:
    """The requests received since the last reset, in total and per endpoint."""
    by_endpoint = Counter(endpoint_of(record.path) for record in standin.records)
    return {
        "requests": len(standin.records),
        "by_endpoint": dict(by_endpoint.most_common()),
        "token_requests": standin.token_requests,
        "failed": sum(1 for record in standin.records if record.status >= 400),
    }


async def _answer(standin: SpotifyStandin, line: str) -> dict[str, Any] | None:
    """Carry out one command; None means stop."""
    command, _, argument = line.strip().partition(" ")
    if command in ("", "stop"):
        return None
    if command == "stats":
        return stats(standin)
    if command == "reset":
        standin.records.clear()
        standin.token_requests = 0
        return {"ok": True}
    if command == "delay":
        standin.delay_secs = float(argument)
        return {"ok": True, "delay_secs": standin.delay_secs}
    return {"error": f"unknown command {command!r}"}


async def serve(args: argparse.Namespace) -> None:
    """Serve the catalog and answer commands until told to stop."""
    catalog, ids = build_catalog(
        args.album_tracks,
        args.track_secs,
        args.worker_tracks,
        args.playlist_items,
        args.tracks_per_album,
    )
    standin = SpotifyStandin(catalog)
    await standin.start()
    try:
        hello = {
            **ids,
            "base_url": standin.base_url,
            "api_base_url": standin.api_base_url,
            "accounts_base_url": standin.accounts_base_url,
            "client_id": standin.client_id,
            "client_secret": standin.client_secret,
        }
        print(json.dumps(hello), flush=True)
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            answer = await _answer(standin, line)
            if answer is None:
                break
            print(json.dumps(answer), flush=True)
    finally:
        await standin.stop()


def main() -> None:
    """Parse the sizes and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--album-tracks", type=int, default=20)
    parser.add_argument("--track-secs", type=float, default=180.0)
    parser.add_argument("--worker-tracks", type=int, default=3)
    parser.add_argument("--playlist-items", type=int, default=2000)
    parser.add_argument("--tracks-per-album", type=int, default=11)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
