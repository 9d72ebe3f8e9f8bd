"""The progress relay: paced edits, latest state only, the final state always."""

from __future__ import annotations

import asyncio
import itertools

from bot.errors import RateLimited
from bot.port import ChatRef, MessageRef
from bot.progress import ProgressRelay
from tests.fakes import FakeChat, FakeClock

CHAT = ChatRef("fake", "7", True)


async def sent_reply(chat: FakeChat, relay: ProgressRelay, text: str = "Found") -> MessageRef:
    message = await chat.send_text(CHAT, text)
    relay.track(message, text)
    return message


def relay_with_chat(interval: float = 3.0) -> tuple[FakeChat, ProgressRelay, FakeClock]:
    clock = FakeClock()
    chat = FakeChat(clock=clock, edit_interval_secs=interval)
    return chat, ProgressRelay(chat, clock=clock, sleep=clock.sleep), clock


async def test_updates_faster_than_the_interval_show_only_the_latest() -> None:
    chat, relay, _ = relay_with_chat(interval=3.0)
    reply = await sent_reply(chat, relay)

    for percent in range(0, 100, 10):
        relay.update(reply, f"Downloading {percent}%")
    relay.update(reply, "Done", final=True)
    await relay.settle(reply)

    [shown] = chat.in_chat(CHAT)
    assert [text for _, text in shown.history] == ["Found", "Done"]


async def test_edits_are_at_least_an_interval_apart() -> None:
    chat, relay, clock = relay_with_chat(interval=3.0)
    reply = await sent_reply(chat, relay)

    for percent in (10, 20, 30):
        relay.update(reply, f"Downloading {percent}%")
        await relay.settle(reply)
        await clock.sleep(1.0)
    relay.update(reply, "Done", final=True)
    await relay.settle(reply)

    [shown] = chat.in_chat(CHAT)
    times = [at for at, _ in shown.history]
    assert all(later - earlier >= 3.0 for earlier, later in itertools.pairwise(times))
    assert shown.text == "Done"


async def test_a_state_equal_to_the_shown_one_is_not_sent_again() -> None:
    chat, relay, _ = relay_with_chat()
    reply = await sent_reply(chat, relay, "Downloading 50%")

    relay.update(reply, "Downloading 50%")
    await relay.settle(reply)

    assert relay.edits == 0
    assert chat.in_chat(CHAT)[0].edits == 0


async def test_a_flood_wait_holds_edits_until_its_deadline_then_sends_the_latest() -> None:
    chat, relay, clock = relay_with_chat(interval=1.0)
    reply = await sent_reply(chat, relay)
    chat.fail_next("edit_text", RateLimited(30))
    start = clock()

    relay.update(reply, "Downloading 10%")
    relay.update(reply, "Done", final=True)
    await relay.settle(reply)

    [shown] = chat.in_chat(CHAT)
    assert shown.text == "Done"
    assert shown.history[-1][0] - start >= 30


async def test_a_deleted_reply_stops_its_edits_without_raising() -> None:
    chat, relay, _ = relay_with_chat(interval=0.0)
    reply = await sent_reply(chat, relay)
    chat.delete(reply)

    relay.update(reply, "Downloading 10%")
    await relay.settle(reply)
    relay.update(reply, "Done", final=True)
    await relay.settle(reply)

    assert relay.is_gone(reply)
    assert relay.edits == 0


async def test_the_final_state_is_sent_even_when_it_follows_an_edit_at_once() -> None:
    chat, relay, clock = relay_with_chat(interval=3.0)
    reply = await sent_reply(chat, relay)
    await clock.sleep(5)

    relay.update(reply, "Downloading 90%")
    await asyncio.sleep(0)
    relay.update(reply, "Done", final=True)
    await relay.settle(reply)

    [shown] = chat.in_chat(CHAT)
    assert [text for _, text in shown.history] == ["Found", "Downloading 90%", "Done"]


async def test_updates_after_the_final_state_are_ignored() -> None:
    chat, relay, _ = relay_with_chat(interval=0.0)
    reply = await sent_reply(chat, relay)

    relay.update(reply, "Done", final=True)
    relay.update(reply, "Downloading 10%")
    await relay.settle(reply)

    assert chat.in_chat(CHAT)[0].text == "Done"
