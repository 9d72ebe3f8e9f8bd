"""Chat platform errors, as adapters translate them.

The tree::

    ChatError
    ├── RateLimited     (carries retry_after_secs)
    ├── NotModified
    ├── TooLarge
    ├── Forbidden
    ├── MessageGone
    ├── FileIdRejected  (a remembered file id the platform no longer knows)
    ├── ChatUnavailable (the platform did not answer, or answered with a server error)
    └── InvalidChatToken
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


class FileIdRejected(ChatError):
    """Raised when the platform refuses a remembered file id; upload the file again."""

    def __init__(self, file_id: str) -> None:
        super().__init__(f"file id {file_id} rejected")
        self.file_id = file_id


class ChatUnavailable(ChatError):
    """Raised when the platform cannot be reached or fails on its side; worth a retry."""


class InvalidChatToken(ChatError):
    """Raised when the platform rejects the bot token at start-up."""

    def __init__(self, variable: str, platform: str) -> None:
        super().__init__(f"{platform} rejected {variable}")
        self.variable = variable
        self.platform = platform

    @property
    def user_message(self) -> str:
        """The one sentence the operator sees."""
        return (
            f"{self.platform} rejected the bot token in {self.variable}; copy it again from "
            "the platform's bot settings and restart."
        )
