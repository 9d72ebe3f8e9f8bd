"""The job queue port: how the core hands download jobs to whatever runs them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class JobQueue(Protocol):
    """Sends download jobs to the workers; implemented in workers/ on Dramatiq."""

    def enqueue(self, job_ids: Sequence[int], *, delay_secs: float = 0) -> None:
        """Queue each job; a job queued twice is harmless (claims are exclusive)."""
        ...
