"""The REST routes of the fake, in Discord's words: each takes the world,
the ids in its path, the query and the JSON body (with ``files`` for a
multipart upload), and returns the JSON to answer, or raises
:class:`~fake_discord.world.ApiError`."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .model import GUILD_TEXT, PUBLIC_THREAD, Button, Channel, File, Message
from .world import INTERACTION_DEADLINE_SECS, ApiError, World

Handler = Callable[[World, dict[str, str], dict[str, str], Any, list[File]], Any]

#: Discord refuses content longer than this (and components beyond 5 rows of 5).
MAX_CONTENT = 2000
MAX_CUSTOM_ID = 100
MAX_LABEL = 80

ROUTES: list[tuple[str, str, Handler]] = []


def route(method: str, template: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        ROUTES.append((method, template, fn))
        return fn

    return register


def match(method: str, path: str) -> tuple[str, dict[str, str], Handler] | None:
    """The route of a request (``POST /channels/{channel_id}/messages``),
    the ids in its path, and its handler."""
    for m, template, fn in ROUTES:
        pattern = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "/?$"
        found = re.match(pattern, path)
        if m == method and found:
            return f"{m} {template}", found.groupdict(), fn
    return None


def unknown(what: str, code: int) -> ApiError:
    return ApiError(404, code, f"Unknown {what}")


def _channel(w: World, ids: dict[str, str]) -> Channel:
    channel = w.channels.get(int(ids["channel_id"]))
    if channel is None:
        raise unknown("Channel", 10003)
    return channel


def _message(w: World, channel: Channel, ids: dict[str, str]) -> Message:
    message = w.stored.get(int(ids["message_id"]))
    if message is None or message.deleted or message.channel_id != channel.id:
        raise unknown("Message", 10008)
    return message


def _invalid(field: str, text: str) -> ApiError:
    error = ApiError(400, 50035, "Invalid Form Body")
    error.extra = {"errors": {field: {"_errors": [{"code": "BASE_TYPE_INVALID", "message": text}]}}}
    return error


def _content(body: dict[str, Any]) -> str:
    content = body.get("content") or ""
    if not isinstance(content, str):
        raise _invalid("content", "Could not interpret the value as a string.")
    if len(content) > MAX_CONTENT:
        raise _invalid("content", f"Must be {MAX_CONTENT} or fewer in length.")
    return content


def _buttons(components: Any) -> tuple[list[Button], list[dict[str, Any]]]:
    if components is None:
        return [], []
    if not isinstance(components, list) or len(components) > 5:
        raise _invalid("components", "Must be 5 or fewer in length.")
    out: list[Button] = []
    for row in components:
        if row.get("type") != 1 or len(row.get("components", ())) > 5:
            raise _invalid("components", "An action row holds 1 to 5 components.")
        for item in row["components"]:
            custom_id, label = str(item.get("custom_id", "")), str(item.get("label", ""))
            if item.get("type") != 2 or not 1 <= len(custom_id) <= MAX_CUSTOM_ID:
                raise _invalid("custom_id", f"Must be 1 to {MAX_CUSTOM_ID} in length.")
            if len(label) > MAX_LABEL:
                raise _invalid("label", f"Must be {MAX_LABEL} or fewer in length.")
            out.append(Button(label, custom_id, int(item.get("style", 1))))
    return out, components


# --- the bot and the gateway ---------------------------------------------------------------


@route("GET", "/users/@me")
def me(w: World, ids: dict[str, str], q: dict[str, str], body: Any, files: list[File]) -> Any:
    return {**w.bot.to_api(), "verified": True, "mfa_enabled": False, "flags": 0}


@route("GET", "/users/{user_id}")
def get_user(w: World, ids: dict[str, str], q: dict[str, str], body: Any, files: list[File]) -> Any:
    person = w.users.get(int(ids["user_id"]))
    if person is None:
        raise unknown("User", 10013)
    return person.to_api()


@route("GET", "/oauth2/applications/@me")
def application(
    w: World, ids: dict[str, str], q: dict[str, str], body: Any, files: list[File]
) -> Any:
    return {
        "id": str(w.application_id),
        "name": w.bot.username,
        "icon": None,
        "description": "",
        "bot_public": False,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "owner": w.owner.to_api(),
        "team": None,
        "flags": 0,
        "summary": "",
        "rpc_origins": [],
    }


@route("GET", "/gateway/bot")
def gateway(w: World, ids: dict[str, str], q: dict[str, str], body: Any, files: list[File]) -> Any:
    return {
        "url": w.gateway_url,  # type: ignore[attr-defined]
        "shards": 1,
        "session_start_limit": {
            "total": 1000,
            "remaining": 999,
            "reset_after": 14_400_000,
            "max_concurrency": 1,
        },
    }


@route("PUT", "/applications/{application_id}/commands")
def set_commands(
    w: World, ids: dict[str, str], q: dict[str, str], body: Any, files: list[File]
) -> Any:
    if ids["application_id"] != str(w.application_id):
        raise unknown("Application", 10002)
    out = []
    for command in body:
        name = str(command.get("name", ""))
        if not re.fullmatch(r"[-_a-z0-9]{1,32}", name):
            raise _invalid("name", "Command name is invalid")
        if not 1 <= len(str(command.get("description", ""))) <= 100:
            raise _invalid("description", "Must be between 1 and 100 in length.")
        out.append(
            {
                "id": str(w.ids.next()),
                "application_id": ids["application_id"],
                "version": str(w.ids.next()),
                "type": command.get("type", 1),
                "name": name,
                "description": command["description"],
                "default_member_permissions": None,
                "dm_permission": True,
                "nsfw": False,
                "options": command.get("options", []),
            }
        )
    w.commands = out
    return out


# --- channels and messages -----------------------------------------------------------------


@route("GET", "/channels/{channel_id}")
def get_channel(
    w: World, ids: dict[str, str], q: dict[str, str], body: Any, files: list[File]
) -> Any:
    return _channel(w, ids).to_api()


@route("POST", "/channels/{channel_id}/messages")
def post_message(
    w: World, ids: dict[str, str], q: dict[str, str], body: Any, files: list[File]
) -> Any:
    channel = _channel(w, ids)
    content = _content(body)
    buttons, rows = _buttons(body.get("components"))
    if not content.strip() and not files and not buttons:
        raise ApiError(400, 50006, "Cannot send an empty message")
    message = Message(w.ids.next(), channel.id, w.bot, content, buttons, files, components=rows)
    for f in files:
        w.files[f.id] = f
    w.stored[message.id] = message
    w.dispatch("MESSAGE_CREATE", w.message_event(message))
    return w.message_json(message)


@route("PATCH", "/channels/{channel_id}/messages/{message_id}")
def edit_message(
    w: World, ids: dict[str, str], q: dict[str, str], body: Any, files: list[File]
) -> Any:
    channel = _channel(w, ids)
    message = _message(w, channel, ids)
    if message.author != w.bot:
        raise ApiError(403, 50005, "Cannot edit a message authored by another user")
    if "content" in body:
        message.content = _content(body)
    if "components" in body:
        message.buttons, message.components = _buttons(body["components"])
    message.edits += 1
    return w.message_json(message)


@route("DELETE", "/channels/{channel_id}/messages/{message_id}")
def delete_message(
    w: World, ids: dict[str, str], q: dict[str, str], body: Any, files: list[File]
) -> Any:
    channel = _channel(w, ids)
    _message(w, channel, ids).deleted = True
    return None


@route("GET", "/channels/{channel_id}/messages")
def history(w: World, ids: dict[str, str], q: dict[str, str], body: Any, files: list[File]) -> Any:
    """Up to ``limit`` (1-100, default 50) messages: with ``after``, the
    oldest ones after it; newest first, as Discord orders every page."""
    channel = _channel(w, ids)
    limit = int(q.get("limit", 50))
    if not 1 <= limit <= 100:
        raise _invalid("limit", "int value should be between 1 and 100")
    shown = sorted((m for m in w.stored.values() if m.channel_id == channel.id), key=lambda m: m.id)
    shown = [m for m in shown if not m.deleted]
    if "after" in q:
        page = [m for m in shown if m.id > int(q["after"])][:limit]
    elif "before" in q:
        page = [m for m in shown if m.id < int(q["before"])][-limit:]
    else:
        page = shown[-limit:]
    return [w.message_json(m) for m in reversed(page)]


@route("POST", "/channels/{channel_id}/messages/{message_id}/threads")
def start_thread(
    w: World, ids: dict[str, str], q: dict[str, str], body: Any, files: list[File]
) -> Any:
    """A public thread from a message: its id is the message's."""
    channel = _channel(w, ids)
    message = _message(w, channel, ids)
    if channel.type != GUILD_TEXT:
        raise ApiError(400, 50024, "Cannot execute action on this channel type")
    if message.id in w.channels:
        raise ApiError(400, 160004, "A thread has already been created for this message")
    name = str(body.get("name", ""))
    if not 1 <= len(name) <= 100:
        raise _invalid("name", "Must be between 1 and 100 in length.")
    thread = Channel(
        message.id, PUBLIC_THREAD, name, channel.guild_id, channel.id, w.bot.id, starter=message.id
    )
    w.channels[thread.id] = thread
    w.dispatch("THREAD_CREATE", {**thread.to_api(), "newly_created": True})
    return thread.to_api()


