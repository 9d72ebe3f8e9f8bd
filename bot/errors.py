"""Chat platform errors, as adapters translate them.

The tree::

    ChatError
    ├── RateLimited     (carries retry_after_secs)
    ├── NotModified
    ├── TooLarge
    ├── Forbidden
    └── MessageGone
"""

from __future__ import annotations


class ChatError(Exception):
    """Base of every error a chat adapter raises."""


class RateLimited(ChatError):
    """Raised when the platform asks us to wait before the next call to that chat."""

    def __init__(self, retry_after_secs: float) -> None:
        super().__init__(f"retry after {retry_after_secs} s")
        self.retry_after_secs = retry_after_secs


class NotModified(ChatError):
    """Raised when an edit would not change the message; callers treat it as success."""


class TooLarge(ChatError):
    """Raised when the platform refuses a file for its size."""


class Forbidden(ChatError):
    """Raised when the bot may not post in that chat (blocked, kicked, no permission)."""


class MessageGone(ChatError):
    """Raised when the message to edit no longer exists."""
