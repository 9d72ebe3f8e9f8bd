"""The progress relay: keeps the latest text of each reply and edits it at a gentle pace.

Each reply is edited at most once per its chat's interval, always with the newest text;
the final text is always sent. "Not modified" counts as success; a flood wait stops edits
to that chat until its deadline; a deleted reply stops its edits (delivery goes on, it
does not pass through here).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.errors import ChatError, ChatUnavailable, MessageGone, NotModified, RateLimited
from bot.port import Button, ChatPort, MessageRef

_log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass
class _Reply:
    """What the relay knows about one reply."""

    message: MessageRef
    shown: str
    shown_buttons: list[Button] | None = None
    latest: str = ""
    latest_buttons: list[Button] | None = None
    edited_at: float = 0.0
    final: bool = False
    gone: bool = False
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> bool:
        return not self.gone and (
            self.latest != self.shown or self.latest_buttons != self.shown_buttons
        )


class ProgressRelay:
    """Paces the edits of every tracked reply through one `ChatPort`."""

    def __init__(
        self, port: ChatPort, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self._port = port
        self._clock = clock
        self._sleep = sleep
        self._replies: dict[MessageRef, _Reply] = {}
        self._chat_blocked_until: dict[str, float] = {}
        self._gone: set[MessageRef] = set()
        self.edits = 0

    def track(self, message: MessageRef, shown: str, buttons: list[Button] | None = None) -> None:
        """Start relaying for a reply that shows `shown` now (it was just sent)."""
        self._replies[message] = _Reply(
            message,
            shown=shown,
            shown_buttons=buttons,
            latest=shown,
            latest_buttons=buttons,
            edited_at=self._clock(),
        )

    def is_gone(self, message: MessageRef) -> bool:
        """True when the reply was deleted and is no longer edited."""
        return message in self._gone

    def update(
        self,
        message: MessageRef,
        text: str,
        *,
        final: bool = False,
        buttons: list[Button] | None = None,
    ) -> None:
        """Make `text` the reply's newest state; `final` once no other state will follow."""
        if message in self._gone:
            return
        reply = self._replies.get(message)
        if reply is None:
            # A reply from before a restart: nothing is known of when it was last edited.
            reply = _Reply(message, shown="")
            self._replies[message] = reply
        if reply.final:
            return
        reply.latest, reply.latest_buttons, reply.final = text, buttons, final
        if reply.task is None or reply.task.done():
            reply.settled.clear()
            reply.task = asyncio.create_task(
                self._pump(reply),
                name=f"progress-relay:{message.chat.chat_id}:{message.message_id}",
            )

    async def settle(self, message: MessageRef) -> None:
        """Wait until the reply shows its newest state (or can no longer be edited)."""
        reply = self._replies.get(message)
        if reply is None or reply.task is None:
            return
        await reply.settled.wait()

    async def close(self) -> None:
        """Stop every pending edit."""
        tasks = [reply.task for reply in self._replies.values() if reply.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._replies.clear()

    async def _pump(self, reply: _Reply) -> None:
        """Edit `reply` until it shows its newest state, pacing each edit."""
        chat_id = reply.message.chat.chat_id
        interval = self._port.limits(reply.message.chat).edit_interval_secs
        try:
            while reply.pending:
                # Wait for the reply's interval and for any flood wait of its chat.
                ready_at = max(
                    reply.edited_at + interval, self._chat_blocked_until.get(chat_id, 0.0)
                )
                delay = ready_at - self._clock()
                if delay > 0:
                    await self._sleep(delay)
                    continue
                await self._edit(reply)
        finally:
            reply.settled.set()
            if reply.final and not reply.pending:
                self._replies.pop(reply.message, None)

    async def _edit(self, reply: _Reply) -> None:
        text, buttons = reply.latest, reply.latest_buttons
        message = reply.message
        reply.edited_at = self._clock()
        try:
            await self._port.edit_text(message, text, buttons=buttons)
            self.edits += 1
        except NotModified:
            pass
        except RateLimited as exc:
            until = self._clock() + exc.retry_after_secs
            self._chat_blocked_until[message.chat.chat_id] = until
            _log.warning(
                "Edits to chat %s wait %.0f s (flood control)",
                message.chat.chat_id,
                exc.retry_after_secs,
            )
            return
        except MessageGone:
            _log.info(
                "Reply %s in chat %s is gone; no more edits to it",
                message.message_id,
                message.chat.chat_id,
            )
            reply.gone = True
            self._gone.add(message)
            return
        except ChatUnavailable as exc:
            _log.warning(
                "Editing reply %s in chat %s failed, trying again: %s",
                message.message_id,
                message.chat.chat_id,
                exc,
            )
            return
        except ChatError as exc:
            _log.warning(
                "Editing reply %s in chat %s failed; no more edits to it: %s",
                message.message_id,
                message.chat.chat_id,
                exc,
            )
            reply.gone = True
            self._gone.add(message)
            return
        reply.shown, reply.shown_buttons = text, buttons