# --- interactions --------------------------------------------------------------------------


@route("POST", "/interactions/{interaction_id}/{token}/callback")
def callback(w: World, ids: dict[str, str], q: dict[str, str], body: Any, files: list[File]) -> Any:
    import time

    from .model import Answer

    found = w.interactions.get(int(ids["interaction_id"]))
    if found is None or found.token != ids["token"]:
        raise unknown("interaction", 10062)
    if time.monotonic() - found.created > INTERACTION_DEADLINE_SECS:
        raise unknown("interaction", 10062)
    if found.answer is not None:
        raise ApiError(400, 40060, "Interaction has already been acknowledged.")
    kind = int(body.get("type", 0))
    if kind not in (4, 5, 6, 7):
        raise _invalid("type", "Value must be one of (1, 4, 5, 6, 7, 8, 9, 10, 12).")
    data = body.get("data") or {}
    ephemeral = bool(int(data.get("flags", 0)) & 64)
    content = _content(data) if kind in (4, 7) else ""
    if kind == 7:  # the message the button was under, updated
        message = w.stored[int(found.payload["message"]["id"])]
        message.content = content or message.content
        if "components" in data:
            message.buttons, message.components = _buttons(data["components"])
    found.answer = Answer(found.id, kind, content, ephemeral)
    if q.get("with_response") in ("1", "true", "True"):
        return {"interaction": {"id": str(found.id), "type": found.payload["type"]}}
    return None


