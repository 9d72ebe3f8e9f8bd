"""A loopback stand-in for the Telegram Bot API, for the real python-telegram-bot to talk to.

It serves `/bot<token>/<method>` and `/file/bot<token>/<path>` on 127.0.0.1 at a free port,
keeps every chat's messages as a user would see them (texts after their edits, audio with
its tags and bytes), hands out `file_id`s, and enforces Telegram's pacing: about one message
per second per chat with a small burst, 20 a minute in a group, 30 a second overall, edits
included; beyond that it answers 429 with `parameters.retry_after`. Tests push updates (text,
commands, captions, `text_link` entities, button presses) and read the transcript back.

Point the bot at it with `TELEGRAM_API_BASE_URL=stand_in.api_base_url` and
`TELEGRAM_FILE_BASE_URL=stand_in.file_base_url`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

_log = logging.getLogger(__name__)

DEFAULT_TOKEN = "123456789:AAStandInTokenForTestsOnly_abcdefgh"
DEFAULT_BOT_USERNAME = "soundforge_test_bot"
BOT_USER_ID = 123456789

# Telegram's cloud Bot API refuses uploads above 50 MB.
DEFAULT_UPLOAD_LIMIT_BYTES = 50 * 1024 * 1024
# aiohttp refuses bodies above this before our own limit is checked.
_MAX_BODY_BYTES = 4 * 1024**3

# Pacing, after Telegram's FAQ: a burst then about 1 message a second per chat, 20 a minute
# in a group, 30 a second over all chats.
CHAT_BURST = 5
CHAT_RATE_PER_SEC = 1.0
GROUP_PER_MINUTE = 20
GLOBAL_PER_SEC = 30

# Methods that post or change a message in a chat, and so count against the pacing.
_PACED_METHODS = frozenset(
    {"sendMessage", "editMessageText", "sendAudio", "sendDocument", "sendMediaGroup"}
)
# Parameters PTB sends JSON-encoded inside form fields.
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "media",
        "allowed_updates",
        "commands",
        "scope",
        "link_preview_options",
        "reply_parameters",
    }
)


class _ApiError(Exception):
    """Raised inside a handler to answer with Telegram's error shape."""

    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


@dataclass(frozen=True)
class TgUser:
    """A Telegram user who writes to the bot."""

    id: int
    first_name: str = "Ann"
    username: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        return data


@dataclass(frozen=True)
class TgChat:
    """A private chat (positive id) or a group (negative id)."""

    id: int
    type: str = "private"
    title: str | None = None

    @classmethod
    def private_with(cls, user: TgUser) -> TgChat:
        return cls(id=user.id, type="private")

    @classmethod
    def group(cls, chat_id: int, title: str = "Music lovers") -> TgChat:
        return cls(id=-abs(chat_id), type="supergroup", title=title)

    @property
    def is_group(self) -> bool:
        return self.type in ("group", "supergroup")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.title:
            data["title"] = self.title
        else:
            data["first_name"] = "Ann"
        return data


@dataclass
class StoredFile:
    """A file the bot uploaded, kept whole so tests can compare its bytes."""

    file_id: str
    file_unique_id: str
    data: bytes
    file_name: str
    mime_type: str
    file_path: str


@dataclass
class BotMessage:
    """One message the bot posted, as the chat shows it now."""

    chat_id: int
    message_id: int
    kind: str  # "text", "audio" or "document"
    text: str = ""
    history: list[str] = field(default_factory=list)
    buttons: list[list[dict[str, Any]]] = field(default_factory=list)
    reply_to: int | None = None
    deleted: bool = False
    title: str | None = None
    performer: str | None = None
    duration: int | None = None
    caption: str = ""
    file: StoredFile | None = None
    thumbnail: bytes | None = None
    uploaded: bool = False  # False when the bot re-sent a known file_id
    media_group_id: str | None = None
    sent_at: float = field(default_factory=time.monotonic)

    @property
    def edits(self) -> int:
        """How many times the bot changed this message's text."""
        return max(0, len(self.history) - 1)

    @property
    def button_data(self) -> list[str]:
        return [button.get("callback_data", "") for row in self.buttons for button in row]


@dataclass(frozen=True)
class ApiCall:
    """One Bot API call as the stand-in saw it."""

    method: str
    params: dict[str, Any]
    status: int
    at: float
    chat_id: int | None = None
    description: str = ""


