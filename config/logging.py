"""Logging set-up for every SoundForge process, with secrets kept out of the lines."""

from __future__ import annotations

import logging
import re

# Bot API URLs carry the token in the path: https://host/bot<token>/method.
_TOKEN_PATTERNS = (
    re.compile(r"(/(?:file/)?bot)[0-9]+:[A-Za-z0-9_-]+"),
    re.compile(r"(Bearer |Bot )[A-Za-z0-9._-]+"),
    re.compile(r"((?:access_token|refresh_token|client_secret)=)[^&\s]+"),
    # Discord interaction and webhook URLs carry a token after the id, and discord.py's
    # debug lines print gateway payloads (an interaction's `token` field) as dicts.
    re.compile(r"(/(?:webhooks|interactions)/[0-9]+/)[A-Za-z0-9._-]+"),
    re.compile(r"(['\"]token['\"]: ['\"])[^'\"]+"),
)


def redact(text: str) -> str:
    """Return `text` with bot tokens, bearer tokens and secrets replaced by `***`."""
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(r"\1***", text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's final message so no token reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


def configure_logging(level: str = "INFO") -> None:
    """Send log lines to stderr, one sentence each, with secrets redacted."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO; the redacting filter keeps tokens out of them.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # Alembic announces each plugin and migration step at INFO; ours say it in one line.
    logging.getLogger("alembic").setLevel(logging.WARNING)
