"""Breaks found in the neutral conversation: messages that cost too much, audio that is lost.

Each test acts as a person in a fake chat (or as the platform failing) and asserts what that
person ends up with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.errors import ChatUnavailable
from core.types import LinkKind, SpotifyLink, TrackList
from storage.db import Database
from tests.fakes import FakeChat
from tests.fixtures.breaking import (
    DESK_PRIVATE,
    DeskMetadata,
    open_desk,
    refuse_network,
)
from tests.fixtures.storage import make_track
from tests.standins.spotify import Catalog, SpotifyStandin

TRACK_ID = "4uLU6hMCjMI75M1A2tKUQC"


async def until(predicate: Callable[[], Any], what: str) -> Any:
    """Wait for `predicate()` while the conversation works; fail after 20 s."""
    try:
        async with asyncio.timeout(20):
            while not (value := predicate()):  # noqa: ASYNC110 - the fakes signal nothing
                await asyncio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"gave up waiting for {what}")
    return value


def single(spotify_id: str) -> TrackList:
    track = make_track(spotify_id, f"Song {spotify_id[-2:]}")
    return TrackList(SpotifyLink(LinkKind.TRACK, spotify_id), track.title, [track])


async def test_a_message_of_many_short_links_follows_no_more_than_it_takes(
    database: Database,
    tmp_path: Path,
    spotify_catalog: Catalog,
    spotify_standin: SpotifyStandin,
    short_link_http: httpx.AsyncClient,
) -> None:
    # Given 40 short links, each to its own track (a message holds about 250 of them)
    metadata = DeskMetadata()
    codes = []
    for number in range(40):
        track_id = f"{TRACK_ID[:-2]}{number:02d}"
        metadata.lists[track_id] = single(track_id)
        spotify_catalog.add_short_link(f"s{number}", f"https://open.spotify.com/track/{track_id}")
        codes.append(f"https://spotify.link/s{number}")

    # When one message holds all of them
    async with open_desk(database, tmp_path, short_link_http, metadata=metadata) as desk:
        await desk.say(" ".join(codes))

        # Then five are imported and the person is told the rest are left
        assert len(metadata.reads) == 5
        assert any("5 links per message" in text for text in desk.chat.texts(DESK_PRIVATE))

    # And the bot asked spotify.link about those five only, not about all 40
    assert spotify_standin.hits("/short/") == 5


class CountingChat(FakeChat):
    """The fake chat, counting every attempt at posting a file."""

    attempts = 0

    async def send_audio(self, *args: Any, **kwargs: Any) -> Any:
        self.attempts += 1
        return await super().send_audio(*args, **kwargs)


async def test_audio_whose_posting_failed_for_a_while_still_arrives_once(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a platform that fails every posting attempt of one file: about 20 s of outage
    # with the real pauses, which this test shortens
    monkeypatch.setattr("bot.conversation.DELIVERY_RETRY_SECS", 0.0)
    chat = CountingChat(edit_interval_secs=0.0)
    for _ in range(4):
        chat.fail_next("send_audio", ChatUnavailable("Bad Gateway"))
    metadata = DeskMetadata()
    metadata.lists[TRACK_ID] = single(TRACK_ID)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse_network)) as http:
        # When a track is pasted and its download finishes during the outage
        async with open_desk(database, tmp_path, http, chat, metadata) as desk:
            await desk.say(f"https://open.spotify.com/track/{TRACK_ID}")
            [view] = await desk.imports.recent("fake", "u1")
            await desk.finish(view.jobs[0].job_id)
            await until(lambda: chat.attempts >= 4, "four posting attempts")
            await desk.conversation.wait_idle()

        # And the bot is restarted once the platform is back
        async with open_desk(database, tmp_path, http, chat, metadata) as desk:
            await desk.conversation.resume()
            await desk.conversation.wait_idle()

    # Then the person has the audio, once
    assert len(chat.audio(DESK_PRIVATE)) == 1
