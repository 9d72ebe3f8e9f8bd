"""A small in-memory `ChatPort` for unit tests, and a clock that only moves when slept on."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass, field

from bot.errors import ChatError, FileIdRejected, MessageGone, NotModified, TooLarge
from bot.port import AudioFile, Button, ChatLimits, ChatRef, MessageRef, SentAudio


class FakeClock:
    """Virtual time: `sleep` advances it at once, so pacing can be checked without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, secs: float) -> None:
        self.now += max(0.0, secs)
        await asyncio.sleep(0)


@dataclass
class ShownMessage:
    """One message as the fake chat shows it."""

    chat: ChatRef
    message_id: str
    text: str = ""
    buttons: list[Button] | None = None
    history: list[tuple[float, str]] = field(default_factory=list)
    audio: AudioFile | None = None
    file_id: str | None = None
    uploaded: bool = False
    reply_to: str | None = None
    deleted: bool = False

    @property
    def edits(self) -> int:
        return max(0, len(self.history) - 1)


class FakeChat:
    """A `ChatPort` that keeps every chat's messages; tests queue failures with `fail_next`."""

    platform = "fake"
    bot_id = "fake-bot"

    def __init__(
        self,
        *,
        clock: FakeClock | None = None,
        upload_limit_bytes: int = 50 * 1024 * 1024,
        edit_interval_secs: float = 3.0,
    ) -> None:
        self.clock = clock or FakeClock()
        self.upload_limit_bytes = upload_limit_bytes
        self.edit_interval_secs = edit_interval_secs
        self.messages: list[ShownMessage] = []
        self.known_file_ids: set[str] = set()
        self.refuse_size_above: int | None = None
        self._failures: deque[tuple[str, ChatError]] = deque()
        self._ids = itertools.count(1)
        self.changed = asyncio.Event()

    # -- test controls -----------------------------------------------------------------

    def fail_next(self, method: str, error: ChatError) -> None:
        """Make the next call of `method` ("send_text", "edit_text", "send_audio") raise."""
        self._failures.append((method, error))

    def delete(self, message: MessageRef) -> None:
        self._find(message).deleted = True

    def in_chat(self, chat: ChatRef) -> list[ShownMessage]:
        return [m for m in self.messages if m.chat == chat and not m.deleted]

    def texts(self, chat: ChatRef) -> list[str]:
        return [m.text for m in self.in_chat(chat) if m.audio is None]

    def audio(self, chat: ChatRef) -> list[ShownMessage]:
        return [m for m in self.in_chat(chat) if m.audio is not None]

    # -- ChatPort ----------------------------------------------------------------------

    def limits(self, chat: ChatRef) -> ChatLimits:
        return ChatLimits(self.upload_limit_bytes, self.edit_interval_secs)

    async def send_text(
        self,
        chat: ChatRef,
        text: str,
        *,
        reply_to: str | None = None,
        buttons: list[Button] | None = None,
    ) -> MessageRef:
        self._maybe_fail("send_text")
        shown = ShownMessage(chat, str(next(self._ids)), text, buttons, reply_to=reply_to)
        shown.history.append((self.clock(), text))
        self.messages.append(shown)
        self._changed()
        return MessageRef(chat, shown.message_id)

    async def edit_text(
        self, message: MessageRef, text: str, *, buttons: list[Button] | None = None
    ) -> None:
        self._maybe_fail("edit_text")
        shown = self._find(message)
        if shown.deleted:
            raise MessageGone("message to edit not found")
        if shown.text == text and shown.buttons == buttons:
            raise NotModified("message is not modified")
        shown.text, shown.buttons = text, buttons
        shown.history.append((self.clock(), text))
        self._changed()

    async def send_audio(
        self, chat: ChatRef, audio: AudioFile, *, reply_to: str | None = None
    ) -> SentAudio:
        self._maybe_fail("send_audio")
        if audio.remembered_id is not None:
            if audio.remembered_id not in self.known_file_ids:
                raise FileIdRejected(audio.remembered_id)
            file_id, uploaded = audio.remembered_id, False
        else:
            size = audio.path.stat().st_size
            if self.refuse_size_above is not None and size > self.refuse_size_above:
                raise TooLarge("Request Entity Too Large")
            file_id, uploaded = f"file-{next(self._ids)}", True
            self.known_file_ids.add(file_id)
        shown = ShownMessage(
            chat, str(next(self._ids)), audio=audio, file_id=file_id, uploaded=uploaded
        )
        shown.reply_to = reply_to
        self.messages.append(shown)
        self._changed()
        return SentAudio(MessageRef(chat, shown.message_id), file_id)

    # -- inside ------------------------------------------------------------------------

    def _maybe_fail(self, method: str) -> None:
        if self._failures and self._failures[0][0] == method:
            raise self._failures.popleft()[1]

    def _find(self, message: MessageRef) -> ShownMessage:
        for shown in self.messages:
            if shown.chat == message.chat and shown.message_id == message.message_id:
                return shown
        raise MessageGone("message to edit not found")

    def _changed(self) -> None:
        self.changed.set()
