"""A loopback stand-in for Discord's REST API and gateway, for the real discord.py to talk to.

One aiohttp server on 127.0.0.1 at a free port serves the REST API under `/api/v10` and the
gateway websocket at `/gateway` (a resumed session comes back on `/gateway/resume`, the
`resume_gateway_url` READY hands out). It keeps every channel's messages as a user would see
them (text after its edits, embeds, buttons, attachments with their bytes), answers the
interaction callbacks and webhook calls of slash commands and buttons with Discord's rules
(3 seconds to acknowledge, a token that dies after 15 minutes), limits each channel's message
calls with the `X-RateLimit-*` headers discord.py reads and a 429 with `retry_after` beyond
them, and refuses attachments above the upload limit with 413 and error code 40005. Tests
push messages, slash commands and button presses, inject 429s and errors, and read every
recorded call back.

Point discord.py at it with `DISCORD_API_BASE_URL=stand_in.api_base_url` and
`DISCORD_GATEWAY_URL=stand_in.gateway_url`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import json
import logging
import math
import secrets
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, WSMsgType, web

_log = logging.getLogger(__name__)

DEFAULT_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.StandIn.token-for-tests-only"
API_PREFIX = "/api/v10"

# Discord's snowflakes count milliseconds from the first second of 2015.
DISCORD_EPOCH_MS = 1_420_070_400_000

# Gateway opcodes and close codes, as Discord documents them.
OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_RESUME = 6
OP_RECONNECT = 7
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11
CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_INVALID_INTENTS = 4013
CLOSE_DISALLOWED_INTENTS = 4014

# Gateway intent bits the stand-in acts on, and the privileged ones an app must be granted.
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
_PRIVILEGED_INTENTS = {
    INTENT_GUILD_MEMBERS: "GUILD_MEMBERS",
    INTENT_GUILD_PRESENCES: "GUILD_PRESENCES",
    INTENT_MESSAGE_CONTENT: "MESSAGE_CONTENT",
}
# The application flag an unverified app carries once Message Content is switched on.
APP_FLAG_GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19

# Discord's heartbeat interval in milliseconds.
DEFAULT_HEARTBEAT_INTERVAL_MS = 41_250
# A message route allows this many calls per channel in each window (Discord: 5 per 5 s).
DEFAULT_CHANNEL_LIMIT = 5
DEFAULT_CHANNEL_WINDOW_SECS = 5.0
# An interaction must be acknowledged within this many seconds of its dispatch.
INTERACTION_ACK_SECS = 3.0
# An interaction token works for this many seconds after the interaction was created.
INTERACTION_TOKEN_SECS = 15 * 60
# Upload limits by server boost tier, in bytes; DMs get the tier-0 limit.
UPLOAD_LIMIT_BY_TIER = {0: 10 * 1024**2, 1: 10 * 1024**2, 2: 50 * 1024**2, 3: 100 * 1024**2}
MAX_CONTENT_CHARS = 2000
# aiohttp refuses bodies above this before our own limit is checked.
_MAX_BODY_BYTES = 1024**3

# Message flags and types the stand-in sets.
FLAG_LOADING = 1 << 7
TYPE_DEFAULT = 0
TYPE_REPLY = 19
TYPE_CHAT_INPUT_COMMAND = 20

# Channel types.
CHANNEL_TEXT = 0
CHANNEL_DM = 1

# Interaction types and callback types.
INTERACTION_COMMAND = 2
INTERACTION_COMPONENT = 3
CALLBACK_MESSAGE = 4
CALLBACK_DEFERRED_MESSAGE = 5
CALLBACK_DEFERRED_UPDATE = 6
CALLBACK_UPDATE = 7

# Component types.
COMPONENT_BUTTON = 2
COMPONENT_STRING_SELECT = 3

# Permission bits reported in interactions (view, send, embed, attach, read history).
_BOT_PERMISSIONS = str((1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16))
_USER_PERMISSIONS = str((1 << 10) | (1 << 11) | (1 << 31))


# What the recording middleware keeps on each request: the parsed body, and the channel the
# call was about once a handler knows it.
_Body = tuple[dict[str, Any] | list[Any] | None, list["StoredAttachment"]]
_BODY: web.RequestKey[_Body] = web.RequestKey("discord_body")
_CHANNEL: web.RequestKey[int] = web.RequestKey("discord_channel", int)


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


class _ApiError(Exception):
    """Raised inside a handler to answer with Discord's error shape."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}

    def response(self) -> web.Response:
        body = {"message": self.message, "code": self.code, **self.extra}
        return _json_response(body, status=self.status, headers=self.headers)


@dataclass(frozen=True)
class DcUser:
    """A Discord account: a person who talks to the bot, or the bot itself."""

    id: int
    username: str
    global_name: str | None = None
    bot: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass
class DcChannel:
    """A text channel of the test server, or a DM with one person."""

    id: int
    name: str
    type: int = CHANNEL_TEXT
    guild_id: int | None = None
    recipient: DcUser | None = None
    # False for a channel where the bot may read but not post (missing Send Messages).
    bot_can_send: bool = True

    @property
    def is_dm(self) -> bool:
        return self.type == CHANNEL_DM

    def to_dict(self) -> dict[str, Any]:
        if self.is_dm:
            assert self.recipient is not None
            return {
                "id": str(self.id),
                "type": CHANNEL_DM,
                "recipients": [self.recipient.to_dict()],
                "last_message_id": None,
                "flags": 0,
            }
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": 0,
            "parent_id": None,
            "topic": None,
            "nsfw": False,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "permission_overwrites": [],
            "flags": 0,
        }