def _interaction_by_token(w: World, ids: dict[str, str]) -> Any:
    if ids["application_id"] != str(w.application_id):
        raise unknown("Webhook", 10015)
    for found in w.interactions.values():
        if found.token == ids["token"]:
            if found.answer is None:
                raise unknown("Message", 10008)
            return found
    raise unknown("Webhook", 10015)


@route("PATCH", "/webhooks/{application_id}/{token}/messages/@original")
def edit_original(
    w: World, ids: dict[str, str], q: dict[str, str], body: Any, files: list[File]
) -> Any:
    from dataclasses import replace

    found = _interaction_by_token(w, ids)
    content = _content(body)
    found.answer = replace(found.answer, content=content, edits=found.answer.edits + 1)
    channel = w.channels[int(found.payload["channel_id"])]
    return {
        **w.message_json(Message(found.id, channel.id, w.bot, content)),
        "flags": 64 if found.answer.ephemeral else 0,
        "webhook_id": str(w.application_id),
    }


@route("DELETE", "/webhooks/{application_id}/{token}/messages/@original")
def delete_original(
    w: World, ids: dict[str, str], q: dict[str, str], body: Any, files: list[File]
) -> Any:
    from dataclasses import replace

    found = _interaction_by_token(w, ids)
    found.answer = replace(found.answer, deleted=True)
    return None
