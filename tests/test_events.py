"""Progress events reach every subscriber, in-process and across processes through Redis."""

from __future__ import annotations

import asyncio
import threading

from core.events import InProcessBus, RedisBus
from core.types import JobEvent, JobStatus


async def next_event(events) -> JobEvent:
    return await asyncio.wait_for(anext(events), 5)


async def test_in_process_events_published_from_another_thread_arrive() -> None:
    bus = InProcessBus()
    async with bus.subscribe() as first, bus.subscribe() as second:
        # when a worker thread on its own loop publishes
        event = JobEvent(7, JobStatus.DOWNLOADING, 45, "Downloading")
        thread = threading.Thread(target=lambda: asyncio.run(bus.publish(event)))
        thread.start()
        thread.join()

        # then both subscribers get it
        assert await next_event(first) == event
        assert await next_event(second) == event


async def test_redis_events_cross_between_clients(redis_url: str) -> None:
    publisher, subscriber = RedisBus(redis_url), RedisBus(redis_url)
    try:
        async with subscriber.subscribe() as events:
            await publisher.publish(JobEvent(3, JobStatus.COMPLETED, 100, "done", request_id=9))
            got = await next_event(events)
        assert got == JobEvent(3, JobStatus.COMPLETED, 100, "done", request_id=9)
    finally:
        await publisher.close()
        await subscriber.close()


async def test_a_lost_redis_does_not_break_publishing() -> None:
    bus = RedisBus("redis://127.0.0.1:1/0")
    # the row holds the state; publishing only logs that the event was lost
    await bus.publish(JobEvent(1, JobStatus.QUEUED, 0))
    await bus.close()