class TelegramLimits:
    """Telegram's limits: a token bucket per chat, a minute window per group, a global window."""

    def __init__(self) -> None:
        self.buckets: dict[int, tuple[float, float]] = {}
        self.group_sends: dict[int, deque[float]] = {}
        self.global_sends: deque[float] = deque()

    def retry_after(self, chat_id: int, now: float) -> float:
        """Seconds until this chat may post again, or 0 when it may post now (and counts it)."""
        tokens, stamp = self.buckets.get(chat_id, (float(CHAT_BURST), now))
        tokens = min(float(CHAT_BURST), tokens + (now - stamp) * CHAT_RATE_PER_SEC)
        waits = []
        if tokens < 1.0:
            waits.append((1.0 - tokens) / CHAT_RATE_PER_SEC)
        window = self.group_sends.setdefault(chat_id, deque()) if chat_id < 0 else None
        if window is not None:
            while window and now - window[0] >= 60.0:
                window.popleft()
            if len(window) >= GROUP_PER_MINUTE:
                waits.append(60.0 - (now - window[0]))
        while self.global_sends and now - self.global_sends[0] >= 1.0:
            self.global_sends.popleft()
        if len(self.global_sends) >= GLOBAL_PER_SEC:
            waits.append(1.0 - (now - self.global_sends[0]))
        if waits:
            self.buckets[chat_id] = (tokens, now)
            return max(waits)
        self.buckets[chat_id] = (tokens - 1.0, now)
        if window is not None:
            window.append(now)
        self.global_sends.append(now)
        return 0.0


