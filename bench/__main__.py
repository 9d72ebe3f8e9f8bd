"""`python -m bench`: run the import benchmark and print one table (see bench/README.md).

    .venv/bin/python -m bench [--only album,repeat,playlist,memory] [--tracks 20]
        [--seconds 180] [--rounds 1] [--playlist-items 2000] [--worker-tracks 3] ...

The report is printed and, unless `--no-save`, written to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import sys
from pathlib import Path

from bench.errors import BenchError
from bench.import_bench import SCENARIOS, Options, run_benchmark
from bench.report import Report, machine_lines
from config.settings import Quality

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _scenarios(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"choose from {', '.join(SCENARIOS)} (comma-separated), not {text!r}"
        )
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="The SoundForge import benchmark, on loopback."
    )
    parser.add_argument(
        "--only",
        type=_scenarios,
        default=SCENARIOS,
        metavar="ROWS",
        help=f"rows to run, comma-separated (default: {','.join(SCENARIOS)})",
    )
    parser.add_argument("--tracks", type=int, default=20, help="tracks on the album (row 1, 2)")
    parser.add_argument(
        "--seconds", type=float, default=180.0, help="length of each track in seconds"
    )
    parser.add_argument(
        "--threads", type=int, default=3, help="spotdl --threads and DOWNLOAD_CONCURRENCY"
    )
    parser.add_argument(
        "--quality", choices=[quality.value for quality in Quality], default=Quality.HIGH.value
    )
    parser.add_argument(
        "--playlist-items", type=int, default=2000, help="items of the playlist (row 3)"
    )
    parser.add_argument(
        "--tracks-per-album", type=int, default=11, help="playlist tracks per album (row 3)"
    )
    parser.add_argument(
        "--delay-ms", type=float, default=20.0, help="added to each stand-in answer (row 3)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of row 3; the median counts")
    parser.add_argument(
        "--worker-tracks", type=int, default=3, help="tracks the worker downloads (row 4)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="pairs of row 1 runs, alternating which side goes first; medians count",
    )
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when it ran (targets missed or not), 1 when it could not."""
    args_list = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(args_list)
    # Progress goes to stderr, so the table on stdout stays clean.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    # httpx logs each request at INFO; row 3 makes hundreds.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    options = Options(
        scenarios=args.only,
        tracks=args.tracks,
        seconds=args.seconds,
        threads=args.threads,
        quality=Quality(args.quality),
        playlist_items=args.playlist_items,
        tracks_per_album=args.tracks_per_album,
        delay_ms=args.delay_ms,
        repeats=args.repeats,
        worker_tracks=args.worker_tracks,
        rounds=args.rounds,
    )
    report = Report(header=machine_lines(args_list))
    failure: BenchError | None = None
    try:
        asyncio.run(run_benchmark(options, report))
    except BenchError as exc:
        failure = exc
        report.note(f"the benchmark stopped: {exc}")
    except KeyboardInterrupt:
        report.note("the benchmark was interrupted")
        failure = BenchError("interrupted")
    text = report.render()
    print(text, end="")
    if not args.no_save:
        RESULTS_DIR.mkdir(exist_ok=True)
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
        path = RESULTS_DIR / f"import-{stamp}.txt"
        path.write_text(text, encoding="utf-8")
        print(f"saved to {path}")
    return 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
