"""The benchmark's one error."""

from __future__ import annotations


class BenchError(Exception):
    """Raised when a benchmark cannot go on: a stand-in did not start or a run went wrong."""
