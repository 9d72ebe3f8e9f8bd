"""The download handler's own resources, on the worker's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from config.settings import Settings
from core.events import InProcessBus
from storage.db import Database
from workers.download import DownloadHandler


class NoQueue:
    def enqueue(self, job_ids: object, *, delay_secs: float = 0) -> None:
        raise AssertionError("nothing should be queued")


@pytest.mark.timeout(30)
async def test_first_uses_from_two_coroutines_share_one_database(
    runner_settings: Callable[..., Settings],
) -> None:
    # given a migrated database and a handler that has not opened it yet
    settings = runner_settings()
    database = Database(settings.database_url)
    await database.open()
    await database.close()
    handler = DownloadHandler(settings, InProcessBus(), NoQueue())

    # when recovery and a first message both need it at once on the same loop
    first, second = await asyncio.gather(handler.recover(), handler._store())

    # then neither blocks the loop and both see the same database
    assert first == []
    assert second.db is (await handler._store()).db
    await handler.close()
