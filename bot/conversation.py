"""The neutral conversation: what the bot says and does, on any chat platform.

An adapter hands every `IncomingMessage` to `Conversation.handle` and implements the
`ChatPort` the conversation answers through. A link becomes a request with one reply,
kept up to date through the progress relay as job events arrive (and as a periodic
look at the database shows, since no event is guaranteed); each finished track is
posted as audio, or as a signed link when it is over the chat's limit. A track counts as
delivered only once the platform took it: until then every sweep tries again, and after
`DELIVERY_GIVE_UP_SECS` it goes as a link. Requests are recorded before their metadata is
read, so those a crash left open, read or not, are picked up again by `resume`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
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
from core.errors import SoundForgeError, format_duration
from core.events import EventBus
from core.links import find_links
from core.service import RESOLVING, ImportService, JobView, Requester, RequestView
from core.types import JobStatus, SpotifyLink
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
# Attempts at posting one file in one go when the platform is briefly unavailable, the
# n-th failure followed by a pause of n times DELIVERY_RETRY_SECS (12 s in all).
DELIVERY_ATTEMPTS = 4
DELIVERY_RETRY_SECS = 2.0
# How long a finished track may go on failing to post, one go per sweep, before it is
# handed over as a signed link instead.
DELIVERY_GIVE_UP_SECS = 10 * 60.0
# Requests listed by /status.
STATUS_LIMIT = 5
QUALITY_BUTTON_PREFIX = "quality:"

GET_USAGE = "Send /get with a Spotify link, for example /get https://open.spotify.com/track/…"
UNKNOWN_COMMAND = "I don't know that command; /help lists what I can do."
TOO_MANY_LINKS = f"I take {MAX_LINKS_PER_MESSAGE} links per message; the rest are left."

LinkMaker = Callable[[int], str]


class _Delivery(enum.Enum):
    """How one go at handing over a finished track ended."""

    # The platform took it, as audio or as a link.
    DONE = "done"
    # The platform failed for now; a later sweep tries again.
    LATER = "later"
    # It can never be posted (no file, no permission); nothing is tried again.
    NEVER = "never"


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
    # The final text went to the relay; later refreshes only deliver.
    final_shown: bool = False
    # When posting each job's track first failed, on the event loop's clock.
    failing_since: dict[int, float] = field(default_factory=dict)
    # Jobs whose track can never be posted here.
    undeliverable: set[int] = field(default_factory=set)


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
        # Recorded requests whose metadata is being read here, and the tasks reading those
        # a crash left behind.
        self._resolving: set[int] = set()
        self._resumers: set[asyncio.Task[None]] = set()
        self._closed = False

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
        return await self._say_in(message.chat, text, message.message_id)

    async def _say_in(self, chat: ChatRef, text: str, reply_to: str | None) -> MessageRef | None:
        try:
            return await self.port.send_text(chat, text, reply_to=reply_to)
        except ChatError as exc:
            _log.warning("Could not answer in chat %s: %r", chat.chat_id, exc)
            return None

    async def _import(self, message: IncomingMessage, text: str) -> None:
        # Follow no more short links than the cap takes; the scan says whether there were more.
        links = await self.imports.links_in(text, message.hidden_urls, limit=MAX_LINKS_PER_MESSAGE)
        if find_links(text, message.hidden_urls).importable > MAX_LINKS_PER_MESSAGE:
            await self._say(message, TOO_MANY_LINKS)
        requester = Requester(
            self.platform,
            message.user_id,
            message.chat.chat_id,
            message.message_id,
            message.chat.is_private,
        )
        quality = await self._quality_for(message.user_id)

        # Record every request before reading any metadata: a crash from here on loses none.
        request_ids = await self.imports.record(links, requester, quality)
        self._resolving.update(request_ids)
        for link, request_id in zip(links, request_ids, strict=True):
            await self._answer(message.chat, requester, link, quality, request_id)

    async def _answer(
        self,
        chat: ChatRef,
        requester: Requester,
        link: SpotifyLink,
        quality: Quality,
        request_id: int,
    ) -> None:
        """Read a recorded request's link, post what was found, and follow the request.

        A link that cannot be read gets its sentence, and its request is dropped.
        """
        reply_to = requester.message_id
        try:
            try:
                started = await self.imports.start(link, requester, quality, request_id=request_id)
            except SoundForgeError as exc:
                _log.info("Import of %s for chat %s failed: %s", link.url, chat.chat_id, exc)
                await self.imports.abandon(request_id)
                await self._say_in(chat, exc.user_message, reply_to)
                return
            except Exception:
                _log.exception("Request %s: reading %s failed", request_id, link.url)
                await self.imports.abandon(request_id)
                await self._say_in(chat, SoundForgeError().user_message, reply_to)
                return
        finally:
            self._resolving.discard(request_id)

        # Answer with what was found; without that reply, the next start posts the progress.
        found = render_found(started.tracklist, quality)
        try:
            reply = await self.port.send_text(chat, found, reply_to=reply_to)
        except ChatError as exc:
            _log.warning("Request %s: could not post its reply: %r", request_id, exc)
            return
        await self.imports.set_reply(request_id, reply.message_id)
        self.relay.track(reply, found)
        self._track(_Tracked(request_id, reply, requester.user_id, reply_to, set(started.job_ids)))

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
        unread: list[RequestView] = []
        for view in left_open:
            if (
                view.chat_id is None
                or view.request_id in self._tracked
                or view.request_id in self._resolving
            ):
                continue
            chat = _chat_of(view)
            if view.status == RESOLVING:
                unread.append(view)
                resumed += 1
                continue
            if view.reply_message_id is None:
                try:
                    reply = await self.port.send_text(
                        chat, render_progress(view), reply_to=view.source_message_id
                    )
                except ChatError as exc:
                    _log.warning("Request %s: could not post a reply: %r", view.request_id, exc)
                    continue
                await self.imports.set_reply(view.request_id, reply.message_id)
            else:
                reply = MessageRef(chat, view.reply_message_id)
            jobs = {job.job_id for job in view.jobs}
            self._track(
                _Tracked(view.request_id, reply, view.user_id, view.source_message_id, jobs)
            )
            resumed += 1
        if unread:
            # Read their links in the background, oldest first: Spotify may be slow.
            self._resolving.update(view.request_id for view in unread)
            task = asyncio.create_task(
                self._answer_unread(unread), name=f"conversation:{self.platform}:resume"
            )
            self._resumers.add(task)
            task.add_done_callback(self._resumers.discard)
        if resumed:
            _log.info(
                "Resumed %d open %s requests (%d still to read)",
                resumed,
                self.platform,
                len(unread),
            )
        return resumed

    async def _answer_unread(self, unread: Sequence[RequestView]) -> None:
        """Answer the requests a crash left before their metadata was read."""
        for view in unread:
            chat = _chat_of(view)
            requester = Requester(
                self.platform, view.user_id, chat.chat_id, view.source_message_id, chat.is_private
            )
            _log.info("Request %s: reading %s again after a restart", view.request_id, view.link)
            await self._answer(
                chat, requester, view.spotify_link, Quality(view.quality), view.request_id
            )

    async def close(self) -> None:
        """Stop following requests; they stay open in the database for `resume`."""
        self._closed = True
        tasks = [t.task for t in self._tracked.values() if t.task is not None]
        tasks.extend(self._resumers)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.relay.close()

    async def wait_idle(self) -> None:
        """Wait until no request has work running here (for tests and benchmarks)."""
        while busy := self._busy():
            await asyncio.gather(*busy, return_exceptions=True)

    def _busy(self) -> list[asyncio.Task[None]]:
        tasks = [t.task for t in self._tracked.values() if t.task is not None]
        tasks.extend(self._resumers)
        return [task for task in tasks if not task.done()]

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
        if self._closed:
            return
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
        if not tracked.final_shown:
            self.relay.update(tracked.reply, render_progress(view), final=finished)
            tracked.final_shown = finished

        # Post finished tracks in album order; a track still running, or one the platform
        # has not taken yet, holds back later ones.
        undelivered = False
        if not cancelled:
            for job in sorted(view.jobs, key=lambda job: job.position):
                if not job.status.final:
                    break
                if (
                    job.status is not JobStatus.COMPLETED
                    or job.delivered
                    or job.job_id in tracked.undeliverable
                ):
                    continue
                if await self._deliver(tracked, view, job) is _Delivery.LATER:
                    undelivered = True
                    break

        if finished and not undelivered:
            await self.relay.settle(tracked.reply)
            if view.status == "open":
                await self.imports.mark_finished(tracked.request_id)
            self._untrack(tracked)
            _log.info("Request %s reached its final state", tracked.request_id)

    # -- delivery ----------------------------------------------------------------------

    async def _deliver(self, tracked: _Tracked, view: RequestView, job: JobView) -> _Delivery:
        """Hand over one finished track, and record it once the platform took it."""
        path = job.file
        name = track_name(job.artists, job.title)
        if path is None:
            _log.error(
                "Request %s: job %s is done but its file is missing", view.request_id, job.job_id
            )
            text = f"I can no longer find the file of {name}; send {view.link} again to fetch it."
            told = await self._post_text(tracked, text, f"job {job.job_id}'s missing file")
            if told is _Delivery.LATER:
                return told
            tracked.undeliverable.add(job.job_id)
            return _Delivery.NEVER

        size = path.stat().st_size
        if size > self.port.limits(tracked.reply.chat).upload_limit_bytes:
            outcome = await self._send_link(tracked, job, name, size)
        else:
            outcome = await self._send_file(tracked, view, job, name, size)
        if outcome is _Delivery.LATER and self._failing_too_long(tracked, job):
            outcome = await self._send_link(tracked, job, name, size, gave_up=True)

        # Record what happened; a track not taken yet is tried again by the next sweep.
        if outcome is _Delivery.DONE:
            tracked.failing_since.pop(job.job_id, None)
            await self.imports.mark_delivered(view.request_id, job.job_id)
        elif outcome is _Delivery.NEVER:
            tracked.undeliverable.add(job.job_id)
        else:
            _log.warning(
                "Request %s: job %s is not posted yet; the next sweep tries again",
                view.request_id,
                job.job_id,
            )
        return outcome

    def _failing_too_long(self, tracked: _Tracked, job: JobView) -> bool:
        """Note a failed go at posting `job`; True once failures lasted DELIVERY_GIVE_UP_SECS."""
        now = asyncio.get_running_loop().time()
        since = tracked.failing_since.setdefault(job.job_id, now)
        return now - since >= DELIVERY_GIVE_UP_SECS

    async def _send_file(
        self, tracked: _Tracked, view: RequestView, job: JobView, name: str, size: int
    ) -> _Delivery:
        key = (job.spotify_id, view.quality)
        bot_id = self.port.bot_id
        remembered = await self.memory.file_id(self.platform, bot_id, *key)
        if remembered is None:
            # One upload per file: deliveries of it to other chats wait for its file id.
            async with self._upload_locks.setdefault(key, asyncio.Lock()):
                remembered = await self.memory.file_id(self.platform, bot_id, *key)
                if remembered is None:
                    return await self._post_audio(tracked, view, job, name, size, None)
        return await self._post_audio(tracked, view, job, name, size, remembered)

    async def _post_audio(
        self,
        tracked: _Tracked,
        view: RequestView,
        job: JobView,
        name: str,
        size: int,
        remembered: str | None,
    ) -> _Delivery:
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
                return await self._send_link(tracked, job, name, size)
            except RateLimited as exc:
                await asyncio.sleep(exc.retry_after_secs)
                continue
            except ChatUnavailable as exc:
                _log.warning("Job %s: posting failed (attempt %d): %s", job.job_id, attempt, exc)
                if attempt < DELIVERY_ATTEMPTS:
                    await asyncio.sleep(DELIVERY_RETRY_SECS * attempt)
                continue
            except Forbidden as exc:
                _log.warning(
                    "Request %s: the bot may not post in chat %s: %s",
                    view.request_id,
                    chat.chat_id,
                    exc,
                )
                return _Delivery.NEVER
            except ChatError as exc:
                _log.warning(
                    "Job %s: the platform refused the file (%r); sending a link", job.job_id, exc
                )
                return await self._send_link(tracked, job, name, size)
            if sent.file_id and sent.file_id != remembered:
                await self.memory.remember_file_id(
                    self.platform, bot_id, job.spotify_id, view.quality, sent.file_id
                )
            return _Delivery.DONE
        return _Delivery.LATER

    async def _with_thumbnail(self, audio: AudioFile) -> AudioFile:
        thumbnail = await asyncio.to_thread(cover_thumbnail, audio.path)
        return AudioFile(
            audio.path, audio.title, audio.performer, audio.duration_secs, thumbnail=thumbnail
        )

    async def _send_link(
        self, tracked: _Tracked, job: JobView, name: str, size: int, *, gave_up: bool = False
    ) -> _Delivery:
        """Hand the file over as a signed link: it is too large, or posting it kept failing."""
        url = self.link_for(job.job_id)
        if gave_up:
            _log.warning(
                "Job %s: posting failed for %.0f s; sending a link",
                job.job_id,
                DELIVERY_GIVE_UP_SECS,
            )
            text = (
                f"I could not post {name} in this chat: it kept failing for "
                f"{format_duration(DELIVERY_GIVE_UP_SECS)}. Download it here (the link works "
                f"for {format_duration(self.link_ttl_secs)}):\n{url}"
            )
        else:
            text = render_link_delivery(name, url, size, self.link_ttl_secs)
        return await self._post_text(tracked, text, f"job {job.job_id}'s link")

    async def _post_text(self, tracked: _Tracked, text: str, what: str) -> _Delivery:
        """Post a delivery's text under the reply's request, retrying what may pass."""
        for attempt in range(1, DELIVERY_ATTEMPTS + 1):
            try:
                await self.port.send_text(tracked.reply.chat, text, reply_to=tracked.reply_to)
            except RateLimited as exc:
                await asyncio.sleep(exc.retry_after_secs)
            except ChatUnavailable as exc:
                _log.warning("Posting %s failed (attempt %d): %s", what, attempt, exc)
                if attempt < DELIVERY_ATTEMPTS:
                    await asyncio.sleep(DELIVERY_RETRY_SECS * attempt)
            except ChatError as exc:
                _log.warning("Could not post %s: %r", what, exc)
                return _Delivery.NEVER
            else:
                return _Delivery.DONE
        return _Delivery.LATER


def _chat_of(view: RequestView) -> ChatRef:
    """The chat a stored request came from; one of unknown kind is paced as a group."""
    assert view.chat_id is not None
    return ChatRef(view.platform, view.chat_id, is_private=bool(view.chat_is_private))