@dataclass
class DcGuild:
    """The test server: its boost tier sets its upload limit."""

    id: int
    name: str
    owner_id: int
    premium_tier: int = 0
    channels: list[DcChannel] = field(default_factory=list)

    def to_dict(self, bot: DcUser) -> dict[str, Any]:
        everyone = {
            "id": str(self.id),
            "name": "@everyone",
            "permissions": _USER_PERMISSIONS,
            "position": 0,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "owner_id": str(self.owner_id),
            "roles": [everyone],
            "emojis": [],
            "stickers": [],
            "features": [],
            "channels": [channel.to_dict() for channel in self.channels],
            "threads": [],
            "members": [_member_dict(bot)],
            "member_count": 2,
            "large": False,
            "unavailable": False,
            "premium_tier": self.premium_tier,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "afk_timeout": 300,
            "system_channel_id": None,
            "joined_at": _now_iso(),
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }


def _member_dict(user: DcUser, *, with_user: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "roles": [],
        "joined_at": _now_iso(),
        "nick": None,
        "deaf": False,
        "mute": False,
        "pending": False,
        "flags": 0,
    }
    if with_user:
        data["user"] = user.to_dict()
    return data


@dataclass
class StoredAttachment:
    """A file the bot posted, with its bytes."""

    id: int
    filename: str
    data: bytes
    content_type: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class StoredMessage:
    """A message as the people in the channel see it, after every edit."""

    id: int
    channel_id: int
    author: DcUser
    content: str
    guild_id: int | None = None
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[StoredAttachment] = field(default_factory=list)
    mentions: list[DcUser] = field(default_factory=list)
    reference_id: int | None = None
    # How the bot posted it: "channel", "interaction" (the original response) or "followup".
    via: str = "user"
    interaction_id: int | None = None
    flags: int = 0
    edits: int = 0
    deleted: bool = False

    @property
    def thinking(self) -> bool:
        """True while a deferred interaction response shows "… is thinking"."""
        return bool(self.flags & FLAG_LOADING)

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """Every button under the message, as (label, custom_id)."""
        found = []
        for row in self.components:
            for item in row.get("components", []):
                if item.get("type") == COMPONENT_BUTTON:
                    found.append((item.get("label", ""), item.get("custom_id", "")))
        return found

    def to_dict(
        self, *, application_id: int, base_url: str, blank_content: bool = False
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "author": self.author.to_dict(),
            "content": "" if blank_content else self.content,
            "timestamp": _now_iso(),
            "edited_timestamp": _now_iso() if self.edits else None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [m.to_dict() for m in self.mentions],
            "mention_roles": [],
            "attachments": []
            if blank_content
            else [
                {
                    "id": str(a.id),
                    "filename": a.filename,
                    "size": a.size,
                    "url": f"{base_url}/attachments/{self.channel_id}/{a.id}/{a.filename}",
                    "proxy_url": f"{base_url}/attachments/{self.channel_id}/{a.id}/{a.filename}",
                    "content_type": a.content_type,
                }
                for a in self.attachments
            ],
            "embeds": [] if blank_content else self.embeds,
            "components": [] if blank_content else self.components,
            "pinned": False,
            "type": TYPE_DEFAULT,
            "flags": self.flags,
        }
        if self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
            if not self.author.bot:
                data["member"] = _member_dict(self.author, with_user=False)
        if self.reference_id is not None:
            data["type"] = TYPE_REPLY
            data["message_reference"] = {
                "type": 0,
                "message_id": str(self.reference_id),
                "channel_id": str(self.channel_id),
            }
        if self.via in ("interaction", "followup"):
            data["webhook_id"] = str(application_id)
            data["application_id"] = str(application_id)
            if self.via == "interaction":
                data["type"] = TYPE_CHAT_INPUT_COMMAND
        return data


@dataclass
class Call:
    """One REST request the bot made, and how the stand-in answered it."""

    method: str
    path: str
    route: str
    status: int
    payload: dict[str, Any] | list[Any] | None
    files: list[tuple[str, bytes]]
    channel_id: int | None
    at: float


@dataclass
class InteractionRecord:
    """A slash command or button press the stand-in dispatched, and what the bot did with it."""

    id: int
    token: str
    type: int
    channel: DcChannel
    user: DcUser
    name: str
    dispatched_at: float
    created_wall: float
    message_id: int | None = None
    callbacks: list[int] = field(default_factory=list)
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    expired: bool = False

    @property
    def acknowledged(self) -> bool:
        return bool(self.callbacks)

    def token_alive(self) -> bool:
        return not self.expired and time.time() - self.created_wall < INTERACTION_TOKEN_SECS


@dataclass
class _Bucket:
    """A fixed window of calls on one rate-limited route and channel."""

    limit: int
    window_secs: float
    count: int = 0
    reset_at: float = 0.0


@dataclass
class _Injected:
    """An error the next calls to a channel (or interaction token) get instead of an answer."""

    status: int
    code: int
    message: str
    times: int
    retry_after_secs: float = 0.0
    is_global: bool = False


class _Connection:
    """One websocket from the bot, with its compression stream."""

    def __init__(self, ws: web.WebSocketResponse, *, compress: bool, path: str) -> None:
        self.ws = ws
        self.path = path
        self._deflate = zlib.compressobj() if compress else None
        self._lock = asyncio.Lock()

    async def send(self, frame: dict[str, Any]) -> None:
        text = json.dumps(frame)
        async with self._lock:
            if self.ws.closed:
                return
            with contextlib.suppress(ConnectionResetError):
                if self._deflate is None:
                    await self.ws.send_str(text)
                else:
                    data = self._deflate.compress(text.encode())
                    await self.ws.send_bytes(data + self._deflate.flush(zlib.Z_SYNC_FLUSH))


@dataclass
class _Session:
    """A gateway session: survives a dropped websocket so the bot can RESUME it."""

    id: str
    intents: int
    seq: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    connection: _Connection | None = None


