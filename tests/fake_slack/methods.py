"""The Web API methods the fake answers, in Slack's JSON shapes and errors.

Each takes the world and the call's parameters (already merged from the
query string, a form or a JSON body) and returns the answer's fields
besides ``ok``; an :class:`~.world.ApiError` is ``ok: false``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

from .model import Message
from .world import ApiError, World

#: chat.postMessage cuts ``text`` at 40,000 characters; the fake refuses more.
MAX_POST_TEXT = 40_000
#: chat.update refuses a ``text`` longer than 4,000 characters.
MAX_UPDATE_TEXT = 4_000
#: ``markdown_text`` (posts and streams) takes up to 12,000 characters.
MAX_MARKDOWN = 12_000
#: Block Kit: a button's value up to 2,000 characters, its action_id 255.
MAX_BUTTON_VALUE = 2_000

Method = Callable[[World, dict[str, Any]], dict[str, Any]]
METHODS: dict[str, Method] = {}
#: Methods that take the app-level token (xapp-), not the bot's.
APP_TOKEN_METHODS = {"apps.connections.open"}


def method(name: str) -> Callable[[Method], Method]:
    def register(fn: Method) -> Method:
        METHODS[name] = fn
        return fn

    return register


def _required(params: dict[str, Any], *names: str) -> None:
    for name in names:
        if not params.get(name):
            raise ApiError("invalid_arguments" if name != "channel" else "channel_not_found")


def _blocks(params: dict[str, Any]) -> list[dict[str, Any]]:
    raw = params.get("blocks")
    if raw in (None, "", []):
        return []
    blocks = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(blocks, list):
        raise ApiError("invalid_blocks")
    for block in blocks:
        if not isinstance(block, dict) or "type" not in block:
            raise ApiError("invalid_blocks")
        for element in block.get("elements", ()) if block["type"] == "actions" else ():
            if len(str(element.get("value", ""))) > MAX_BUTTON_VALUE:
                raise ApiError("invalid_blocks")
            if not element.get("action_id") or len(element["action_id"]) > 255:
                raise ApiError("invalid_blocks")
    return blocks


def _channel(world: World, params: dict[str, Any]) -> str:
    _required(params, "channel")
    cid = str(params["channel"])
    if cid not in world.channels:
        raise ApiError("channel_not_found")
    return cid


def _text(params: dict[str, Any], limit: int) -> str:
    text = str(params.get("text") or "")
    markdown = str(params.get("markdown_text") or "")
    if markdown and (text or params.get("blocks")):
        raise ApiError("markdown_text_conflict")
    if len(text) > limit:
        raise ApiError("msg_too_long")
    if len(markdown) > MAX_MARKDOWN:
        raise ApiError("msg_too_long")
    return markdown or text


def _api_message(world: World, m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "message",
        "user": m.user,
        "ts": m.ts,
        "text": m.text,
        "team": world.team_id,
    }
    if m.bot:
        out["bot_id"] = world.bot_id
        out["app_id"] = world.app_id
    if m.blocks:
        out["blocks"] = m.blocks
    if m.thread_ts:
        out["thread_ts"] = m.thread_ts
    return out


def _own(world: World, params: dict[str, Any], *, update: bool = False) -> Message:
    cid = _channel(world, params)
    _required(params, "ts")
    found = world.find(cid, str(params["ts"]))
    if found is None or found.deleted:
        raise ApiError("message_not_found")
    if not found.bot:
        raise ApiError("cant_update_message" if update else "cant_delete_message")
    return found


def _expire(world: World) -> None:
    now = world.clock()
    for m in world.messages:
        if m.streaming and now - m.stream_started > world.stream_lifetime:
            m.streaming = False


@method("auth.test")
def auth_test(world: World, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": "https://fake.slack.com/",
        "team": "Fake",
        "user": world.bot.name,
        "team_id": world.team_id,
        "user_id": world.bot.id,
        "bot_id": world.bot_id,
        "is_enterprise_install": False,
    }


@method("apps.connections.open")
def connections_open(world: World, params: dict[str, Any]) -> dict[str, Any]:
    ticket = secrets.token_hex(8)
    world.tickets.add(ticket)
    ws = world.base_url.replace("http://", "ws://", 1)
    return {"url": f"{ws}/link/?ticket={ticket}&app_id={world.app_id}"}


@method("chat.postMessage")
def post_message(world: World, params: dict[str, Any]) -> dict[str, Any]:
    cid = _channel(world, params)
    blocks = _blocks(params)
    text = _text(params, MAX_POST_TEXT)
    if not text and not blocks:
        raise ApiError("no_text")
    thread = str(params.get("thread_ts") or "") or None
    m = Message(cid, world._next_ts(), world.bot.id, text, thread, blocks, bot=True)
    world.messages.append(m)
    return {"channel": cid, "ts": m.ts, "message": _api_message(world, m)}


@method("chat.postEphemeral")
def post_ephemeral(world: World, params: dict[str, Any]) -> dict[str, Any]:
    cid = _channel(world, params)
    _required(params, "user")
    if str(params["user"]) not in world.users:
        raise ApiError("user_not_in_channel")
    text = _text(params, MAX_POST_TEXT)
    if not text and not params.get("blocks"):
        raise ApiError("no_text")
    ts = world._next_ts()
    world.ephemerals.append({"channel": cid, "user": str(params["user"]), "text": text, "ts": ts})
    return {"message_ts": ts}


@method("chat.update")
def update(world: World, params: dict[str, Any]) -> dict[str, Any]:
    m = _own(world, params, update=True)
    blocks = _blocks(params) if "blocks" in params else m.blocks
    text = _text(params, MAX_UPDATE_TEXT)
    if not text and not blocks:
        raise ApiError("no_text")
    m.text, m.blocks = text, blocks
    m.edits += 1
    # An update ends a stream still open (unverified against Slack, which
    # does not document it; the adapter stops its streams before updating).
    m.streaming = False
    return {"channel": m.channel, "ts": m.ts, "text": m.text, "message": _api_message(world, m)}


@method("chat.delete")
def delete(world: World, params: dict[str, Any]) -> dict[str, Any]:
    m = _own(world, params)
    m.deleted = True
    return {"channel": m.channel, "ts": m.ts}


def _streaming_on(world: World) -> None:
    if not world.streaming:
        raise ApiError("unknown_method", status=200)


@method("chat.startStream")
def start_stream(world: World, params: dict[str, Any]) -> dict[str, Any]:
    _streaming_on(world)
    cid = _channel(world, params)
    _required(params, "thread_ts")
    if not world.channels[cid].is_im and not (
        params.get("recipient_user_id") and params.get("recipient_team_id")
    ):
        raise ApiError("missing_recipient_user_id")
    if world.find(cid, str(params["thread_ts"])) is None:
        raise ApiError("message_not_found")
    text = str(params.get("markdown_text") or "")
    if len(text) > MAX_MARKDOWN:
        raise ApiError("msg_too_long")
    m = Message(cid, world._next_ts(), world.bot.id, text, str(params["thread_ts"]), bot=True)
    m.streaming, m.stream_started = True, world.clock()
    world.messages.append(m)
    return {"channel": cid, "ts": m.ts}


@method("chat.appendStream")
def append_stream(world: World, params: dict[str, Any]) -> dict[str, Any]:
    _streaming_on(world)
    m = _own(world, params, update=True)
    _required(params, "markdown_text")
    _expire(world)
    if not m.streaming:
        raise ApiError("message_not_in_streaming_state")
    text = str(params["markdown_text"])
    if len(m.text) + len(text) > MAX_MARKDOWN or len(text) > MAX_MARKDOWN:
        raise ApiError("msg_too_long")
    m.text += text
    m.appends += 1
    m.stream_started = world.clock()
    return {"channel": m.channel, "ts": m.ts}


@method("chat.stopStream")
def stop_stream(world: World, params: dict[str, Any]) -> dict[str, Any]:
    _streaming_on(world)
    m = _own(world, params, update=True)
    _expire(world)
    if not m.streaming:
        raise ApiError("message_not_in_streaming_state")
    text = str(params.get("markdown_text") or "")
    if len(m.text) + len(text) > MAX_MARKDOWN:
        raise ApiError("msg_too_long")
    m.text += text
    m.streaming = False
    return {"channel": m.channel, "ts": m.ts, "message": _api_message(world, m)}


@method("assistant.threads.setStatus")
def set_status(world: World, params: dict[str, Any]) -> dict[str, Any]:
    _required(params, "channel_id", "thread_ts")
    if str(params["channel_id"]) not in world.channels:
        raise ApiError("channel_not_found")
    world.statuses.append(
        {
            "channel": str(params["channel_id"]),
            "thread_ts": str(params["thread_ts"]),
            "status": str(params.get("status", "")),
        }
    )
    return {}


@method("users.info")
def users_info(world: World, params: dict[str, Any]) -> dict[str, Any]:
    user = world.users.get(str(params.get("user", "")))
    if user is None:
        raise ApiError("user_not_found")
    return {
        "user": {
            "id": user.id,
            "team_id": world.team_id,
            "name": user.name,
            "real_name": user.real_name,
            "is_bot": user.is_bot,
            "profile": {"real_name": user.real_name, "display_name": user.name},
        }
    }


@method("files.info")
def files_info(world: World, params: dict[str, Any]) -> dict[str, Any]:
    file_id = str(params.get("file", ""))
    if file_id not in world.files:
        raise ApiError("file_not_found")
    return {"file": world.file_object(file_id)}
