"""The Dramatiq broker and the `download` actor declared on it.

The broker is built from the settings, never at import time: a `StubBroker`
inside the process when `REDIS_URL` is unset, a `RedisBroker` otherwise. redis takes about
0.1 s to import, so it is loaded only where `REDIS_URL` is set.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO

from config.settings import Settings
from core.errors import QueueUnavailable

_log = logging.getLogger(__name__)

QUEUE_NAME = "download"
ACTOR_NAME = "download"
# The spotdl runner enforces its own limits; Dramatiq's must never cut a batch short.
ACTOR_TIME_LIMIT_MS = 24 * 3600 * 1000

DownloadHandler = Callable[[int], Awaitable[None]]


def build_broker(settings: Settings) -> dramatiq.Broker:
    """A StubBroker (embedded) or RedisBroker (scaled), with asyncio actors enabled."""
    broker: dramatiq.Broker
    if settings.redis_url:
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=settings.redis_url)
    else:
        broker = StubBroker()
    broker.add_middleware(AsyncIO())
    return broker


async def _not_here(job_id: int) -> None:
    raise RuntimeError(f"job {job_id} reached a process that only sends jobs")


def declare_download_actor(
    broker: dramatiq.Broker, handler: DownloadHandler | None = None
) -> dramatiq.Actor:  # type: ignore[type-arg]
    """Declare the `download` actor on `broker`, running `handler` for each message.

    A process that only sends jobs declares it without a handler.
    """

    async def download(job_id: int) -> None:
        await (handler or _not_here)(job_id)

    return dramatiq.Actor(
        download,
        broker=broker,
        actor_name=ACTOR_NAME,
        queue_name=QUEUE_NAME,
        priority=0,
        # Retries of passing faults are ours (per job, with backoff), not Dramatiq's.
        options={"max_retries": 0, "time_limit": ACTOR_TIME_LIMIT_MS},
    )


class DramatiqQueue:
    """The core's JobQueue port on a Dramatiq actor."""

    def __init__(self, actor: dramatiq.Actor) -> None:  # type: ignore[type-arg]
        self.actor = actor
        self._faults = _unreachable_errors(actor.broker)

    def enqueue(self, job_ids: Sequence[int], *, delay_secs: float = 0) -> None:
        delay = int(delay_secs * 1000) or None
        try:
            for job_id in job_ids:
                self.actor.send_with_options(args=(job_id,), delay=delay)
        except self._faults as exc:
            raise QueueUnavailable(str(exc)) from exc
        _log.debug("Queued jobs %s.", list(job_ids))


def _unreachable_errors(broker: dramatiq.Broker) -> tuple[type[Exception], ...]:
    """What sending a message on `broker` raises when its server cannot be reached."""
    if isinstance(broker, StubBroker):
        return (OSError,)
    from redis.exceptions import RedisError

    return (RedisError, OSError)


def check_redis(settings: Settings) -> None:
    """Raise QueueUnavailable when REDIS_URL is set and Redis does not answer."""
    if not settings.redis_url:
        return
    import redis
    from redis.exceptions import RedisError

    try:
        redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3).ping()
    except (RedisError, OSError) as exc:
        raise QueueUnavailable(str(exc)) from exc
