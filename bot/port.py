"""The neutral chat port: what the conversation logic needs from any chat platform.

Adapters (Telegram, Discord) implement `ChatPort` and only translate: platform
events into `IncomingMessage`, port calls into platform calls, platform errors
into the errors of `bot.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class ChatRef:
    """A chat (private chat, group, channel or DM) on one platform."""

    platform: str
    chat_id: str
    is_private: bool


@dataclass(frozen=True)
class MessageRef:
    """A message the bot sent, so it can be edited later."""

    chat: ChatRef
    message_id: str


@dataclass(frozen=True)
class Button:
    """An inline choice under a message; `data` comes back in `IncomingMessage.button`."""

    label: str
    data: str


@dataclass(frozen=True)
class IncomingMessage:
    """A platform message or command, reduced to what the conversation reads.

    `command` is the command name without slash or bot mention (`get`, `status`),
    or None for plain text; `text` is the rest. `hidden_urls` holds link targets
    the platform keeps outside the text (Telegram `text_link` entities).
    """

    chat: ChatRef
    user_id: str
    user_name: str
    text: str
    message_id: str | None = None
    command: str | None = None
    hidden_urls: tuple[str, ...] = ()
    button: str | None = None
    addressed: bool = False


@dataclass(frozen=True)
class AudioFile:
    """A finished file to post, with what the platform shows beside it."""

    path: Path
    title: str
    performer: str
    duration_secs: int
    thumbnail: bytes | None = None
    # An id the platform gave for this file before (Telegram file_id), to re-send without upload.
    remembered_id: str | None = None


@dataclass(frozen=True)
class SentAudio:
    """What posting an audio file produced."""

    message: MessageRef
    # The platform's id for the uploaded file, worth remembering (Telegram file_id).
    file_id: str | None = None


@dataclass
class ChatLimits:
    """What a chat allows, for pacing and delivery decisions."""

    upload_limit_bytes: int
    edit_interval_secs: float = 3.0
    extra: dict[str, object] = field(default_factory=dict)


class ChatPort(Protocol):
    """What the conversation logic calls on a platform."""

    platform: str
    # This bot's own id on the platform (file ids are only valid for the bot they were
    # given to); known once the adapter has started.
    bot_id: str

    async def send_text(
        self,
        chat: ChatRef,
        text: str,
        *,
        reply_to: str | None = None,
        buttons: list[Button] | None = None,
    ) -> MessageRef:
        """Post a message; raises `bot.errors.ChatError` subclasses."""
        ...

    async def edit_text(
        self, message: MessageRef, text: str, *, buttons: list[Button] | None = None
    ) -> None:
        """Replace a message's text; raises NotModified, RateLimited, MessageGone, Forbidden."""
        ...

    async def send_audio(
        self, chat: ChatRef, audio: AudioFile, *, reply_to: str | None = None
    ) -> SentAudio:
        """Post an audio file; raises TooLarge when the platform refuses its size."""
        ...

    def limits(self, chat: ChatRef) -> ChatLimits:
        """The chat's upload limit and edit pacing."""
        ...


@dataclass(frozen=True)
class Command:
    """A command the bot offers in the platform's menu (`name` without slash).

    `argument` names the text the command needs after it (`link` for `/get`), with
    `argument_help` as its one-line description; platforms with typed commands (Discord's
    slash commands) show it as a required option, others read it as the rest of the text.
    """

    name: str
    description: str
    argument: str | None = None
    argument_help: str = ""
