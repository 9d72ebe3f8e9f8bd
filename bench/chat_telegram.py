"""The Telegram chat benchmark: first-reply latency, edits per request, 20 chats at once.

Everything runs on loopback: the Spotify stand-in, the audio source with the real spotdl
behind the wrapper, and the paced Bot API stand-in. `soundforge run` and `soundforge
import` are started as subprocesses, the way a person runs them.

    .venv/bin/python bench/chat_telegram.py [--pastes 50] [--chats 20] [--tracks 20]

Prints a table: the time from a pasted link to the first reply (median and 95th
percentile), edits per request, and for `--chats` chats pasting the same album of
`--tracks` tracks at once: requests completed, 429s received (target 0), and the wall
time beside `soundforge import` of that album with no chat.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.chat import (  # noqa: E402
    PHASE_LIMIT_SECS,
    import_wall_secs,
    percentile,
    stage,
    start_run,
    stop,
)
from tests.standins.telegram import TelegramStandIn, TgChat, TgUser  # noqa: E402


async def _start_bot(
    env: dict[str, str], data_dir: Path, telegram: TelegramStandIn
) -> asyncio.subprocess.Process:
    chat_env = {
        "TELEGRAM_BOT_TOKEN": telegram.token,
        "TELEGRAM_API_BASE_URL": telegram.api_base_url,
        "TELEGRAM_FILE_BASE_URL": telegram.file_base_url,
    }
    process = await start_run(env, data_dir, chat_env)
    await telegram.wait_for(lambda: telegram.polls, within_secs=120, what="the bot to poll")
    return process


async def _first_reply_latencies(telegram: TelegramStandIn, link: str, pastes: int) -> list[float]:
    """Paste `link` from `pastes` people, each in a private chat; seconds to each first reply."""
    pasted: list[tuple[TgChat, int, float]] = []
    for n in range(pastes):
        user = TgUser(id=10_000 + n, first_name=f"User {n}")
        chat = TgChat.private_with(user)
        pasted.append((chat, telegram.send_text(chat, user, link), time.monotonic()))
        await asyncio.sleep(0.05)

    def replies() -> list[float] | None:
        found = []
        for chat, message_id, at in pasted:
            reply = next(
                (m for m in telegram.transcript(chat.id) if m.reply_to == message_id), None
            )
            if reply is None:
                return None
            found.append(reply.sent_at - at)
        return found

    latencies: list[float] = await telegram.wait_for(
        replies, within_secs=PHASE_LIMIT_SECS, what="every first reply"
    )
    return latencies


async def _albums_at_once(
    telegram: TelegramStandIn, link: str, chats: int, tracks: int
) -> tuple[float, int]:
    """`chats` people paste the album at once; wall seconds until every chat has it all."""
    people = [TgUser(id=20_000 + n, first_name=f"Album fan {n}") for n in range(chats)]
    started = time.monotonic()
    for person in people:
        telegram.send_text(TgChat.private_with(person), person, link)

    def complete() -> int:
        done = 0
        for person in people:
            shown = telegram.transcript(person.id)
            audio = [m for m in shown if m.kind in ("audio", "document")]
            final = any(f"{tracks}/{tracks} done" in m.text for m in shown if m.kind == "text")
            done += len(audio) >= tracks and final
        return done

    await telegram.wait_for(
        lambda: complete() == chats, within_secs=PHASE_LIMIT_SECS, what="every album"
    )
    return time.monotonic() - started, complete()


async def main(pastes: int, chats: int, tracks: int, track_secs: float) -> None:
    with tempfile.TemporaryDirectory(prefix="sf-bench-") as scratch:
        root = Path(scratch)
        async with (
            stage(root, tracks=tracks, track_secs=track_secs) as music,
            TelegramStandIn() as telegram,
        ):
            # The same album imported without any chat.
            env = music.environment(root / "import")
            import_secs = await import_wall_secs(env, root / "import", music.album_link)

            # The bot, on a database of its own, so the album is downloaded again.
            env = music.environment(root / "bot")
            bot = await _start_bot(env, root / "bot", telegram)
            try:
                latencies = await _first_reply_latencies(telegram, music.single_link, pastes)
                before = len(telegram.rate_limited_calls)
                album_secs, completed = await _albums_at_once(
                    telegram, music.album_link, chats, tracks
                )
                album_429s = len(telegram.rate_limited_calls) - before
            finally:
                await stop(bot)

            replies = [
                m
                for m in telegram.messages.values()
                if m.kind == "text" and m.reply_to is not None
            ]
            edits = [m.edits for m in replies]

    print("| measure | value |")
    print("| --- | --- |")
    print(
        f"| first reply, median ({pastes} pastes) | {statistics.median(latencies) * 1000:.0f} ms |"
    )
    print(f"| first reply, 95th percentile | {percentile(latencies, 0.95) * 1000:.0f} ms |")
    print(f"| edits per request (mean, max) | {statistics.mean(edits):.1f}, {max(edits)} |")
    print(f"| {chats} chats x album of {tracks}: requests completed | {completed}/{chats} |")
    print(f"| {chats} chats x album of {tracks}: 429s received | {album_429s} |")
    print(f"| {chats} chats x album of {tracks}: wall time | {album_secs:.1f} s |")
    print(f"| `soundforge import` of the album, no chat | {import_secs:.1f} s |")
    print(f"| 429s over the whole run | {len(telegram.rate_limited_calls)} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pastes", type=int, default=50)
    parser.add_argument("--chats", type=int, default=20)
    parser.add_argument("--tracks", type=int, default=20)
    parser.add_argument("--track-secs", type=float, default=180.0)
    args = parser.parse_args()
    asyncio.run(main(args.pastes, args.chats, args.tracks, args.track_secs))
