"""Outgoing pacing: wait for a chat's turn so the platform never has to answer 429.

Each call reserves a send time and sleeps until it, so concurrent senders queue fairly
without a lock. Three limits apply at once: a burst then a steady rate per chat, a count
per minute in group chats, and a steady rate over all chats. A flood wait the platform
asked for (`block`) holds every later call to that chat until its deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

_log = logging.getLogger(__name__)

# A group's minute window is counted with this margin, for sends the global rate delays.
_WINDOW_MARGIN_SECS = 1.0


@dataclass(frozen=True)
class PacingRules:
    """How fast one bot may post; every number is a little under the platform's own."""

    chat_burst: int = 3
    chat_interval_secs: float = 1.05
    group_per_minute: int = 19
    global_burst: int = 5
    global_interval_secs: float = 0.05


class Pacer:
    """Hands out send times per chat that keep within `PacingRules`."""

    def __init__(self, rules: PacingRules | None = None) -> None:
        self.rules = rules or PacingRules()
        # Theoretical arrival times of the generic cell rate algorithm, per chat and overall.
        self._chat_tat: dict[str, float] = {}
        self._global_tat = 0.0
        self._group_sends: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}
        self._last_send: dict[str, float] = {}

    def reserve(self, chat_key: str, *, is_group: bool, now: float | None = None) -> float:
        """Reserve the earliest time this chat may post and return it (monotonic seconds)."""
        rules = self.rules
        now = time.monotonic() if now is None else now
        chat_tat = max(self._chat_tat.get(chat_key, now), now)
        send_at = max(
            now,
            chat_tat - (rules.chat_burst - 1) * rules.chat_interval_secs,
            self._blocked_until.get(chat_key, 0.0),
            self._last_send.get(chat_key, 0.0),
        )

        # A group may post only so often in any minute.
        window = self._group_sends.setdefault(chat_key, deque()) if is_group else None
        if window is not None:
            while window and window[0] + 60.0 + _WINDOW_MARGIN_SECS <= send_at:
                window.popleft()
            if len(window) >= rules.group_per_minute:
                oldest = window[-rules.group_per_minute]
                send_at = max(send_at, oldest + 60.0 + _WINDOW_MARGIN_SECS)
            window.append(send_at)

        self._chat_tat[chat_key] = max(chat_tat, send_at) + rules.chat_interval_secs
        self._last_send[chat_key] = send_at
        return send_at

    def reserve_global(self, now: float | None = None) -> float:
        """Reserve a send time under the rate over all chats, counted from `now`."""
        rules = self.rules
        now = time.monotonic() if now is None else now
        global_tat = max(self._global_tat, now)
        send_at = max(now, global_tat - (rules.global_burst - 1) * rules.global_interval_secs)
        self._global_tat = global_tat + rules.global_interval_secs
        return send_at

    async def wait_turn(self, chat_key: str, *, is_group: bool) -> None:
        """Sleep until this chat may post.

        The chat's own turn is reserved first; the global one only once that turn has come,
        so a chat held by a long flood wait never holds up the others.
        """
        delay = self.reserve(chat_key, is_group=is_group) - time.monotonic()
        if delay > 0:
            _log.debug("Pacing chat %s: waiting %.2f s", chat_key, delay)
            await asyncio.sleep(delay)
        delay = self.reserve_global() - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def block(self, chat_key: str, secs: float, *, now: float | None = None) -> None:
        """Hold every later call to this chat for `secs` seconds (a flood wait)."""
        until = (time.monotonic() if now is None else now) + secs
        self._blocked_until[chat_key] = max(self._blocked_until.get(chat_key, 0.0), until)
