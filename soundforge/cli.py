"""The `soundforge` command: run, worker, import and doctor."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from config.logging import configure_logging
from config.settings import Quality, Settings
from core.errors import SoundForgeError

_log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soundforge", description="Turn Spotify links into tagged audio files."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", help="run the chat bots, the file server and the workers")
    commands.add_parser("worker", help="run download workers on the Redis broker")
    imports = commands.add_parser("import", help="import Spotify links from the terminal")
    imports.add_argument("urls", nargs="+", metavar="URL", help="Spotify links")
    imports.add_argument(
        "--quality", choices=[q.value for q in Quality], help="audio quality (default: settings)"
    )
    imports.add_argument(
        "--json", action="store_true", help="print one JSON object per finished job"
    )
    commands.add_parser("doctor", help="check spotdl, ffmpeg, the database, Redis and Spotify")
    return parser


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']).upper()}: "
            f"{error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        )
        raise SystemExit(f"soundforge: a setting is invalid ({problems}).") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `soundforge` console script."""
    args = _parser().parse_args(argv)
    settings = _settings()
    configure_logging("ERROR" if args.command == "import" else settings.log_level)
    try:
        return asyncio.run(_dispatch(args, settings))
    except SoundForgeError as exc:
        _log.debug("Command %s failed.", args.command, exc_info=exc)
        print(f"soundforge: {exc.user_message}", file=sys.stderr)
        return EXIT_FAILED
    except (KeyboardInterrupt, asyncio.CancelledError):
        return EXIT_INTERRUPTED
    finally:
        # The command has closed what it opened. Without this, the interpreter's exit walks
        # every object the imports made, looking for garbage: 0.3 s of CPU per command here.
        gc.freeze()


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "import":
        from soundforge.importer import import_links

        # Ctrl-C and SIGTERM stop an import between two steps, never inside a database call:
        # running downloads are stopped and their jobs given back, no spotdl is left behind.
        quality = Quality(args.quality) if args.quality else None
        return await import_links(
            settings, args.urls, quality=quality, as_json=args.json, stop=_stop_event()
        )
    if args.command == "doctor":
        from soundforge.doctor import doctor

        return await doctor(settings)
    if args.command == "worker":
        if not settings.redis_url:
            print(
                "soundforge: `soundforge worker` takes jobs from Redis: set REDIS_URL "
                "(without it, `soundforge run` downloads in its own process).",
                file=sys.stderr,
            )
            return EXIT_FAILED
        from soundforge.app import run_worker

        await run_worker(settings, _stop_event())
        return EXIT_OK
    return await _run(settings)


async def _run(settings: Settings) -> int:
    from soundforge.run import run

    return await run(settings, _stop_event())


def _stop_event() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM, for a clean shutdown."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


if __name__ == "__main__":
    sys.exit(main())
