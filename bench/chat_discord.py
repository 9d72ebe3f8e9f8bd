"""The Discord chat benchmark: first-reply latency, edits per request, 20 channels at once.

Everything runs on loopback: the Spotify stand-in, the audio source with the real spotdl
behind the wrapper, and the Discord REST and gateway stand-in, which enforces Discord's
per-channel limit (5 message calls per 5 s) and counts every 429 it answers. `soundforge
run` is started as a subprocess, the way a person runs it.

    .venv/bin/python bench/chat_discord.py [--pastes 50] [--channels 20] [--tracks 20]
        [--track-secs 30]

Prints a table: the time from a link pasted in a DM to the bot's first reply (median and
95th percentile), edits per request, and for `--channels` DM channels pasting the same
album at once: requests completed, 429s received (target 0) and the wall time. Discord
keeps no file id, so each channel uploads every file and the stand-in holds every upload
in memory: the tracks are shorter than the Telegram benchmark's by default.
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

from bench.chat import PHASE_LIMIT_SECS, percentile, stage, start_run, stop  # noqa: E402
from tests.standins.discord import DcUser, DiscordStandIn, StoredMessage  # noqa: E402

# Pastes are this far apart, as in the Telegram benchmark.
PASTE_GAP_SECS = 0.05
READY_LIMIT_SECS = 120.0
CREATE_ROUTE = "/channels/{channel}/messages"


async def _start_bot(
    env: dict[str, str], data_dir: Path, discord: DiscordStandIn
) -> asyncio.subprocess.Process:
    chat_env = {
        "DISCORD_BOT_TOKEN": discord.token,
        "DISCORD_API_BASE_URL": discord.api_base_url,
        "DISCORD_GATEWAY_URL": discord.gateway_url,
    }
    process = await start_run(env, data_dir, chat_env)
    await discord.wait_for_ready(READY_LIMIT_SECS)
    return process


def _people(discord: DiscordStandIn, count: int, name: str) -> list[DcUser]:
    return [DcUser(discord.snowflake(), f"{name}{n}", f"{name} {n}") for n in range(count)]


def _reply_call_at(discord: DiscordStandIn, pasted: StoredMessage) -> float | None:
    """When the bot's first message quoting `pasted` was answered by the stand-in."""
    for call in discord.calls_to(CREATE_ROUTE, "POST"):
        payload = call.payload if isinstance(call.payload, dict) else {}
        reference = payload.get("message_reference") or {}
        if call.status == 200 and str(reference.get("message_id")) == str(pasted.id):
            return call.at
    return None


async def _first_reply_latencies(discord: DiscordStandIn, link: str, pastes: int) -> list[float]:
    """Paste `link` from `pastes` people, each in their DM; seconds to each first reply."""
    pasted: list[tuple[StoredMessage, float]] = []
    for person in _people(discord, pastes, "listener"):
        at = time.monotonic()
        pasted.append((await discord.send_dm(person, link), at))
        await asyncio.sleep(PASTE_GAP_SECS)

    def replied() -> bool:
        return all(_reply_call_at(discord, message) is not None for message, _ in pasted)

    await discord.wait_until(replied, PHASE_LIMIT_SECS)
    answered = [(_reply_call_at(discord, message), at) for message, at in pasted]
    return [reply_at - at for reply_at, at in answered if reply_at is not None]


async def _albums_at_once(
    discord: DiscordStandIn, link: str, channels: int, tracks: int
) -> tuple[float, int]:
    """`channels` people paste the album at once; wall seconds until every DM has it all."""
    people = _people(discord, channels, "fan")
    started = time.monotonic()
    for person in people:
        await discord.send_dm(person, link)

    def complete() -> int:
        done = 0
        for person in people:
            shown = discord.bot_messages_in(discord.dm_channel(person))
            songs = sum(1 for m in shown for a in m.attachments if a.filename.endswith(".mp3"))
            final = any(f"{tracks}/{tracks} done" in m.content for m in shown)
            done += songs >= tracks and final
        return done

    await discord.wait_until(lambda: complete() == channels, PHASE_LIMIT_SECS)
    return time.monotonic() - started, complete()


async def main(pastes: int, channels: int, tracks: int, track_secs: float) -> None:
    with tempfile.TemporaryDirectory(prefix="sf-bench-") as scratch:
        root = Path(scratch)
        async with (
            stage(root, tracks=tracks, track_secs=track_secs) as music,
            DiscordStandIn() as discord,
        ):
            bot = await _start_bot(music.environment(root / "bot"), root / "bot", discord)
            try:
                latencies = await _first_reply_latencies(discord, music.single_link, pastes)
                before = len(discord.rate_limited_calls)
                album_secs, completed = await _albums_at_once(
                    discord, music.album_link, channels, tracks
                )
                album_429s = len(discord.rate_limited_calls) - before
            finally:
                await stop(bot)

            replies = [
                m
                for m in discord.messages.values()
                if m.author == discord.bot and m.reference_id is not None and not m.attachments
            ]
            edits = [m.edits for m in replies]
            all_429s = len(discord.rate_limited_calls)

    print("| measure | value |")
    print("| --- | --- |")
    print(
        f"| Discord first reply, median ({pastes} pastes) "
        f"| {statistics.median(latencies) * 1000:.0f} ms |"
    )
    print(
        f"| Discord first reply, 95th percentile | {percentile(latencies, 0.95) * 1000:.0f} ms |"
    )
    print(
        f"| Discord edits per request (mean, max) | {statistics.mean(edits):.1f}, {max(edits)} |"
    )
    scene = f"{channels} channels x album of {tracks}"
    print(f"| Discord {scene}: requests completed | {completed}/{channels} |")
    print(f"| Discord {scene}: 429s received | {album_429s} |")
    print(f"| Discord {scene}: wall time | {album_secs:.1f} s |")
    print(f"| Discord 429s over the whole run | {all_429s} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pastes", type=int, default=50)
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--tracks", type=int, default=20)
    parser.add_argument("--track-secs", type=float, default=30.0)
    args = parser.parse_args()
    asyncio.run(main(args.pastes, args.channels, args.tracks, args.track_secs))