class DiscordStandIn:
    """The REST API and gateway, with one test server, its channels, and Ann and Bob."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        message_content_granted: bool = True,
        premium_tier: int = 0,
        upload_limit_bytes: int | None = None,
        channel_limit: int = DEFAULT_CHANNEL_LIMIT,
        channel_window_secs: float = DEFAULT_CHANNEL_WINDOW_SECS,
        heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL_MS,
    ) -> None:
        self.token = token
        self.message_content_granted = message_content_granted
        self.upload_limit_bytes = upload_limit_bytes
        self.channel_limit = channel_limit
        self.channel_window_secs = channel_window_secs
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self._ids = itertools.count(1)

        self.bot = DcUser(self.snowflake(), "soundforge", "SoundForge", bot=True)
        self.application_id = self.bot.id
        self.ann = DcUser(self.snowflake(), "ann", "Ann")
        self.bob = DcUser(self.snowflake(), "bob", "Bob")
        self.users = {user.id: user for user in (self.ann, self.bob)}
        self.guild = DcGuild(self.snowflake(), "SoundForge test server", self.ann.id, premium_tier)
        self.general = self._add_channel("general")
        self.locked = self._add_channel("announcements", bot_can_send=False)
        self.channels: dict[int, DcChannel] = {c.id: c for c in self.guild.channels}
        self.messages: dict[int, StoredMessage] = {}
        self.interactions: dict[int, InteractionRecord] = {}
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}

        # What the bot did, for assertions.
        self.calls: list[Call] = []
        self.identifies: list[dict[str, Any]] = []
        self.readies = 0
        self.gateway_closes: list[int] = []
        self.resumes: list[dict[str, Any]] = []
        self.gateway_paths: list[str] = []
        self.heartbeats = 0
        self.early_retries = 0

        self._sessions: dict[str, _Session] = {}
        self._buckets: dict[tuple[str, int | str], _Bucket] = {}
        self._injected: dict[int | str, list[_Injected]] = {}
        # A channel (or token) told to wait answers 429 again until this monotonic deadline.
        self._blocked_until: dict[int | str, float] = {}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._port = 0

    # Life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve on 127.0.0.1 at a free port."""
        app = web.Application(client_max_size=_MAX_BODY_BYTES, middlewares=[self._record])
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/gateway/resume", self._gateway)
        app.router.add_get("/attachments/{channel}/{attachment}/{filename}", self._attachment)
        routes: list[tuple[str, str, Callable[..., Any]]] = [
            ("GET", "/gateway", self._get_gateway),
            ("GET", "/gateway/bot", self._get_gateway),
            ("GET", "/users/@me", self._get_me),
            ("GET", "/oauth2/applications/@me", self._get_application),
            ("GET", "/applications/@me", self._get_application),
            ("PUT", "/applications/{app}/commands", self._put_commands),
            ("GET", "/applications/{app}/commands", self._get_commands),
            ("PUT", "/applications/{app}/guilds/{guild}/commands", self._put_commands),
            ("GET", "/applications/{app}/guilds/{guild}/commands", self._get_commands),
            ("POST", "/interactions/{interaction}/{token}/callback", self._callback),
            ("GET", "/webhooks/{app}/{token}/messages/{message}", self._get_webhook_message),
            ("PATCH", "/webhooks/{app}/{token}/messages/{message}", self._edit_webhook_message),
            ("DELETE", "/webhooks/{app}/{token}/messages/{message}", self._delete_webhook_message),
            ("POST", "/webhooks/{app}/{token}", self._followup),
            ("POST", "/users/@me/channels", self._create_dm),
            ("POST", "/channels/{channel}/messages", self._create_message),
            ("GET", "/channels/{channel}/messages/{message}", self._get_message),
            ("PATCH", "/channels/{channel}/messages/{message}", self._edit_message),
            ("DELETE", "/channels/{channel}/messages/{message}", self._delete_message),
            ("POST", "/channels/{channel}/typing", self._typing),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, API_PREFIX + path, handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        _log.debug("Discord stand-in listening on port %s", self._port)

    async def stop(self) -> None:
        """Close every websocket and stop serving."""
        for session in self._sessions.values():
            if session.connection is not None:
                await session.connection.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def api_base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/gateway"

    @property
    def resume_gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/gateway/resume"

    # Test API: the world --------------------------------------------------------------------

    def snowflake(self, *, age_secs: float = 0.0) -> int:
        """A Discord id minted now (or `age_secs` ago), unique within the stand-in."""
        ms = int((time.time() - age_secs) * 1000) - DISCORD_EPOCH_MS
        return (ms << 22) | (next(self._ids) & 0x3FFFFF)

    def dm_channel(self, user: DcUser) -> DcChannel:
        """The DM channel between `user` and the bot, made on first use."""
        for channel in self.channels.values():
            if channel.is_dm and channel.recipient == user:
                return channel
        channel = DcChannel(self.snowflake(), f"dm-{user.username}", CHANNEL_DM, recipient=user)
        self.channels[channel.id] = channel
        return channel

    def _add_channel(self, name: str, *, bot_can_send: bool = True) -> DcChannel:
        channel = DcChannel(
            self.snowflake(), name, guild_id=self.guild.id, bot_can_send=bot_can_send
        )
        self.guild.channels.append(channel)
        return channel

    def upload_limit(self, channel: DcChannel) -> int:
        """The most bytes of attachments one message in `channel` may carry."""
        if self.upload_limit_bytes is not None:
            return self.upload_limit_bytes
        tier = 0 if channel.is_dm else self.guild.premium_tier
        return UPLOAD_LIMIT_BY_TIER[tier]

    @property
    def session_intents(self) -> int | None:
        """The intents of the last IDENTIFY, or None before the bot identified."""
        return self.identifies[-1]["intents"] if self.identifies else None

    @property
    def session_ids(self) -> list[str]:
        """Every gateway session the bot started with IDENTIFY, oldest first."""
        return list(self._sessions)

    def messages_in(self, channel: DcChannel) -> list[StoredMessage]:
        """The channel's messages as a user sees them now, oldest first."""
        return [m for m in self.messages.values() if m.channel_id == channel.id and not m.deleted]

    def bot_messages_in(self, channel: DcChannel) -> list[StoredMessage]:
        """What the bot has posted in the channel and not deleted."""
        return [m for m in self.messages_in(channel) if m.author == self.bot]

    def calls_to(self, route: str, method: str | None = None) -> list[Call]:
        """Recorded calls on one route template (e.g. `/channels/{channel}/messages`)."""
        return [
            c for c in self.calls if c.route == route and (method is None or c.method == method)
        ]

    @property
    def rate_limited_calls(self) -> list[Call]:
        return [c for c in self.calls if c.status == 429]

    async def wait_until(self, predicate: Callable[[], bool], guard_secs: float = 15.0) -> None:
        """Wait until `predicate()` holds after some call or event; `guard_secs` ends a hang."""
        async with asyncio.timeout(guard_secs), self._changed:
            await self._changed.wait_for(predicate)

    async def wait_for_ready(self, guard_secs: float = 15.0) -> None:
        """Wait until the bot identified and got READY."""
        await self.wait_until(lambda: self.readies > 0, guard_secs)

    # Test API: what people do -------------------------------------------------------------

    async def send_dm(self, user: DcUser, text: str) -> StoredMessage:
        """`user` writes `text` to the bot in their DM."""
        channel = self.dm_channel(user)
        return await self._user_message(user, channel, text, mentions=[])

    async def send_guild_message(
        self, user: DcUser, channel: DcChannel, text: str, *, mention_bot: bool = False
    ) -> StoredMessage:
        """`user` writes in a server channel, starting with `@SoundForge` when `mention_bot`."""
        if mention_bot:
            text = f"<@{self.bot.id}> {text}"
        mentions = [self.bot] if mention_bot else []
        return await self._user_message(user, channel, text, mentions=mentions)

    async def slash(
        self,
        user: DcUser,
        channel: DcChannel,
        name: str,
        options: dict[str, str] | None = None,
        *,
        attachment_size_limit: int | None = None,
    ) -> InteractionRecord:
        """`user` runs `/name` with string options in `channel`."""
        command = self._command_named(name)
        data: dict[str, Any] = {
            "id": command.get("id", str(self.snowflake())),
            "name": name,
            "type": 1,
            "options": [
                {"name": key, "type": 3, "value": value} for key, value in (options or {}).items()
            ],
        }
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        record = self._new_interaction(INTERACTION_COMMAND, user, channel, name)
        payload = self._interaction_payload(record, data, attachment_size_limit)
        await self._dispatch("INTERACTION_CREATE", payload)
        return record

    async def press(
        self, user: DcUser, message: StoredMessage, custom_id: str
    ) -> InteractionRecord:
        """`user` presses the button `custom_id` under `message`."""
        if custom_id not in [cid for _, cid in message.buttons]:
            raise AssertionError(f"message {message.id} has no button {custom_id!r}")
        data = {"custom_id": custom_id, "component_type": COMPONENT_BUTTON}
        return await self._component(user, message, custom_id, data)

    async def choose(
        self, user: DcUser, message: StoredMessage, custom_id: str, values: list[str]
    ) -> InteractionRecord:
        """`user` picks `values` in the select menu `custom_id` under `message`."""
        data = {
            "custom_id": custom_id,
            "component_type": COMPONENT_STRING_SELECT,
            "values": values,
        }
        return await self._component(user, message, custom_id, data)

    def expire_interaction(self, record: InteractionRecord) -> None:
        """Let the interaction's 15 minutes pass: its token stops working."""
        record.expired = True

    # Test API: trouble --------------------------------------------------------------------

    def inject_rate_limit(
        self,
        channel: DcChannel,
        retry_after_secs: float,
        *,
        times: int = 1,
        is_global: bool = False,
    ) -> None:
        """The next `times` message calls in `channel` get 429 with `retry_after_secs`."""
        self._injected.setdefault(channel.id, []).append(
            _Injected(
                429,
                0,
                "You are being rate limited.",
                times,
                retry_after_secs=retry_after_secs,
                is_global=is_global,
            )
        )

    def inject_error(
        self, channel: DcChannel, status: int, code: int, message: str, *, times: int = 1
    ) -> None:
        """The next `times` message calls in `channel` fail with Discord's error shape."""
        self._injected.setdefault(channel.id, []).append(_Injected(status, code, message, times))

    async def request_reconnect(self) -> None:
        """Ask the bot to reconnect (op 7), as Discord does before moving a session."""
        for session in self._sessions.values():
            if session.connection is not None:
                await session.connection.send(
                    {"op": OP_RECONNECT, "d": None, "s": None, "t": None}
                )

    async def drop_connection(self, code: int = 4000) -> None:
        """Close the bot's websocket as a network fault would; the bot should RESUME."""
        for session in self._sessions.values():
            if session.connection is not None:
                await session.connection.ws.close(code=code, message=b"stand-in dropped it")

    # Gateway --------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        compress = request.query.get("compress") == "zlib-stream"
        connection = _Connection(ws, compress=compress, path=request.path)
        self.gateway_paths.append(request.path)
        hello = {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": ["stand-in"]}
        await connection.send({"op": OP_HELLO, "d": hello, "s": None, "t": None})
        session: _Session | None = None
        try:
            async for frame in ws:
                if frame.type is not WSMsgType.TEXT:
                    continue
                message = json.loads(frame.data)
                session = await self._on_frame(connection, message) or session
        finally:
            if session is not None and session.connection is connection:
                session.connection = None
        return ws

    async def _on_frame(self, connection: _Connection, message: dict[str, Any]) -> _Session | None:
        """Answer one frame from the bot; a new or resumed session is returned."""
        op = message.get("op")
        data: dict[str, Any] = message.get("d") or {}
        if op == OP_HEARTBEAT:
            self.heartbeats += 1
            await connection.send({"op": OP_HEARTBEAT_ACK, "d": None, "s": None, "t": None})
            return None
        if op == OP_IDENTIFY:
            return await self._identify(connection, data)
        if op == OP_RESUME:
            return await self._resume(connection, data)
        return None

    async def _identify(self, connection: _Connection, data: dict[str, Any]) -> _Session | None:
        self.identifies.append(data)
        intents = data.get("intents")
        granted = INTENT_MESSAGE_CONTENT if self.message_content_granted else 0
        if data.get("token") != self.token:
            await self._close(connection, CLOSE_AUTHENTICATION_FAILED, "Authentication failed.")
            return None
        if not isinstance(intents, int):
            await self._close(connection, CLOSE_INVALID_INTENTS, "Invalid intent(s).")
            return None
        if any(bit & intents and not bit & granted for bit in _PRIVILEGED_INTENTS):
            await self._close(connection, CLOSE_DISALLOWED_INTENTS, "Disallowed intent(s).")
            return None

        session = _Session(secrets.token_hex(16), intents, connection=connection)
        self._sessions[session.id] = session
        ready = {
            "v": 10,
            "user": self.bot.to_dict(),
            "guilds": [{"id": str(self.guild.id), "unavailable": True}],
            "session_id": session.id,
            "resume_gateway_url": self.resume_gateway_url,
            "session_type": "normal",
            "private_channels": [],
            "relationships": [],
            "user_settings": {},
            "application": {"id": str(self.application_id), "flags": self._application_flags()},
            "_trace": ["stand-in"],
        }
        await self._send_event(session, "READY", ready)
        if intents & INTENT_GUILDS:
            await self._send_event(session, "GUILD_CREATE", self.guild.to_dict(self.bot))
        self.readies += 1
        await self._notify()
        return session

    async def _close(self, connection: _Connection, code: int, reason: str) -> None:
        self.gateway_closes.append(code)
        await connection.ws.close(code=code, message=reason.encode())
        await self._notify()

    async def _resume(self, connection: _Connection, data: dict[str, Any]) -> _Session | None:
        session = self._sessions.get(data.get("session_id", ""))
        if data.get("token") != self.token or session is None:
            await connection.send({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
            return None
        session.connection = connection
        after = data.get("seq") or 0
        for frame in session.events:
            if frame["s"] > after:
                await connection.send(frame)
        await self._send_event(session, "RESUMED", {"_trace": ["stand-in"]})
        self.resumes.append(data)
        await self._notify()
        return session

    async def _send_event(self, session: _Session, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        frame = {"op": OP_DISPATCH, "t": event, "s": session.seq, "d": data}
        session.events.append(frame)
        if session.connection is not None:
            await session.connection.send(frame)

    async def _dispatch(self, event: str, data: dict[str, Any], *, intent: int = 0) -> None:
        for session in self._sessions.values():
            if intent and not session.intents & intent:
                continue
            await self._send_event(session, event, data)

    def _application_flags(self) -> int:
        return APP_FLAG_GATEWAY_MESSAGE_CONTENT_LIMITED if self.message_content_granted else 0

    async def _user_message(
        self, user: DcUser, channel: DcChannel, text: str, *, mentions: list[DcUser]
    ) -> StoredMessage:
        message = StoredMessage(
            self.snowflake(), channel.id, user, text, guild_id=channel.guild_id, mentions=mentions
        )
        self.messages[message.id] = message
        await self._announce(message)
        return message

    async def _announce(self, message: StoredMessage) -> None:
        """Send MESSAGE_CREATE to every session whose intents cover it."""
        channel = self.channels[message.channel_id]
        intent = INTENT_DIRECT_MESSAGES if channel.is_dm else INTENT_GUILD_MESSAGES
        for session in self._sessions.values():
            if not session.intents & intent:
                continue
            # Without Message Content, Discord blanks server messages that do not mention the
            # bot and were not written by it; DMs and mentions keep their text.
            exempt = channel.is_dm or message.author == self.bot or self.bot in message.mentions
            blank = not exempt and not session.intents & INTENT_MESSAGE_CONTENT
            data = self._json(message, blank_content=blank)
            await self._send_event(session, "MESSAGE_CREATE", data)

    def _command_named(self, name: str) -> dict[str, Any]:
        for command in itertools.chain(self.global_commands, *self.guild_commands.values()):
            if command["name"] == name:
                return command
        raise AssertionError(f"/{name} was never synced; synced: {self._synced_names()}")

    def _synced_names(self) -> list[str]:
        every = itertools.chain(self.global_commands, *self.guild_commands.values())
        return [c["name"] for c in every]

    def _new_interaction(
        self, kind: int, user: DcUser, channel: DcChannel, name: str
    ) -> InteractionRecord:
        record = InteractionRecord(
            id=self.snowflake(),
            token="aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48),
            type=kind,
            channel=channel,
            user=user,
            name=name,
            dispatched_at=time.monotonic(),
            created_wall=time.time(),
        )
        self.interactions[record.id] = record
        return record

    def _interaction_payload(
        self, record: InteractionRecord, data: dict[str, Any], size_limit: int | None
    ) -> dict[str, Any]:
        channel = record.channel
        payload: dict[str, Any] = {
            "id": str(record.id),
            "application_id": str(self.application_id),
            "type": record.type,
            "data": data,
            "channel_id": str(channel.id),
            "channel": {**channel.to_dict(), "permissions": _USER_PERMISSIONS},
            "token": record.token,
            "version": 1,
            "app_permissions": _BOT_PERMISSIONS,
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": size_limit or self.upload_limit(channel),
        }
        if channel.is_dm:
            payload["user"] = record.user.to_dict()
            payload["context"] = 1
            payload["authorizing_integration_owners"] = {"0": str(record.user.id)}
        else:
            payload["guild_id"] = str(self.guild.id)
            payload["guild"] = {"id": str(self.guild.id), "locale": "en-US", "features": []}
            payload["guild_locale"] = "en-US"
            payload["member"] = {**_member_dict(record.user), "permissions": _USER_PERMISSIONS}
            payload["context"] = 0
            payload["authorizing_integration_owners"] = {"0": str(self.guild.id)}
        return payload

    async def _component(
        self, user: DcUser, message: StoredMessage, custom_id: str, data: dict[str, Any]
    ) -> InteractionRecord:
        channel = self.channels[message.channel_id]
        record = self._new_interaction(INTERACTION_COMPONENT, user, channel, custom_id)
        record.message_id = message.id
        payload = self._interaction_payload(record, data, None)
        payload["message"] = self._json(message)
        await self._dispatch("INTERACTION_CREATE", payload)
        return record

    def _json(self, message: StoredMessage, *, blank_content: bool = False) -> dict[str, Any]:
        base = f"http://127.0.0.1:{self._port}"
        return message.to_dict(
            application_id=self.application_id, base_url=base, blank_content=blank_content
        )

    async def _attachment(self, request: web.Request) -> web.Response:
        """Serve an attachment's bytes at the URL its message carries."""
        message_id = int(request.match_info["attachment"])
        for message in self.messages.values():
            for attachment in message.attachments:
                if attachment.id == message_id:
                    return web.Response(body=attachment.data)
        raise web.HTTPNotFound()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # REST: recording, auth, limits ----------------------------------------------------------

    @web.middleware
    async def _record(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX):
            return await handler(request)  # type: ignore[no-any-return]
        resource = request.match_info.route.resource
        template = resource.canonical if resource is not None else request.path
        route = template.removeprefix(API_PREFIX)
        request[_BODY] = (None, [])
        try:
            request[_BODY] = await _read_body(request)
            for attachment in request[_BODY][1]:
                attachment.id = self.snowflake()
            self._check_auth(request, route)
            response = await handler(request)
        except _ApiError as exc:
            response = exc.response()
        except web.HTTPException as exc:
            response = _ApiError(exc.status, 0, f"{exc.status}: {exc.reason}").response()
        payload, files = request[_BODY]
        channel_id = request.get(_CHANNEL)
        self.calls.append(
            Call(
                request.method,
                request.path.removeprefix(API_PREFIX),
                route,
                response.status,
                payload,
                [(a.filename, a.data) for a in files],
                channel_id,
                time.monotonic(),
            )
        )
        await self._notify()
        return response  # type: ignore[no-any-return]

    def _check_auth(self, request: web.Request, route: str) -> None:
        # Interaction callbacks and webhook calls are authorised by the token in their path.
        if route.startswith(("/interactions/", "/webhooks/")):
            return
        if request.headers.get("Authorization") != f"Bot {self.token}":
            raise _ApiError(401, 0, "401: Unauthorized")

    def _limit(self, key: int | str, bucket_name: str) -> dict[str, str]:
        """Count one call on a limited route; raise 429 past the limit, else return headers."""
        now = time.monotonic()

        # A 429 the stand-in was told to give, and its wait, come first.
        blocked_until = self._blocked_until.get(key, 0.0)
        if now < blocked_until:
            self.early_retries += 1
            raise self._too_many(blocked_until - now, bucket_name, is_global=False)
        queue = self._injected.get(key, [])
        if queue and queue[0].status == 429:
            injected = queue[0]
            injected.times -= 1
            if injected.times <= 0:
                queue.pop(0)
            self._blocked_until[key] = now + injected.retry_after_secs
            raise self._too_many(
                injected.retry_after_secs, bucket_name, is_global=injected.is_global
            )

        # Then the route's own window.
        bucket = self._buckets.setdefault(
            (bucket_name, key), _Bucket(self.channel_limit, self.channel_window_secs)
        )
        if now >= bucket.reset_at:
            bucket.count = 0
            bucket.reset_at = now + bucket.window_secs
        if bucket.count >= bucket.limit:
            raise self._too_many(bucket.reset_at - now, bucket_name, is_global=False)
        bucket.count += 1
        reset_after = bucket.reset_at - now
        return {
            "X-RateLimit-Limit": str(bucket.limit),
            "X-RateLimit-Remaining": str(bucket.limit - bucket.count),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket_name,
        }

    def _too_many(self, retry_after: float, bucket_name: str, *, is_global: bool) -> _ApiError:
        retry_after = max(retry_after, 0.001)
        headers = {
            "Retry-After": str(math.ceil(retry_after)),
            "X-RateLimit-Limit": str(self.channel_limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Bucket": bucket_name,
            "X-RateLimit-Scope": "shared" if is_global else "user",
            # discord.py takes a 429 without Via for a Cloudflare ban; Discord's carry it.
            "Via": "1.1 google",
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        extra = {"retry_after": round(retry_after, 3), "global": is_global}
        return _ApiError(429, 0, "You are being rate limited.", extra=extra, headers=headers)

    def _raise_injected(self, key: int | str) -> None:
        queue = self._injected.get(key, [])
        if queue and queue[0].status != 429:
            injected = queue[0]
            injected.times -= 1
            if injected.times <= 0:
                queue.pop(0)
            raise _ApiError(injected.status, injected.code, injected.message)

    # REST: identity and commands ------------------------------------------------------------

    async def _get_gateway(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return _json_response({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    async def _get_me(self, request: web.Request) -> web.Response:
        return _json_response({**self.bot.to_dict(), "verified": True, "flags": 0})

    async def _get_application(self, request: web.Request) -> web.Response:
        return _json_response(
            {
                "id": str(self.application_id),
                "name": "SoundForge",
                "icon": None,
                "description": "Spotify links to tagged audio files.",
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "owner": self.ann.to_dict(),
                "team": None,
                "flags": self._application_flags(),
                "bot": self.bot.to_dict(),
                "interactions_endpoint_url": None,
                "redirect_uris": [],
                "approximate_guild_count": 1,
            }
        )

    async def _put_commands(self, request: web.Request) -> web.Response:
        self._check_application(request)
        payload, _ = request[_BODY]
        if not isinstance(payload, list):
            raise _ApiError(400, 50035, "Invalid Form Body")
        guild = request.match_info.get("guild")
        stored = []
        for command in payload:
            if not command.get("name") or not command.get("description"):
                raise _ApiError(400, 50035, "Invalid Form Body")
            entry = {
                **command,
                "id": str(self.snowflake()),
                "application_id": str(self.application_id),
                "version": str(self.snowflake()),
                "type": command.get("type", 1),
                "default_member_permissions": command.get("default_member_permissions"),
            }
            if guild is not None:
                entry["guild_id"] = guild
            stored.append(entry)
        if guild is None:
            self.global_commands = stored
        else:
            self.guild_commands[int(guild)] = stored
        return _json_response(stored)

    async def _get_commands(self, request: web.Request) -> web.Response:
        self._check_application(request)
        guild = request.match_info.get("guild")
        found = self.global_commands if guild is None else self.guild_commands.get(int(guild), [])
        return _json_response(found)

    def _check_application(self, request: web.Request) -> None:
        if request.match_info["app"] != str(self.application_id):
            raise _ApiError(404, 10002, "Unknown Application")

    # REST: interactions and their webhook -----------------------------------------------------

    def _interaction_for(self, interaction_id: str, token: str) -> InteractionRecord:
        record = self.interactions.get(int(interaction_id)) if interaction_id.isdigit() else None
        if record is None or record.token != token:
            raise _ApiError(404, 10062, "Unknown interaction")
        return record

    def _webhook_interaction(self, request: web.Request) -> InteractionRecord:
        if request.match_info["app"] != str(self.application_id):
            raise _ApiError(404, 10015, "Unknown Webhook")
        token = request.match_info["token"]
        for record in self.interactions.values():
            if record.token == token:
                if not record.token_alive():
                    raise _ApiError(401, 50027, "Invalid Webhook Token")
                request[_CHANNEL] = record.channel.id
                return record
        raise _ApiError(404, 10015, "Unknown Webhook")

    async def _callback(self, request: web.Request) -> web.Response:
        record = self._interaction_for(
            request.match_info["interaction"], request.match_info["token"]
        )
        request[_CHANNEL] = record.channel.id
        if record.acknowledged:
            raise _ApiError(400, 40060, "Interaction has already been acknowledged.")
        if time.monotonic() - record.dispatched_at > INTERACTION_ACK_SECS:
            raise _ApiError(404, 10062, "Unknown interaction")
        payload, files = request[_BODY]
        if not isinstance(payload, dict) or "type" not in payload:
            raise _ApiError(400, 50035, "Invalid Form Body")
        kind = int(payload["type"])
        data = payload.get("data") or {}
        message: StoredMessage | None = None

        if kind in (CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE):
            message = StoredMessage(
                self.snowflake(),
                record.channel.id,
                self.bot,
                "",
                guild_id=record.channel.guild_id,
                via="interaction",
                interaction_id=record.id,
            )
            if kind == CALLBACK_DEFERRED_MESSAGE:
                message.flags = FLAG_LOADING | int(data.get("flags", 0))
            else:
                self._apply(message, data, files, record.channel, replace_files=False)
            self.messages[message.id] = message
            record.original_message_id = message.id
        elif kind in (CALLBACK_DEFERRED_UPDATE, CALLBACK_UPDATE):
            if record.message_id is None:
                raise _ApiError(400, 40043, "Interaction has no message to update")
            message = self.messages[record.message_id]
            if kind == CALLBACK_UPDATE:
                self._apply(message, data, files, record.channel, replace_files=False)
                message.edits += 1
        else:
            raise _ApiError(400, 50035, f"Unsupported interaction callback type {kind}")
        record.callbacks.append(kind)

        if request.query.get("with_response") not in ("1", "true", "True"):
            return web.Response(status=204)
        response: dict[str, Any] = {
            "interaction": {
                "id": str(record.id),
                "type": record.type,
                "response_message_id": str(message.id),
                "response_message_loading": kind == CALLBACK_DEFERRED_MESSAGE,
                "response_message_ephemeral": False,
            },
            "resource": {"type": kind},
        }
        if kind != CALLBACK_DEFERRED_UPDATE:
            response["resource"]["message"] = self._json(message)
        return _json_response(response)

    def _webhook_target(self, record: InteractionRecord, message_ref: str) -> StoredMessage:
        if message_ref == "@original":
            target = record.original_message_id or record.message_id
        elif message_ref.isdigit() and int(message_ref) in record.followup_ids:
            target = int(message_ref)
        else:
            target = None
        message = self.messages.get(target) if target is not None else None
        if message is None or message.deleted:
            raise _ApiError(404, 10008, "Unknown Message")
        return message

    async def _get_webhook_message(self, request: web.Request) -> web.Response:
        record = self._webhook_interaction(request)
        message = self._webhook_target(record, request.match_info["message"])
        return _json_response(self._json(message))

    async def _edit_webhook_message(self, request: web.Request) -> web.Response:
        record = self._webhook_interaction(request)
        headers = self._limit(record.token, "webhook")
        message = self._webhook_target(record, request.match_info["message"])
        payload, files = request[_BODY]
        self._apply(message, _as_dict(payload), files, record.channel, replace_files=True)
        message.flags &= ~FLAG_LOADING
        message.edits += 1
        data = self._json(message)
        return _json_response(data, headers=headers)

    async def _delete_webhook_message(self, request: web.Request) -> web.Response:
        record = self._webhook_interaction(request)
        headers = self._limit(record.token, "webhook")
        message = self._webhook_target(record, request.match_info["message"])
        message.deleted = True
        return web.Response(status=204, headers=headers)

    async def _followup(self, request: web.Request) -> web.Response:
        record = self._webhook_interaction(request)
        headers = self._limit(record.token, "webhook")
        if not record.acknowledged:
            raise _ApiError(400, 40060, "Interaction has not been acknowledged.")
        payload, files = request[_BODY]
        message = StoredMessage(
            self.snowflake(),
            record.channel.id,
            self.bot,
            "",
            guild_id=record.channel.guild_id,
            via="followup",
            interaction_id=record.id,
        )
        self._apply(message, _as_dict(payload), files, record.channel, replace_files=False)
        self.messages[message.id] = message
        record.followup_ids.append(message.id)
        await self._announce(message)
        if request.query.get("wait") not in ("1", "true", "True"):
            return web.Response(status=204, headers=headers)
        data = self._json(message)
        return _json_response(data, headers=headers)

    # REST: channels and messages --------------------------------------------------------------

    def _channel(self, request: web.Request) -> DcChannel:
        raw = request.match_info["channel"]
        channel = self.channels.get(int(raw)) if raw.isdigit() else None
        if channel is None:
            raise _ApiError(404, 10003, "Unknown Channel")
        request[_CHANNEL] = channel.id
        return channel

    def _message(self, channel: DcChannel, raw: str) -> StoredMessage:
        message = self.messages.get(int(raw)) if raw.isdigit() else None
        if message is None or message.deleted or message.channel_id != channel.id:
            raise _ApiError(404, 10008, "Unknown Message")
        return message

    async def _create_dm(self, request: web.Request) -> web.Response:
        payload, _ = request[_BODY]
        recipient = str(_as_dict(payload).get("recipient_id"))
        user = self.users.get(int(recipient)) if recipient.isdigit() else None
        if user is None:
            raise _ApiError(400, 50007, "Cannot send messages to this user")
        return _json_response(self.dm_channel(user).to_dict())

    async def _create_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        headers = self._limit(channel.id, "channel-messages")
        self._raise_injected(channel.id)
        if not channel.bot_can_send:
            raise _ApiError(403, 50013, "Missing Permissions")
        payload, files = request[_BODY]
        message = StoredMessage(
            self.snowflake(), channel.id, self.bot, "", guild_id=channel.guild_id, via="channel"
        )
        data = _as_dict(payload)
        self._apply(message, data, files, channel, replace_files=False)
        reference = (data.get("message_reference") or {}).get("message_id")
        if reference is not None:
            referenced = self.messages.get(int(reference))
            if referenced is None or referenced.channel_id != channel.id:
                if (data.get("message_reference") or {}).get("fail_if_not_exists", True):
                    raise _ApiError(400, 50035, "Invalid Form Body: Unknown message")
            else:
                message.reference_id = referenced.id
        self.messages[message.id] = message
        await self._announce(message)
        data = self._json(message)
        return _json_response(data, headers=headers)

    async def _get_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message(channel, request.match_info["message"])
        return _json_response(self._json(message))

    async def _edit_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        headers = self._limit(channel.id, "channel-messages")
        self._raise_injected(channel.id)
        message = self._message(channel, request.match_info["message"])
        if message.author != self.bot:
            raise _ApiError(403, 50005, "Cannot edit a message authored by another user")
        payload, files = request[_BODY]
        self._apply(message, _as_dict(payload), files, channel, replace_files=True)
        message.flags &= ~FLAG_LOADING
        message.edits += 1
        data = self._json(message)
        return _json_response(data, headers=headers)

    async def _delete_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        headers = self._limit(channel.id, "channel-messages")
        self._raise_injected(channel.id)
        message = self._message(channel, request.match_info["message"])
        if message.author != self.bot:
            raise _ApiError(403, 50013, "Missing Permissions")
        message.deleted = True
        return web.Response(status=204, headers=headers)

    async def _typing(self, request: web.Request) -> web.Response:
        self._channel(request)
        return web.Response(status=204)

    def _apply(
        self,
        message: StoredMessage,
        data: dict[str, Any],
        files: list[StoredAttachment],
        channel: DcChannel,
        *,
        replace_files: bool,
    ) -> None:
        """Write a create or edit payload onto `message`, with Discord's checks."""
        kept = message.attachments
        if replace_files and "attachments" in data:
            keep_ids = {str(a.get("id")) for a in data["attachments"] or []}
            kept = [a for a in message.attachments if str(a.id) in keep_ids]
        attachments = [*kept, *files] if replace_files else [*message.attachments, *files]
        if sum(a.size for a in files) > self.upload_limit(channel):
            raise _ApiError(413, 40005, "Request entity too large")

        content = data.get("content", message.content) or ""
        embeds = data.get("embeds", message.embeds)
        components = data.get("components", message.components)
        if len(content) > MAX_CONTENT_CHARS:
            raise _ApiError(
                400, 50035, "Invalid Form Body", extra={"errors": {"content": "too long"}}
            )
        if not (content or embeds or attachments or components or message.flags & FLAG_LOADING):
            raise _ApiError(400, 50006, "Cannot send an empty message")
        message.content = content
        message.embeds = list(embeds or [])
        message.components = list(components or [])
        message.attachments = attachments


def _json_response(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """JSON with Discord's bare `application/json` type, which discord.py checks for exactly."""
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def _as_dict(payload: dict[str, Any] | list[Any] | None) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise _ApiError(400, 50035, "Invalid Form Body")
    return payload


async def _read_body(
    request: web.Request,
) -> tuple[dict[str, Any] | list[Any] | None, list[StoredAttachment]]:
    """The JSON body, or a multipart body's `payload_json` and `files[n]` parts."""
    if not request.body_exists:
        return None, []
    if request.content_type.startswith("multipart/"):
        payload: dict[str, Any] | list[Any] | None = None
        files: list[StoredAttachment] = []
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            raw = await part.read()
            if part.name == "payload_json":
                payload = json.loads(raw)
            elif part.name.startswith("files["):
                content_type = part.headers.get("Content-Type")
                filename = part.filename or "file"
                # The id is a placeholder until the stand-in stores the file.
                files.append(StoredAttachment(0, filename, bytes(raw), content_type))
        return payload, files
    with contextlib.suppress(ValueError):
        return await request.json(), []
    raise _ApiError(400, 50109, "The request body contains invalid JSON.")
