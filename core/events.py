"""Progress events: published on `jobs:{job_id}`, in-process when embedded, Redis when scaled.

Events only hurry things along; the database always holds each job's latest state,
so a subscriber that misses an event still finds the truth by reading the row.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

from core.errors import QueueUnavailable
from core.types import JobEvent

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

_log = logging.getLogger(__name__)

CHANNEL_PREFIX = "jobs:"
# Events a slow subscriber may fall behind by before the oldest are dropped.
SUBSCRIBER_BUFFER = 10_000


def channel_for(job_id: int) -> str:
    """The pub/sub channel of one job."""
    return f"{CHANNEL_PREFIX}{job_id}"


class EventBus(Protocol):
    """Publishes job events and hands every subscriber all of them."""

    async def publish(self, event: JobEvent) -> None:
        """Send one event to every subscriber."""
        ...

    def subscribe(self) -> contextlib.AbstractAsyncContextManager[AsyncIterator[JobEvent]]:
        """Receive every event published after the subscription started."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class InProcessBus:
    """An event bus inside one process; safe to publish from any thread or event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[JobEvent]]] = []

    async def publish(self, event: JobEvent) -> None:
        self.publish_nowait(event)

    def publish_nowait(self, event: JobEvent) -> None:
        """Deliver `event` to every subscriber's queue on that subscriber's own loop."""
        with self._lock:
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            with contextlib.suppress(RuntimeError):  # the subscriber's loop has closed
                loop.call_soon_threadsafe(_put_dropping_oldest, queue, event)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[JobEvent]]:
        entry = (asyncio.get_running_loop(), asyncio.Queue[JobEvent](SUBSCRIBER_BUFFER))
        with self._lock:
            self._subscribers.append(entry)
        try:
            yield _drain(entry[1])
        finally:
            with self._lock:
                self._subscribers.remove(entry)

    async def close(self) -> None:
        with self._lock:
            self._subscribers.clear()


def _put_dropping_oldest(queue: asyncio.Queue[JobEvent], event: JobEvent) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(event)


async def _drain(queue: asyncio.Queue[JobEvent]) -> AsyncIterator[JobEvent]:
    while True:
        yield await queue.get()


class RedisBus:
    """An event bus on Redis pub/sub, shared by every process using the same Redis.

    A Redis connection belongs to the event loop that opened it, so one client is
    kept per loop (a worker's actors run on a loop of their own).
    """

    def __init__(self, url: str) -> None:
        # Imported here, not at the top: redis takes about 0.1 s to load, and only a process
        # with REDIS_URL set builds this bus.
        from redis.asyncio import Redis
        from redis.exceptions import RedisError

        self.url = url
        self._connect = Redis.from_url
        # What the client raises when Redis cannot be reached or answers with an error.
        self._faults: tuple[type[Exception], ...] = (RedisError, OSError)
        self._clients: dict[asyncio.AbstractEventLoop, Redis] = {}

    def _client(self) -> Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._connect(self.url)
            self._clients[loop] = client
        return client

    async def ping(self) -> None:
        """Raise QueueUnavailable when Redis does not answer."""
        try:
            await self._client().ping()
        except self._faults as exc:
            raise QueueUnavailable(str(exc)) from exc

    async def publish(self, event: JobEvent) -> None:
        try:
            await self._client().publish(channel_for(event.job_id), json.dumps(event.to_dict()))
        except self._faults:
            # The row already holds this state; a lost event only delays an edit.
            _log.warning("Could not publish an event of job %s to Redis.", event.job_id)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[JobEvent]]:
        pubsub = self._client().pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.psubscribe(f"{CHANNEL_PREFIX}*")
        except self._faults as exc:
            raise QueueUnavailable(str(exc)) from exc
        try:
            yield _read_pubsub(pubsub, self._faults)
        finally:
            with contextlib.suppress(*self._faults):
                await pubsub.punsubscribe()
            await pubsub.aclose()

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()


async def _read_pubsub(
    pubsub: PubSub, faults: tuple[type[Exception], ...]
) -> AsyncIterator[JobEvent]:
    while True:
        try:
            message = await pubsub.get_message(timeout=5.0)
        except faults:
            _log.warning("Lost the Redis event subscription; retrying in 1 s.")
            await asyncio.sleep(1)
            continue
        if message is None or message.get("type") != "pmessage":
            continue
        try:
            yield JobEvent.from_dict(json.loads(message["data"]))
        except (ValueError, KeyError, TypeError):
            _log.warning("Ignored a malformed event on %s.", message.get("channel"))