class TelegramStandIn:
    """The Bot API on a loopback port; use as `async with TelegramStandIn() as tg:`."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        bot_username: str = DEFAULT_BOT_USERNAME,
        upload_limit_bytes: int = DEFAULT_UPLOAD_LIMIT_BYTES,
        pacing: bool = True,
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.upload_limit_bytes = upload_limit_bytes
        self.pacing = pacing
        self.calls: list[ApiCall] = []
        self.commands: list[dict[str, Any]] = []
        self.messages: dict[tuple[int, int], BotMessage] = {}
        self.files: dict[str, StoredFile] = {}
        self.answered_callbacks: dict[str, str | None] = {}
        self.webhook_deleted = 0
        self.polls = 0  # getUpdates calls, which are not kept in `calls`
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._file_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._pacer = TelegramLimits()
        self._flood_until: dict[int | None, float] = {}
        self._chats: dict[int, TgChat] = {}
        self._runner: web.AppRunner | None = None
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> TelegramStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen on 127.0.0.1 at a free port."""
        app = web.Application(client_max_size=_MAX_BODY_BYTES)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        _log.info("Telegram stand-in listening on 127.0.0.1:%d", self.port)

    async def stop(self) -> None:
        """Wake every long poll and stop listening."""
        self._closing = True
        async with self._changed:
            self._changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base_url(self) -> str:
        """The value for TELEGRAM_API_BASE_URL."""
        return f"{self.base_url}/bot"

    @property
    def file_base_url(self) -> str:
        """The value for TELEGRAM_FILE_BASE_URL."""
        return f"{self.base_url}/file/bot"

    # -- what a user does ------------------------------------------------------------------

    def send_text(
        self,
        chat: TgChat,
        user: TgUser,
        text: str,
        *,
        entities: list[dict[str, Any]] | None = None,
        as_caption: bool = False,
    ) -> int:
        """The user posts `text` (a caption under a photo when `as_caption`); returns its id.

        A leading `/command` or `/command@bot` gets its `bot_command` entity as Telegram adds.
        """
        self._chats[chat.id] = chat
        entities = list(entities or [])
        if text.startswith("/"):
            length = len(text.split(maxsplit=1)[0])
            entities.insert(0, {"type": "bot_command", "offset": 0, "length": length})
        message_id = next(self._message_ids)
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat.to_dict(),
            "from": user.to_dict(),
        }
        if as_caption:
            message["photo"] = [
                {"file_id": "photo-1", "file_unique_id": "p1", "width": 90, "height": 90}
            ]
            message["caption"] = text
            if entities:
                message["caption_entities"] = entities
        else:
            message["text"] = text
            if entities:
                message["entities"] = entities
        self._push({"message": message})
        return message_id

    def send_link_behind_text(self, chat: TgChat, user: TgUser, anchor: str, url: str) -> int:
        """The user posts `anchor` as a `text_link` entity that points at `url`."""
        entity = {"type": "text_link", "offset": 0, "length": len(anchor), "url": url}
        return self.send_text(chat, user, anchor, entities=[entity])

    def press_button(self, user: TgUser, message: BotMessage, data: str) -> str:
        """The user presses the inline button carrying `data`; returns the callback id."""
        callback_id = f"cb{next(self._update_ids)}"
        chat = self._chats.get(message.chat_id, TgChat(id=message.chat_id))
        self._push(
            {
                "callback_query": {
                    "id": callback_id,
                    "from": user.to_dict(),
                    "chat_instance": f"ci{message.chat_id}",
                    "data": data,
                    "message": self._message_dict(message, chat),
                }
            }
        )
        return callback_id

    def delete_message(self, chat_id: int, message_id: int) -> None:
        """The user (or an admin) deletes a bot message: later edits of it fail."""
        self.messages[(chat_id, message_id)].deleted = True

    def inject_flood_wait(self, secs: float, chat_id: int | None = None) -> None:
        """Answer 429 to every paced call (to `chat_id`, or to any chat) for `secs` seconds."""
        self._flood_until[chat_id] = time.monotonic() + secs

    # -- what a test reads -----------------------------------------------------------------

    def transcript(self, chat_id: int) -> list[BotMessage]:
        """The bot's messages in a chat, oldest first, deleted ones left out."""
        return [
            message
            for (chat, _), message in sorted(self.messages.items())
            if chat == chat_id and not message.deleted
        ]

    def audio_messages(self, chat_id: int) -> list[BotMessage]:
        return [m for m in self.transcript(chat_id) if m.kind in ("audio", "document")]

    def texts(self, chat_id: int) -> list[str]:
        return [m.text for m in self.transcript(chat_id) if m.kind == "text"]

    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method == method]

    @property
    def rate_limited_calls(self) -> list[ApiCall]:
        """Every call answered 429."""
        return [call for call in self.calls if call.status == 429]

    async def wait_for(
        self, predicate: Callable[[], Any], *, within_secs: float = 30.0, what: str = "condition"
    ) -> Any:
        """Wait until `predicate()` is truthy after some API call; return its value."""

        async def _wait() -> Any:
            async with self._changed:
                while not (value := predicate()):
                    await self._changed.wait()
                return value

        try:
            return await asyncio.wait_for(_wait(), within_secs)
        except TimeoutError:
            raise AssertionError(
                f"gave up waiting for {what}; calls: "
                + ", ".join(f"{c.method}:{c.status}" for c in self.calls[-20:])
            ) from None

    # -- the HTTP side ---------------------------------------------------------------------

    def _push(self, update: dict[str, Any]) -> None:
        update["update_id"] = next(self._update_ids)
        self._updates.append(update)
        task = asyncio.get_running_loop().create_task(self._notify(), name="tg-standin:notify")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        for stored in self.files.values():
            if stored.file_path == path:
                return web.Response(body=stored.data, content_type=stored.mime_type)
        return web.Response(status=404)

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params, parts = await self._read_params(request)
        chat_id = _as_int(params.get("chat_id"))
        status, description = 200, ""
        try:
            if request.match_info["token"] != self.token:
                raise _ApiError(401, "Unauthorized")
            handler = getattr(self, f"_api_{method}", None)
            if handler is None:
                raise _ApiError(404, "Not Found: method not found")
            if self.pacing and method in _PACED_METHODS and chat_id is not None:
                self._check_pacing(chat_id)
            result = await handler(params, parts)
            body: dict[str, Any] = {"ok": True, "result": result}
        except _ApiError as exc:
            status, description = exc.status, exc.description
            body = {"ok": False, "error_code": exc.status, "description": exc.description}
            if exc.parameters:
                body["parameters"] = exc.parameters
        if method != "getUpdates" or status != 200:
            loggable = {k: v for k, v in params.items() if not isinstance(v, bytes)}
            self.calls.append(
                ApiCall(method, loggable, status, time.monotonic(), chat_id, description)
            )
            await self._notify()
        return web.json_response(body, status=status)

    async def _read_params(
        self, request: web.Request
    ) -> tuple[dict[str, Any], dict[str, tuple[str, str, bytes]]]:
        """Form fields (JSON ones decoded) and uploaded parts by name: (filename, type, bytes)."""
        params: dict[str, Any] = dict(request.query)
        parts: dict[str, tuple[str, str, bytes]] = {}
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                form = await request.post()
                for name, value in form.items():
                    if isinstance(value, web.FileField):
                        parts[name] = (value.filename, value.content_type, value.file.read())
                    else:
                        params[name] = value
        for name in _JSON_FIELDS & params.keys():
            if isinstance(params[name], str):
                params[name] = json.loads(params[name])
        return params, parts

    def _check_pacing(self, chat_id: int) -> None:
        now = time.monotonic()
        for key in (chat_id, None):
            until = self._flood_until.get(key, 0.0)
            if until > now:
                self._too_many(until - now)
        wait = self._pacer.retry_after(chat_id, now)
        if wait > 0:
            self._too_many(wait)

    @staticmethod
    def _too_many(wait_secs: float) -> None:
        retry_after = max(1, math.ceil(wait_secs))
        raise _ApiError(
            429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
        )

    # -- Bot API methods -------------------------------------------------------------------

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": BOT_USER_ID,
            "is_bot": True,
            "first_name": "SoundForge",
            "username": self.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _api_getMe(self, params: dict[str, Any], parts: Any) -> Any:
        return self._bot_user()

    async def _api_deleteWebhook(self, params: dict[str, Any], parts: Any) -> Any:
        self.webhook_deleted += 1
        if _as_bool(params.get("drop_pending_updates")):
            self._updates.clear()
        return True

    async def _api_setMyCommands(self, params: dict[str, Any], parts: Any) -> Any:
        self.commands = list(params.get("commands") or [])
        return True

    async def _api_getUpdates(self, params: dict[str, Any], parts: Any) -> Any:
        self.polls += 1
        await self._notify()
        offset = _as_int(params.get("offset")) or 0
        limit = _as_int(params.get("limit")) or 100
        timeout = float(params.get("timeout") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]

        def pending() -> list[dict[str, Any]]:
            return [u for u in self._updates if u["update_id"] >= offset][:limit]

        if not pending() and timeout > 0 and not self._closing:
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda: bool(pending()) or self._closing),
                        timeout,
                    )
        return pending()

    async def _api_sendMessage(self, params: dict[str, Any], parts: Any) -> Any:
        chat_id = self._require_chat(params)
        message = BotMessage(
            chat_id=chat_id,
            message_id=next(self._message_ids),
            kind="text",
            text=str(params.get("text", "")),
            buttons=_buttons(params),
            reply_to=_reply_to(params),
        )
        if not message.text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        message.history.append(message.text)
        return self._keep(message)

    async def _api_editMessageText(self, params: dict[str, Any], parts: Any) -> Any:
        chat_id = self._require_chat(params)
        message = self.messages.get((chat_id, _as_int(params.get("message_id")) or 0))
        if message is None or message.deleted:
            raise _ApiError(400, "Bad Request: message to edit not found")
        text = str(params.get("text", ""))
        buttons = _buttons(params)
        if text == message.text and buttons == message.buttons:
            raise _ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup "
                "of the message",
            )
        message.text = text
        message.buttons = buttons
        message.history.append(text)
        return self._message_dict(message)

    async def _api_answerCallbackQuery(self, params: dict[str, Any], parts: Any) -> Any:
        self.answered_callbacks[str(params.get("callback_query_id"))] = params.get("text")
        return True

    async def _api_deleteMessage(self, params: dict[str, Any], parts: Any) -> Any:
        chat_id = self._require_chat(params)
        message = self.messages.get((chat_id, _as_int(params.get("message_id")) or 0))
        if message is None or message.deleted:
            raise _ApiError(400, "Bad Request: message to delete not found")
        message.deleted = True
        return True

    async def _api_getFile(self, params: dict[str, Any], parts: Any) -> Any:
        stored = self.files.get(str(params.get("file_id")))
        if stored is None:
            raise _ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    async def _api_sendAudio(self, params: dict[str, Any], parts: Any) -> Any:
        return self._keep(self._media_message(params, parts, "audio"))

    async def _api_sendDocument(self, params: dict[str, Any], parts: Any) -> Any:
        return self._keep(self._media_message(params, parts, "document"))

    async def _api_sendMediaGroup(self, params: dict[str, Any], parts: Any) -> Any:
        media = params.get("media") or []
        if not 2 <= len(media) <= 10:
            raise _ApiError(400, "Bad Request: there must be 2-10 items in a media group")
        group_id = f"mg{next(self._file_ids)}"
        built = []
        for item in media:
            item_params = {**params, **item, item["type"]: item["media"]}
            message = self._media_message(item_params, parts, item["type"])
            message.media_group_id = group_id
            built.append(message)
        return [self._keep(message) for message in built]

    # -- helpers ---------------------------------------------------------------------------

    def _require_chat(self, params: dict[str, Any]) -> int:
        chat_id = _as_int(params.get("chat_id"))
        if chat_id is None:
            raise _ApiError(400, "Bad Request: chat not found")
        return chat_id

    def _media_message(
        self, params: dict[str, Any], parts: dict[str, tuple[str, str, bytes]], kind: str
    ) -> BotMessage:
        chat_id = self._require_chat(params)
        stored, uploaded = self._resolve_file(params.get(kind), parts, kind)
        thumbnail = None
        thumb_ref = params.get("thumbnail")
        if isinstance(thumb_ref, str) and thumb_ref.startswith("attach://"):
            thumbnail = parts[thumb_ref.removeprefix("attach://")][2]
        elif "thumbnail" in parts:
            thumbnail = parts["thumbnail"][2]
        return BotMessage(
            chat_id=chat_id,
            message_id=next(self._message_ids),
            kind=kind,
            title=params.get("title"),
            performer=params.get("performer"),
            duration=_as_int(params.get("duration")),
            caption=str(params.get("caption") or ""),
            file=stored,
            thumbnail=thumbnail,
            uploaded=uploaded,
            reply_to=_reply_to(params),
        )

    def _resolve_file(
        self, ref: Any, parts: dict[str, tuple[str, str, bytes]], kind: str
    ) -> tuple[StoredFile, bool]:
        """The file a media parameter names: an upload (by field or attach://) or a file_id."""
        upload = None
        if isinstance(ref, str) and ref.startswith("attach://"):
            upload = parts.get(ref.removeprefix("attach://"))
        elif ref is None or kind in parts:
            upload = parts.get(kind)
        if upload is None:
            stored = self.files.get(str(ref))
            if stored is None:
                raise _ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
            return stored, False
        file_name, mime_type, data = upload
        if len(data) > self.upload_limit_bytes:
            raise _ApiError(413, "Request Entity Too Large")
        number = next(self._file_ids)
        stored = StoredFile(
            file_id=f"{kind[:2].upper()}file{number:06d}",
            file_unique_id=f"u{number}",
            data=data,
            file_name=file_name or f"file{number}",
            mime_type=mime_type or "application/octet-stream",
            file_path=f"{kind}/file_{number}",
        )
        self.files[stored.file_id] = stored
        return stored, True

    def _keep(self, message: BotMessage) -> dict[str, Any]:
        self.messages[(message.chat_id, message.message_id)] = message
        return self._message_dict(message)

    def _message_dict(self, message: BotMessage, chat: TgChat | None = None) -> dict[str, Any]:
        chat = chat or self._chats.get(message.chat_id) or _guess_chat(message.chat_id)
        data: dict[str, Any] = {
            "message_id": message.message_id,
            "date": int(time.time()),
            "chat": chat.to_dict(),
            "from": self._bot_user(),
        }
        if message.kind == "text":
            data["text"] = message.text
        else:
            assert message.file is not None
            media: dict[str, Any] = {
                "file_id": message.file.file_id,
                "file_unique_id": message.file.file_unique_id,
                "file_name": message.file.file_name,
                "mime_type": message.file.mime_type,
                "file_size": len(message.file.data),
            }
            if message.kind == "audio":
                media["duration"] = message.duration or 0
                if message.title:
                    media["title"] = message.title
                if message.performer:
                    media["performer"] = message.performer
            data[message.kind] = media
            if message.caption:
                data["caption"] = message.caption
            if message.media_group_id:
                data["media_group_id"] = message.media_group_id
        if message.buttons:
            data["reply_markup"] = {"inline_keyboard": message.buttons}
        return data


def _guess_chat(chat_id: int) -> TgChat:
    return TgChat.group(chat_id) if chat_id < 0 else TgChat(id=chat_id)


def _buttons(params: dict[str, Any]) -> list[list[dict[str, Any]]]:
    markup = params.get("reply_markup") or {}
    return [list(row) for row in markup.get("inline_keyboard", [])]


def _reply_to(params: dict[str, Any]) -> int | None:
    reply = params.get("reply_parameters")
    if isinstance(reply, dict):
        return _as_int(reply.get("message_id"))
    return _as_int(params.get("reply_to_message_id"))


def _as_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


def _as_bool(value: Any) -> bool:
    return str(value).lower() in ("true", "1")
