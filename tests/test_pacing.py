"""Outgoing pacing: a burst, then a steady rate per chat; a minute window per group."""

from __future__ import annotations

from bot.pacing import Pacer, PacingRules

RULES = PacingRules(chat_burst=3, chat_interval_secs=1.0, group_per_minute=5)


def test_a_chat_gets_its_burst_at_once_then_one_send_per_interval() -> None:
    pacer = Pacer(RULES)

    times = [pacer.reserve("chat", is_group=False, now=100.0) for _ in range(6)]

    assert times == [100.0, 100.0, 100.0, 101.0, 102.0, 103.0]


def test_chats_do_not_wait_for_each_other() -> None:
    pacer = Pacer(RULES)
    for _ in range(10):
        pacer.reserve("busy", is_group=False, now=100.0)

    assert pacer.reserve("quiet", is_group=False, now=100.0) == 100.0


def test_a_group_never_sends_more_than_its_count_in_any_minute() -> None:
    pacer = Pacer(RULES)

    times = [pacer.reserve("group", is_group=True, now=100.0) for _ in range(12)]

    for start in times:
        assert len([t for t in times if start <= t < start + 60.0]) <= RULES.group_per_minute
    assert times[-1] > 100.0 + 60.0


def test_a_flood_wait_holds_the_chat_until_its_deadline() -> None:
    pacer = Pacer(RULES)

    pacer.block("chat", 30.0, now=100.0)

    assert pacer.reserve("chat", is_group=False, now=100.0) == 130.0
    assert pacer.reserve("other", is_group=False, now=100.0) == 100.0
