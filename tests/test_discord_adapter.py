"""The Discord adapter with the real discord.py against the loopback REST and gateway stand-in."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from bot.discord import MESSAGE_CONTENT_HINT, DiscordAdapter
from bot.errors import (
    ChatUnavailable,
    Forbidden,
    InvalidChatToken,
    MessageGone,
    NotModified,
    RateLimited,
    TooLarge,
)
from bot.port import AudioFile, Button, ChatRef, IncomingMessage, MessageRef
from config.logging import redact
from tests.fixtures.discord import (
    DISCORD_COMMANDS,
    GUARD_SECS,
    DiscordBot,
    DiscordInbox,
    MakeDiscordStandIn,
    ManualClock,
    StartDiscordBot,
    discord_settings,
)
from tests.fixtures.redis import free_port
from tests.standins.discord import (
    CALLBACK_DEFERRED_MESSAGE,
    CALLBACK_DEFERRED_UPDATE,
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILDS,
    INTENT_MESSAGE_CONTENT,
    DcChannel,
    DiscordStandIn,
)

TRACK_URL = "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC"
MESSAGES = "/channels/{channel}/messages"
MESSAGE = "/channels/{channel}/messages/{message}"
ORIGINAL = "/webhooks/{app}/{token}/messages/{message}"
FOLLOWUP = "/webhooks/{app}/{token}"


def chat_of(channel: DcChannel) -> ChatRef:
    return ChatRef("discord", str(channel.id), is_private=channel.is_dm)


def audio_file(tmp_path: Path, size: int, *, thumbnail: bytes | None = None) -> AudioFile:
    path = tmp_path / "4uLU6hMCjMI75M1A2tKUQC.mp3"
    path.write_bytes(bytes(range(256)) * (size // 256) + b"\x00" * (size % 256))
    return AudioFile(path, "Bye Bye Bye", "*NSYNC", 200, thumbnail=thumbnail)


async def answered(stand_in: DiscordStandIn, channel: DcChannel, count: int = 1) -> None:
    """Wait until the bot shows `count` finished messages in `channel`."""
    await stand_in.wait_until(
        lambda: len([m for m in stand_in.bot_messages_in(channel) if not m.thinking]) >= count
    )


# -- connecting ------------------------------------------------------------------------------


async def test_connects_with_guilds_dms_and_server_messages_plus_granted_content(
    discord_bot: DiscordBot,
) -> None:
    stand_in = discord_bot.stand_in

    assert stand_in.readies == 1
    assert stand_in.gateway_paths == ["/gateway"]
    assert stand_in.session_intents == (
        INTENT_GUILDS | INTENT_GUILD_MESSAGES | INTENT_DIRECT_MESSAGES | INTENT_MESSAGE_CONTENT
    )
    assert stand_in.heartbeats >= 1
    assert discord_bot.adapter.bot_id == str(stand_in.bot.id)
    assert discord_bot.adapter.message_content_granted is True


async def test_start_syncs_every_slash_command_with_the_link_option(
    discord_bot: DiscordBot,
) -> None:
    stand_in = discord_bot.stand_in

    assert len(stand_in.calls_to("/applications/{app}/commands", "PUT")) == 1
    synced = {command["name"]: command for command in stand_in.global_commands}
    assert list(synced) == [command.name for command in DISCORD_COMMANDS]
    (option,) = synced["get"]["options"]
    assert (option["name"], option["type"], option["required"]) == ("link", 3, True)
    assert option["description"] == "A Spotify link (open.spotify.com or spotify.link)"
    assert synced["status"].get("options", []) == []
    assert sorted(synced["get"]["contexts"]) == [0, 1]


async def test_missing_message_content_is_logged_once_and_commands_still_work(
    make_discord_standin: MakeDiscordStandIn,
    start_discord_bot: StartDiscordBot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.discord")
    stand_in = await make_discord_standin(message_content_granted=False)

    bot = await start_discord_bot(stand_in)
    await stand_in.drop_connection()
    await stand_in.wait_until(lambda: len(stand_in.resumes) == 1)
    await stand_in.slash(stand_in.ann, stand_in.general, "status")
    await stand_in.send_dm(stand_in.ann, TRACK_URL)
    # The command waits for its acknowledgement, so the DM may arrive first.
    arrived = {message.command: message for message in await bot.inbox.wait_for(2)}

    hints = [
        r for r in caplog.records if r.name == "bot.discord" and "Message Content" in r.message
    ]
    assert [r.message for r in hints] == [MESSAGE_CONTENT_HINT]
    assert stand_in.session_intents is not None
    assert not stand_in.session_intents & INTENT_MESSAGE_CONTENT
    assert stand_in.gateway_closes == []
    assert bot.adapter.message_content_granted is False
    assert sorted(arrived, key=str) == [None, "status"]
    assert arrived[None].text == TRACK_URL


async def test_a_rejected_token_says_which_variable(
    discord_standin: DiscordStandIn, tmp_path: Path
) -> None:
    settings = discord_settings(
        discord_standin, tmp_path, discord_bot_token=SecretStr("not-the-token")
    )
    adapter = DiscordAdapter(settings)

    with pytest.raises(InvalidChatToken) as caught:
        await adapter.start(DiscordInbox().handle, DISCORD_COMMANDS)

    assert "DISCORD_BOT_TOKEN" in caught.value.user_message
    await adapter.stop()


async def test_a_gateway_that_never_answers_ends_the_start_naming_its_variable(
    discord_standin: DiscordStandIn, tmp_path: Path
) -> None:
    # Given a bot that can log in, with DISCORD_GATEWAY_URL at a host that takes the
    # connection and then says nothing
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    silent = await asyncio.start_server(hold, "127.0.0.1", 0)
    gateway_url = f"ws://127.0.0.1:{silent.sockets[0].getsockname()[1]}/gateway"
    settings = discord_settings(discord_standin, tmp_path, discord_gateway_url=gateway_url)
    adapter = DiscordAdapter(settings, ready_timeout_secs=0.5)

    # When it starts
    try:
        with pytest.raises(ChatUnavailable) as caught:
            await adapter.start(DiscordInbox().handle, DISCORD_COMMANDS)
    finally:
        for writer in held:
            writer.close()
        silent.close()
        await silent.wait_closed()

    # Then the start ends with one sentence naming the address and the setting
    assert str(caught.value) == (
        f"the Discord gateway at {gateway_url} sent no READY within 0.5 s; "
        "check DISCORD_GATEWAY_URL"
    )
    assert held, "the bot never reached the silent gateway"
    await adapter.stop()


@pytest.mark.parametrize("gateway", ["nothing listening", "no websocket there"])
async def test_a_gateway_that_refuses_the_bot_ends_the_start_naming_its_variable(
    discord_standin: DiscordStandIn, tmp_path: Path, gateway: str
) -> None:
    # Given a bot that can log in, with DISCORD_GATEWAY_URL at a port nobody listens on, or
    # at the REST server, which answers the websocket handshake with 404
    if gateway == "nothing listening":
        gateway_url = f"ws://127.0.0.1:{free_port()}/gateway"
    else:
        gateway_url = discord_standin.gateway_url.replace("/gateway", "/not-a-gateway")
    settings = discord_settings(discord_standin, tmp_path, discord_gateway_url=gateway_url)
    adapter = DiscordAdapter(settings, ready_timeout_secs=GUARD_SECS)

    # When it starts
    with pytest.raises(ChatUnavailable) as caught:
        await adapter.start(DiscordInbox().handle, DISCORD_COMMANDS)

    # Then the start ends with a sentence naming the address and the setting, and the cause
    # is the refusal, not discord.py's own failure on its retry
    message = str(caught.value)
    assert message.startswith(f"the Discord gateway at {gateway_url} ")
    assert message.endswith("; check DISCORD_GATEWAY_URL")
    assert "AttributeError" not in message
    assert discord_standin.readies == 0
    await adapter.stop()


async def test_a_dropped_connection_resumes_on_the_resume_url(discord_bot: DiscordBot) -> None:
    stand_in = discord_bot.stand_in

    await stand_in.drop_connection()
    await stand_in.wait_until(lambda: len(stand_in.resumes) == 1)
    await stand_in.send_dm(stand_in.ann, "after the reconnect")
    await stand_in.request_reconnect()
    await stand_in.wait_until(lambda: len(stand_in.resumes) == 2)
    await stand_in.send_dm(stand_in.ann, "after the second one")
    messages = await discord_bot.inbox.wait_for(2)

    assert stand_in.gateway_paths == ["/gateway", "/gateway/resume", "/gateway/resume"]
    assert [r["session_id"] for r in stand_in.resumes] == stand_in.session_ids * 2
    assert len(stand_in.identifies) == 1
    assert [m.text for m in messages] == ["after the reconnect", "after the second one"]


# -- incoming messages -----------------------------------------------------------------------


async def test_a_dm_reaches_the_handler_and_the_bots_own_reply_does_not(
    discord_bot: DiscordBot,
) -> None:
    stand_in, inbox = discord_bot.stand_in, discord_bot.inbox
    dm = stand_in.dm_channel(stand_in.ann)

    sent = await stand_in.send_dm(stand_in.ann, f"have a listen <{TRACK_URL}>")
    (first,) = await inbox.wait_for(1)
    await discord_bot.adapter.send_text(first.chat, "Found it", reply_to=first.message_id)
    await stand_in.send_dm(stand_in.ann, "and another")
    messages = await inbox.wait_for(2)

    assert first == IncomingMessage(
        chat=ChatRef("discord", str(dm.id), is_private=True),
        user_id=str(stand_in.ann.id),
        user_name="Ann",
        text=f"have a listen <{TRACK_URL}>",
        message_id=str(sent.id),
        addressed=True,
    )
    assert [m.text for m in messages] == [first.text, "and another"]
    assert len(inbox.messages) == 2


async def test_a_server_message_reaches_the_handler_only_when_it_mentions_the_bot(
    discord_bot: DiscordBot,
) -> None:
    stand_in, inbox = discord_bot.stand_in, discord_bot.inbox

    await stand_in.send_guild_message(stand_in.ann, stand_in.general, f"look {TRACK_URL}")
    await stand_in.send_guild_message(
        stand_in.bob, stand_in.general, f"get {TRACK_URL}", mention_bot=True
    )
    (message,) = await inbox.wait_for(1)
    await stand_in.send_dm(stand_in.ann, "later")
    await inbox.wait_for(2)

    assert message.user_id == str(stand_in.bob.id)
    assert message.text == f"get {TRACK_URL}"
    assert message.addressed
    assert not message.chat.is_private
    assert [m.text for m in inbox.messages] == [f"get {TRACK_URL}", "later"]


# -- slash commands --------------------------------------------------------------------------


async def test_a_slash_command_is_deferred_at_once_then_answered(discord_bot: DiscordBot) -> None:
    stand_in, inbox, adapter = discord_bot.stand_in, discord_bot.inbox, discord_bot.adapter
    release = asyncio.Event()

    async def slow_reply(message: IncomingMessage) -> None:
        await release.wait()
        await adapter.send_text(
            message.chat, "Found: *NSYNC – Bye Bye Bye", reply_to=message.message_id
        )

    inbox.reaction = slow_reply

    record = await stand_in.slash(stand_in.ann, stand_in.general, "get", {"link": TRACK_URL})
    (message,) = await inbox.wait_for(1)
    await stand_in.wait_until(lambda: record.acknowledged)
    (thinking,) = stand_in.bot_messages_in(stand_in.general)
    thinking_then = thinking.thinking
    release.set()
    await answered(stand_in, stand_in.general)

    assert record.callbacks == [CALLBACK_DEFERRED_MESSAGE]
    assert thinking_then
    assert message.command == "get"
    assert message.text == TRACK_URL
    assert message.message_id == str(record.id)
    assert message.chat == chat_of(stand_in.general)
    (reply,) = stand_in.bot_messages_in(stand_in.general)
    assert reply.id == thinking.id
    assert reply.content == "Found: \\*NSYNC – Bye Bye Bye"
    assert stand_in.calls_to(MESSAGES, "POST") == []


async def test_a_command_nothing_answers_does_not_stay_thinking(discord_bot: DiscordBot) -> None:
    stand_in = discord_bot.stand_in

    record = await stand_in.slash(stand_in.ann, stand_in.general, "help")
    await discord_bot.inbox.wait_for(1)
    await stand_in.wait_until(lambda: bool(stand_in.calls_to(ORIGINAL, "DELETE")))

    assert record.callbacks == [CALLBACK_DEFERRED_MESSAGE]
    assert stand_in.bot_messages_in(stand_in.general) == []


async def test_a_failing_handler_is_logged_and_leaves_no_thinking_behind(
    discord_bot: DiscordBot, caplog: pytest.LogCaptureFixture
) -> None:
    stand_in = discord_bot.stand_in

    async def broken(message: IncomingMessage) -> None:
        raise RuntimeError("a bug in the conversation")

    discord_bot.inbox.reaction = broken
    await stand_in.slash(stand_in.ann, stand_in.general, "status")
    await stand_in.wait_until(lambda: bool(stand_in.calls_to(ORIGINAL, "DELETE")))

    assert stand_in.bot_messages_in(stand_in.general) == []
    errors = [r for r in caplog.records if r.name == "bot.discord" and r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None


async def test_progress_and_audio_go_through_the_token_then_through_the_channel(
    discord_bot: DiscordBot, discord_clock: ManualClock, tmp_path: Path
) -> None:
    stand_in, adapter = discord_bot.stand_in, discord_bot.adapter
    discord_bot.inbox.hold()
    record = await stand_in.slash(stand_in.ann, stand_in.general, "get", {"link": TRACK_URL})
    (command,) = await discord_bot.inbox.wait_for(1)
    await stand_in.wait_until(lambda: record.acknowledged)

    reply = await adapter.send_text(
        command.chat, "Found an album: 12 tracks", reply_to=command.message_id
    )
    await adapter.edit_text(reply, "1/12 done")
    await adapter.send_audio(command.chat, audio_file(tmp_path, 3000), reply_to=command.message_id)

    # Fifteen minutes on, the token is dead and the channel carries the rest.
    stand_in.expire_interaction(record)
    discord_clock.advance(15 * 60)
    await adapter.edit_text(reply, "12/12 done")
    await adapter.send_audio(command.chat, audio_file(tmp_path, 4000), reply_to=command.message_id)

    progress, first_audio, last_audio = stand_in.bot_messages_in(stand_in.general)
    assert progress.id == int(reply.message_id)
    assert progress.content == "12/12 done"
    assert (progress.via, first_audio.via, last_audio.via) == (
        "interaction",
        "followup",
        "channel",
    )
    assert [a.size for a in first_audio.attachments] == [3000]
    assert [a.size for a in last_audio.attachments] == [4000]
    assert last_audio.reference_id is None
    assert len(stand_in.calls_to(MESSAGE, "PATCH")) == 1
    assert [c.status for c in stand_in.calls if c.route.startswith("/webhooks/")] == [
        200,
        200,
        200,
    ]


async def test_a_token_discord_refuses_early_falls_back_to_the_channel(
    discord_bot: DiscordBot,
) -> None:
    stand_in, adapter = discord_bot.stand_in, discord_bot.adapter
    discord_bot.inbox.hold()
    record = await stand_in.slash(stand_in.ann, stand_in.general, "get", {"link": TRACK_URL})
    (command,) = await discord_bot.inbox.wait_for(1)
    await stand_in.wait_until(lambda: record.acknowledged)
    reply = await adapter.send_text(command.chat, "Found it", reply_to=command.message_id)

    stand_in.expire_interaction(record)
    await adapter.edit_text(reply, "Done")
    await adapter.edit_text(reply, "Done, really")

    (progress,) = stand_in.bot_messages_in(stand_in.general)
    assert progress.content == "Done, really"
    refused = [c.status for c in stand_in.calls_to(ORIGINAL, "PATCH")]
    assert refused == [200, 401]
    assert len(stand_in.calls_to(MESSAGE, "PATCH")) == 2


async def test_a_channel_the_bot_may_not_post_in_still_gets_its_answers(
    discord_bot: DiscordBot, tmp_path: Path
) -> None:
    stand_in, adapter = discord_bot.stand_in, discord_bot.adapter
    discord_bot.inbox.hold()
    locked = chat_of(stand_in.locked)

    with pytest.raises(Forbidden):
        await adapter.send_text(locked, "hello")
    record = await stand_in.slash(stand_in.bob, stand_in.locked, "get", {"link": TRACK_URL})
    (command,) = await discord_bot.inbox.wait_for(1)
    await stand_in.wait_until(lambda: record.acknowledged)
    await adapter.send_text(command.chat, "Found it", reply_to=command.message_id)
    await adapter.send_audio(command.chat, audio_file(tmp_path, 1000), reply_to=command.message_id)

    reply, audio = stand_in.bot_messages_in(stand_in.locked)
    assert reply.content == "Found it"
    assert [a.size for a in audio.attachments] == [1000]


# -- buttons -------------------------------------------------------------------------------------


async def test_a_pressed_button_reaches_the_handler_and_its_message_is_edited(
    discord_bot: DiscordBot,
) -> None:
    stand_in, adapter, inbox = discord_bot.stand_in, discord_bot.adapter, discord_bot.inbox
    dm = chat_of(stand_in.dm_channel(stand_in.ann))
    buttons = [Button("High (320 kbit/s)", "quality:high"), Button("Low", "quality:low")]
    prompt = await adapter.send_text(dm, "Pick a quality", buttons=buttons)
    (shown,) = stand_in.bot_messages_in(stand_in.dm_channel(stand_in.ann))
    shown_buttons = shown.buttons

    record = await stand_in.press(stand_in.ann, shown, "quality:low")
    (pressed,) = await inbox.wait_for(1)
    await adapter.edit_text(MessageRef(pressed.chat, pressed.message_id or ""), "Quality: low")

    assert shown_buttons == [("High (320 kbit/s)", "quality:high"), ("Low", "quality:low")]
    assert record.callbacks == [CALLBACK_DEFERRED_UPDATE]
    assert pressed.button == "quality:low"
    assert pressed.message_id == prompt.message_id
    assert pressed.user_id == str(stand_in.ann.id)
    assert (shown.content, shown.buttons) == ("Quality: low", [])
    assert len(stand_in.calls_to(ORIGINAL, "PATCH")) == 1


async def test_a_chosen_menu_item_reaches_the_handler(discord_bot: DiscordBot) -> None:
    stand_in, adapter = discord_bot.stand_in, discord_bot.adapter
    dm = stand_in.dm_channel(stand_in.ann)
    await adapter.send_text(chat_of(dm), "Pick", buttons=[Button("High", "quality:high")])
    (shown,) = stand_in.bot_messages_in(dm)

    await stand_in.choose(stand_in.ann, shown, "quality", ["quality:medium"])
    (chosen,) = await discord_bot.inbox.wait_for(1)

    assert chosen.button == "quality:medium"


# -- sending and editing ----------------------------------------------------------------------


async def test_text_edits_and_an_audio_attachment_in_a_dm(
    discord_bot: DiscordBot, tmp_path: Path
) -> None:
    stand_in, adapter = discord_bot.stand_in, discord_bot.adapter
    dm = stand_in.dm_channel(stand_in.ann)
    question = await stand_in.send_dm(stand_in.ann, TRACK_URL)
    chat = chat_of(dm)

    reply = await adapter.send_text(chat, "Found: __init__ – 3:20", reply_to=str(question.id))
    await adapter.edit_text(reply, "Downloading ████░░░░░░ 40%")
    with pytest.raises(NotModified):
        await adapter.edit_text(reply, "Downloading ████░░░░░░ 40%")
    cover = b"\xff\xd8\xff\xe0 a tiny jpeg"
    sent = await adapter.send_audio(
        chat, audio_file(tmp_path, 5000, thumbnail=cover), reply_to=str(question.id)
    )

    text, audio = stand_in.bot_messages_in(dm)
    assert text.reference_id == question.id
    assert text.content == "Downloading ████░░░░░░ 40%"
    assert text.edits == 1
    assert len(stand_in.calls_to(MESSAGE, "PATCH")) == 1
    assert sent.message.message_id == str(audio.id)
    assert sent.file_id is None
    assert audio.reference_id == question.id
    (song, shown_cover) = audio.attachments
    assert song.filename == "NSYNC - Bye Bye Bye.mp3"
    assert song.data == (tmp_path / "4uLU6hMCjMI75M1A2tKUQC.mp3").read_bytes()
    assert (shown_cover.filename, shown_cover.data) == ("cover.jpg", cover)
    (embed,) = audio.embeds
    assert embed["title"] == "Bye Bye Bye"
    assert embed["description"] == "\\*NSYNC · 3:20"
    assert embed["thumbnail"]["url"] == "attachment://cover.jpg"


async def test_a_text_over_discords_limit_is_cut(discord_bot: DiscordBot) -> None:
    stand_in = discord_bot.stand_in
    dm = stand_in.dm_channel(stand_in.ann)

    await discord_bot.adapter.send_text(chat_of(dm), "x" * 2500)

    (message,) = stand_in.bot_messages_in(dm)
    assert len(message.content) == 2000
    assert message.content.endswith("…")


async def test_editing_a_deleted_message_is_message_gone(discord_bot: DiscordBot) -> None:
    stand_in, adapter = discord_bot.stand_in, discord_bot.adapter
    dm = stand_in.dm_channel(stand_in.ann)
    reply = await adapter.send_text(chat_of(dm), "Found it")
    stand_in.messages[int(reply.message_id)].deleted = True

    with pytest.raises(MessageGone):
        await adapter.edit_text(reply, "Done")


# -- rate limits and limits ----------------------------------------------------------------


async def test_a_short_429_is_waited_out_as_retry_after_asks(discord_bot: DiscordBot) -> None:
    stand_in = discord_bot.stand_in
    stand_in.inject_rate_limit(stand_in.general, 0.3)

    await discord_bot.adapter.send_text(chat_of(stand_in.general), "Found it")

    assert [c.status for c in stand_in.calls_to(MESSAGES, "POST")] == [429, 200]
    assert stand_in.early_retries == 0
    (message,) = stand_in.bot_messages_in(stand_in.general)
    assert message.content == "Found it"


async def test_a_long_429_becomes_rate_limited_with_its_wait(discord_bot: DiscordBot) -> None:
    stand_in = discord_bot.stand_in
    stand_in.inject_rate_limit(stand_in.general, 120.0)

    with pytest.raises(RateLimited) as caught:
        await discord_bot.adapter.send_text(chat_of(stand_in.general), "Found it")

    assert caught.value.retry_after_secs == 120.0
    assert stand_in.bot_messages_in(stand_in.general) == []


async def test_the_rate_limit_headers_keep_a_busy_channel_free_of_429s(
    make_discord_standin: MakeDiscordStandIn, start_discord_bot: StartDiscordBot
) -> None:
    stand_in = await make_discord_standin(channel_limit=2, channel_window_secs=0.3)
    bot = await start_discord_bot(stand_in)
    chat = chat_of(stand_in.general)

    await asyncio.gather(*(bot.adapter.send_text(chat, f"reply {n}") for n in range(6)))

    assert sorted(m.content for m in stand_in.bot_messages_in(stand_in.general)) == [
        f"reply {n}" for n in range(6)
    ]
    assert stand_in.rate_limited_calls == []


async def test_a_413_from_discord_becomes_too_large(
    make_discord_standin: MakeDiscordStandIn, start_discord_bot: StartDiscordBot, tmp_path: Path
) -> None:
    stand_in = await make_discord_standin(upload_limit_bytes=1000)
    bot = await start_discord_bot(stand_in)
    dm = stand_in.dm_channel(stand_in.ann)

    with pytest.raises(TooLarge):
        await bot.adapter.send_audio(chat_of(dm), audio_file(tmp_path, 5000))

    assert [c.status for c in stand_in.calls_to(MESSAGES, "POST")] == [413]
    assert stand_in.bot_messages_in(dm) == []


async def test_the_upload_limit_comes_from_the_interaction_then_the_server_tier(
    make_discord_standin: MakeDiscordStandIn, start_discord_bot: StartDiscordBot, tmp_path: Path
) -> None:
    stand_in = await make_discord_standin(premium_tier=2)
    bot = await start_discord_bot(stand_in, discord_upload_limit_mb=8)
    general, dm = chat_of(stand_in.general), chat_of(stand_in.dm_channel(stand_in.ann))
    tier_limit = bot.adapter.limits(general).upload_limit_bytes
    dm_limit = bot.adapter.limits(dm).upload_limit_bytes

    await stand_in.slash(stand_in.ann, stand_in.general, "status", attachment_size_limit=2000)
    await bot.inbox.wait_for(1)
    with pytest.raises(TooLarge):
        await bot.adapter.send_audio(general, audio_file(tmp_path, 5000))

    assert tier_limit == 50 * 1024 * 1024
    assert dm_limit == 8 * 1024 * 1024
    assert bot.adapter.limits(general).upload_limit_bytes == 2000
    assert stand_in.calls_to(MESSAGES, "POST") == []
    assert stand_in.calls_to(FOLLOWUP, "POST") == []


# -- the stand-in and the logs ---------------------------------------------------------------


async def test_the_stand_in_opens_dms_and_refuses_a_wrong_token(
    discord_standin: DiscordStandIn,
) -> None:
    url = f"{discord_standin.api_base_url}/users/@me/channels"
    body = {"recipient_id": str(discord_standin.bob.id)}

    async with aiohttp.ClientSession() as session:
        auth = {"Authorization": f"Bot {discord_standin.token}"}
        async with session.post(url, json=body, headers=auth) as opened:
            channel = await opened.json()
        async with session.post(url, json=body, headers={"Authorization": "Bot nope"}) as refused:
            refused_status = refused.status

    assert channel["type"] == 1
    assert channel["recipients"][0]["id"] == str(discord_standin.bob.id)
    assert channel["id"] == str(discord_standin.dm_channel(discord_standin.bob).id)
    assert refused_status == 401


def test_log_lines_keep_interaction_tokens_out() -> None:
    line = (
        "PATCH https://discord.com/api/v10/webhooks/1234/aW50ZXJhY3Rpb24.x-y/messages/@original "
        "with {'token': 'aW50ZXJhY3Rpb24.x-y', 'id': '99'}"
    )

    assert "aW50ZXJhY3Rpb24" not in redact(line)


async def test_the_stand_in_answers_callbacks_once_and_updates_pressed_messages(
    discord_standin: DiscordStandIn,
) -> None:
    stand_in = discord_standin
    api = stand_in.api_base_url
    auth = {"Authorization": f"Bot {stand_in.token}"}
    command = {"name": "status", "description": "Your requests", "type": 1}
    row = {"type": 1, "components": [{"type": 2, "style": 2, "label": "Low", "custom_id": "q"}]}

    async with aiohttp.ClientSession() as session:
        sync_url = (
            f"{api}/applications/{stand_in.application_id}/guilds/{stand_in.guild.id}/commands"
        )
        async with session.put(sync_url, json=[command], headers=auth) as synced:
            assert synced.status == 200
        record = await stand_in.slash(stand_in.ann, stand_in.general, "status")
        callback = f"{api}/interactions/{record.id}/{record.token}/callback"
        answer = {"type": 4, "data": {"content": "Nothing running", "components": [row]}}
        async with session.post(callback, json=answer) as first:
            first_status = first.status
        async with session.post(callback, json=answer) as second:
            second_error = (second.status, (await second.json())["code"])
        (shown,) = stand_in.bot_messages_in(stand_in.general)
        press = await stand_in.press(stand_in.ann, shown, "q")
        update_url = f"{api}/interactions/{press.id}/{press.token}/callback"
        update = {"type": 7, "data": {"content": "Quality: low", "components": []}}
        async with session.post(update_url, json=update) as updated:
            updated_status = updated.status

    assert stand_in.guild_commands[stand_in.guild.id][0]["name"] == "status"
    assert (first_status, second_error, updated_status) == (204, (400, 40060), 204)
    assert (shown.content, shown.buttons, shown.via) == ("Quality: low", [], "interaction")
