"""The neutral conversation: what the bot says and does, on any chat platform.

An adapter hands every `IncomingMessage` to `Conversation.handle` and implements the
`ChatPort` the conversation answers through. A link becomes a request with one reply,
kept up to date through the progress relay as job events arrive (and as a periodic
look at the database shows, since no event is guaranteed); each finished track is
posted as audio, or as a signed link when it is over the chat's limit. Requests left
open by a crash are picked up again by `resume`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bot.errors import (
    ChatError,
    ChatUnavailable,
    FileIdRejected,
    Forbidden,
    RateLimited,
    TooLarge,
)
from bot.port import AudioFile, Button, ChatPort, ChatRef, Command, IncomingMessage, MessageRef
from bot.progress import ProgressRelay
from bot.render import (
    HELP_TEXT,
    QUALITY_LABELS,
    render_cancelled,
    render_found,
    render_link_delivery,
    render_progress,
    render_quality_prompt,
    render_quality_set,
    render_status,
    track_name,
)
from bot.thumbnail import cover_thumbnail
from config.settings import Quality
from core.errors import SoundForgeError
from core.events import EventBus
from core.service import ImportService, JobView, Requester, RequestView
from core.types import JobStatus
from storage.chat import ChatMemory

_log = logging.getLogger(__name__)

COMMANDS: tuple[Command, ...] = (
    Command(
        "get",
        "Fetch a Spotify track, album, playlist or artist link",
        argument="link",
        argument_help="A Spotify link (open.spotify.com or spotify.link)",
    ),
    Command("status", "Your running and recent requests"),
    Command("quality", "Choose the audio quality"),
    Command("cancel", "Stop your waiting and running downloads"),
    Command("help", "What this bot does"),
)

# Links read from one message; more are ignored with a note.
MAX_LINKS_PER_MESSAGE = 5
# How often tracked requests are read from the database even without events.
SWEEP_INTERVAL_SECS = 5.0
# Attempts at posting one file when the platform is briefly unavailable.
DELIVERY_ATTEMPTS = 4
DELIVERY_RETRY_SECS = 2.0
# Requests listed by /status.
STATUS_LIMIT = 5
QUALITY_BUTTON_PREFIX = "quality:"

GET_USAGE = "Send /get with a Spotify link, for example /get https://open.spotify.com/track/…"
UNKNOWN_COMMAND = "I don't know that command; /help lists what I can do."

LinkMaker = Callable[[int], str]


@dataclass
class _Tracked:
    """A request whose reply this conversation keeps up to date."""

    request_id: int
    reply: MessageRef
    user_id: str
    reply_to: str | None
    job_ids: set[int] = field(default_factory=set)
    dirty: bool = True
    task: asyncio.Task[None] | None = None


class Conversation:
    """Answers one platform's messages and delivers its requests."""

    def __init__(
        self,
        port: ChatPort,
        imports: ImportService,
        bus: EventBus,
        memory: ChatMemory,
        link_for: LinkMaker,
        *,
        link_ttl_secs: float,
        relay: ProgressRelay | None = None,
        sweep_interval_secs: float = SWEEP_INTERVAL_SECS,
    ) -> None:
        self.port = port
        self.imports = imports
        self.bus = bus
        self.memory = memory
        self.link_for = link_for
        self.link_ttl_secs = link_ttl_secs
        self.relay = relay or ProgressRelay(port)
        self.sweep_interval_secs = sweep_interval_secs
        self._tracked: dict[int, _Tracked] = {}
        self._by_job: dict[int, set[int]] = {}
        self._upload_locks: dict[tuple[str, str], asyncio.Lock] = {}

    @property
    def platform(self) -> str:
        return self.port.platform

    @property
    def following(self) -> int:
        """How many requests are not yet at their final state."""
        return len(self._tracked)

    # -- incoming ----------------------------------------------------------------------

    async def handle(self, message: IncomingMessage) -> None:
        """Answer one message; every failure becomes one sentence in the chat."""
        try:
            await self._dispatch(message)
        except SoundForgeError as exc:
            _log.warning("Message in chat %s failed: %s", message.chat.chat_id, exc.detail)
            await self._say(message, exc.user_message)
        except ChatError as exc:
            _log.warning("Could not answer in chat %s: %r", message.chat.chat_id, exc)
        except Exception:
            _log.exception("Answering a message in chat %s failed", message.chat.chat_id)
            await self._say(message, SoundForgeError().user_message)

    async def _dispatch(self, message: IncomingMessage) -> None:
        if message.button is not None:
            await self._on_button(message)
            return
        command = message.command
        if command is None:
            if message.chat.is_private or message.addressed:
                await self._import(message, message.text)
            return
        if command in ("start", "help"):
            await self._say(message, HELP_TEXT)
        elif command == "get":
            if not message.text.strip() and not message.hidden_urls:
                await self._say(message, GET_USAGE)
            else:
                await self._import(message, message.text)
        elif command == "status":
            await self._status(message)
        elif command == "quality":
            await self._quality_prompt(message)
        elif command == "cancel":
            await self._cancel(message)
        elif message.chat.is_private:
            await self._say(message, UNKNOWN_COMMAND)

    async def _say(self, message: IncomingMessage, text: str) -> MessageRef | None:
        try:
            return await self.port.send_text(message.chat, text, reply_to=message.message_id)
        except ChatError as exc:
            _log.warning("Could not answer in chat %s: %r", message.chat.chat_id, exc)
            return None

    async def _import(self, message: IncomingMessage, text: str) -> None:
        links = await self.imports.links_in(text, message.hidden_urls)
        requester = Requester(self.platform, message.user_id, message.chat.chat_id)
        quality = await self._quality_for(message.user_id)
        if len(links) > MAX_LINKS_PER_MESSAGE:
            await self._say(
                message, f"I take {MAX_LINKS_PER_MESSAGE} links per message; the rest are left."
            )
        for link in links[:MAX_LINKS_PER_MESSAGE]:
            try:
                started = await self.imports.start(link, requester, quality)
            except SoundForgeError as exc:
                _log.info("Import of %s for chat %s failed: %s", link.url, requester.chat_id, exc)
                await self._say(message, exc.user_message)
                continue
            found = render_found(started.tracklist, quality)
            reply = await self.port.send_text(message.chat, found, reply_to=message.message_id)
            await self.imports.set_reply(started.request_id, reply.message_id)
            self.relay.track(reply, found)
            self._track(
                _Tracked(
                    started.request_id,
                    reply,
                    message.user_id,
                    message.message_id,
                    set(started.job_ids),
                )
            )

    async def _status(self, message: IncomingMessage) -> None:
        views = await self.imports.recent(self.platform, message.user_id, STATUS_LIMIT)
        ahead = {
            view.request_id: await self.imports.queue_ahead(view.request_id)
            for view in views
            if view.status == "open" and not view.finished
        }
        await self._say(message, render_status(views, ahead))

    async def _quality_prompt(self, message: IncomingMessage) -> None:
        current = await self._quality_for(message.user_id)
        buttons = [
            Button(("✓ " if quality is current else "") + label, QUALITY_BUTTON_PREFIX + quality)
            for quality, label in QUALITY_LABELS.items()
        ]
        await self.port.send_text(
            message.chat,
            render_quality_prompt(current),
            reply_to=message.message_id,
            buttons=buttons,
        )

    async def _on_button(self, message: IncomingMessage) -> None:
        data = message.button or ""
        if not data.startswith(QUALITY_BUTTON_PREFIX):
            return
        try:
            quality = Quality(data.removeprefix(QUALITY_BUTTON_PREFIX))
        except ValueError:
            return
        await self.memory.set_quality(self.platform, message.user_id, quality.value)
        _log.info("User %s on %s chose quality %s", message.user_id, self.platform, quality)
        text = render_quality_set(quality)
        if message.message_id is not None:
            with contextlib.suppress(ChatError):
                await self.port.edit_text(MessageRef(message.chat, message.message_id), text)
                return
        await self._say(message, text)

    async def _cancel(self, message: IncomingMessage) -> None:
        cancelled = await self.imports.cancel_user(self.platform, message.user_id)
        _log.info("User %s cancelled jobs %s", message.user_id, cancelled)
        for tracked in [t for t in self._tracked.values() if t.user_id == message.user_id]:
            self._mark_dirty(tracked)
        await self._say(message, render_cancelled(len(cancelled)))

    async def _quality_for(self, user_id: str) -> Quality:
        chosen = await self.memory.quality(self.platform, user_id)
        if chosen:
            with contextlib.suppress(ValueError):
                return Quality(chosen)
        return self.imports.default_quality

    # -- following requests ------------------------------------------------------------

    async def run(self) -> None:
        """Follow job events and sweep the tracked requests, until cancelled."""
        sweeper = asyncio.create_task(self._sweep(), name=f"conversation:{self.platform}:sweep")
        try:
            async with self.bus.subscribe() as events:
                async for event in events:
                    for request_id in list(self._by_job.get(event.job_id, ())):
                        self._mark_dirty(self._tracked[request_id])
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval_secs)
            for tracked in list(self._tracked.values()):
                self._mark_dirty(tracked)

    async def resume(self, left_open: Sequence[RequestView] | None = None) -> int:
        """Pick up this platform's open requests after a restart; returns how many.

        `left_open` is what `ImportService.open_requests` gave before the adapter started:
        read later, it would also hold requests people made since, already followed here.
        Without it the open requests are read now.
        """
        if left_open is None:
            left_open = await self.imports.open_requests(self.platform)
        resumed = 0
        for view in left_open:
            if view.chat_id is None or view.request_id in self._tracked:
                continue
            # The row does not say whether the chat is private; group pacing is the safe one.
            chat = ChatRef(self.platform, view.chat_id, is_private=False)
            if view.reply_message_id is None:
                try:
                    reply = await self.port.send_text(chat, render_progress(view))
                except ChatError as exc:
                    _log.warning("Request %s: could not post a reply: %r", view.request_id, exc)
                    continue
                await self.imports.set_reply(view.request_id, reply.message_id)
            else:
                reply = MessageRef(chat, view.reply_message_id)
            jobs = {job.job_id for job in view.jobs}
            self._track(_Tracked(view.request_id, reply, view.user_id, None, jobs))
            resumed += 1
        if resumed:
            _log.info("Resumed %d open %s requests", resumed, self.platform)
        return resumed

    async def close(self) -> None:
        """Stop following requests; they stay open in the database for `resume`."""
        tasks = [t.task for t in self._tracked.values() if t.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.relay.close()

    async def wait_idle(self) -> None:
        """Wait until no tracked request has work running (for tests and benchmarks)."""
        while any(t.task is not None and not t.task.done() for t in self._tracked.values()):
            await asyncio.gather(
                *(t.task for t in self._tracked.values() if t.task is not None),
                return_exceptions=True,
            )

    def _track(self, tracked: _Tracked) -> None:
        self._tracked[tracked.request_id] = tracked
        for job_id in tracked.job_ids:
            self._by_job.setdefault(job_id, set()).add(tracked.request_id)
        self._mark_dirty(tracked)

    def _untrack(self, tracked: _Tracked) -> None:
        self._tracked.pop(tracked.request_id, None)
        for job_id in tracked.job_ids:
            requests = self._by_job.get(job_id)
            if requests is not None:
                requests.discard(tracked.request_id)
                if not requests:
                    del self._by_job[job_id]

    def _mark_dirty(self, tracked: _Tracked) -> None:
        tracked.dirty = True
        if tracked.task is None or tracked.task.done():
            tracked.task = asyncio.create_task(
                self._refresh_loop(tracked), name=f"conversation:request:{tracked.request_id}"
            )

    async def _refresh_loop(self, tracked: _Tracked) -> None:
        while tracked.dirty and tracked.request_id in self._tracked:
            tracked.dirty = False
            try:
                await self._refresh(tracked)
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.exception("Request %s: following it failed", tracked.request_id)
                return

    async def _refresh(self, tracked: _Tracked) -> None:
        """Show the request's latest state and post every finished track not yet posted."""
        view = await self.imports.view(tracked.request_id)
        if view is None:
            self._untrack(tracked)
            return
        cancelled = view.status == "cancelled"
        finished = view.finished or cancelled
        self.relay.update(tracked.reply, render_progress(view), final=finished)

        # Post finished tracks in album order; a track still running holds back later ones.
        if not cancelled:
            for job in sorted(view.jobs, key=lambda job: job.position):
                if not job.status.final:
                    break
                if job.status is JobStatus.COMPLETED and not job.delivered:
                    await self._deliver(tracked, view, job)

        if finished:
            await self.relay.settle(tracked.reply)
            if view.status == "open":
                await self.imports.mark_finished(tracked.request_id)
            self._untrack(tracked)
            _log.info("Request %s reached its final state", tracked.request_id)

    # -- delivery ----------------------------------------------------------------------

    async def _deliver(self, tracked: _Tracked, view: RequestView, job: JobView) -> None:
        """Post one finished track, then record it as delivered."""
        chat = tracked.reply.chat
        path = job.file
        name = track_name(job.artists, job.title)
        if path is None:
            _log.error(
                "Request %s: job %s is done but its file is missing", view.request_id, job.job_id
            )
        else:
            size = path.stat().st_size
            if size > self.port.limits(chat).upload_limit_bytes:
                await self._send_link(tracked, job, name, size)
            else:
                await self._send_file(tracked, view, job, name, size)
        await self.imports.mark_delivered(view.request_id, job.job_id)

    async def _send_file(
        self, tracked: _Tracked, view: RequestView, job: JobView, name: str, size: int
    ) -> None:
        key = (job.spotify_id, view.quality)
        bot_id = self.port.bot_id
        remembered = await self.memory.file_id(self.platform, bot_id, *key)
        if remembered is None:
            # One upload per file: deliveries of it to other chats wait for its file id.
            async with self._upload_locks.setdefault(key, asyncio.Lock()):
                remembered = await self.memory.file_id(self.platform, bot_id, *key)
                if remembered is None:
                    await self._post_audio(tracked, view, job, name, size, None)
                    return
        await self._post_audio(tracked, view, job, name, size, remembered)

    async def _post_audio(
        self,
        tracked: _Tracked,
        view: RequestView,
        job: JobView,
        name: str,
        size: int,
        remembered: str | None,
    ) -> None:
        """Post the file (by its remembered id when there is one), retrying what may pass."""
        assert job.file is not None
        chat = tracked.reply.chat
        bot_id = self.port.bot_id
        audio = AudioFile(
            path=job.file,
            title=job.title,
            performer=", ".join(job.artists),
            duration_secs=round(job.duration_ms / 1000),
            remembered_id=remembered,
        )
        if remembered is None:
            audio = await self._with_thumbnail(audio)
        for attempt in range(1, DELIVERY_ATTEMPTS + 1):
            try:
                sent = await self.port.send_audio(chat, audio, reply_to=tracked.reply_to)
            except FileIdRejected:
                _log.info("Job %s: the remembered file id was refused; uploading", job.job_id)
                await self.memory.forget_file_id(
                    self.platform, bot_id, job.spotify_id, view.quality
                )
                audio = await self._with_thumbnail(
                    AudioFile(audio.path, audio.title, audio.performer, audio.duration_secs)
                )
                continue
            except TooLarge:
                _log.info(
                    "Job %s: the platform refused %d bytes; sending a link", job.job_id, size
                )
                await self._send_link(tracked, job, name, size)
                return
            except RateLimited as exc:
                await asyncio.sleep(exc.retry_after_secs)
                continue
            except ChatUnavailable as exc:
                _log.warning("Job %s: posting failed (attempt %d): %s", job.job_id, attempt, exc)
                await asyncio.sleep(DELIVERY_RETRY_SECS * attempt)
                continue
            except Forbidden as exc:
                _log.warning(
                    "Request %s: the bot may not post in chat %s: %s",
                    view.request_id,
                    chat.chat_id,
                    exc,
                )
                return
            if sent.file_id and sent.file_id != remembered:
                await self.memory.remember_file_id(
                    self.platform, bot_id, job.spotify_id, view.quality, sent.file_id
                )
            return
        _log.error("Request %s: giving up posting job %s", view.request_id, job.job_id)

    async def _with_thumbnail(self, audio: AudioFile) -> AudioFile:
        thumbnail = await asyncio.to_thread(cover_thumbnail, audio.path)
        return AudioFile(
            audio.path, audio.title, audio.performer, audio.duration_secs, thumbnail=thumbnail
        )

    async def _send_link(self, tracked: _Tracked, job: JobView, name: str, size: int) -> None:
        text = render_link_delivery(name, self.link_for(job.job_id), size, self.link_ttl_secs)
        for _ in range(DELIVERY_ATTEMPTS):
            try:
                await self.port.send_text(tracked.reply.chat, text, reply_to=tracked.reply_to)
                return
            except RateLimited as exc:
                await asyncio.sleep(exc.retry_after_secs)
            except ChatUnavailable:
                await asyncio.sleep(DELIVERY_RETRY_SECS)
            except ChatError as exc:
                _log.warning("Job %s: could not post its link: %r", job.job_id, exc)
                return
