"""The Bot API methods the fake answers, one function each.

Each takes the world (locked by ``World.call``), the decoded parameters and
any uploaded files, and returns the ``result`` or raises ``ApiError`` with
Telegram's own description.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from .model import CallbackAnswer, ChatAction, Draft
from .wire import HTML_TAGS, ApiError, Upload, bad_request, is_loopback_url, visible_text
from .world import MAX_DOWNLOAD_BYTES, Stored, World

#: "Text of the message to be sent, 1-4096 characters after entities parsing."
MAX_TEXT = 4096
#: "Photo/document caption ..., 0-1024 characters after entities parsing."
MAX_CAPTION = 1024
#: "Data to be sent in a callback query to the bot ..., 1-64 bytes."
MAX_CALLBACK_DATA_BYTES = 64
#: answerCallbackQuery's notification text, 0-200 characters.
MAX_CALLBACK_ANSWER = 200
#: getUpdates: "Values between 1-100 are accepted. Defaults to 100."
MAX_UPDATES = 100

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
CONFLICT_OTHER_POLL = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is "
    "running"
)
CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
    "the webhook first"
)
#: The ports Telegram sends webhook requests to.
WEBHOOK_PORTS = (443, 80, 88, 8443)
#: setWebhook's max_connections when none is given.
DEFAULT_MAX_CONNECTIONS = 40
#: "1-256 characters. Only characters A-Z, a-z, 0-9, _ and - are allowed."
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
BUTTON_ACTIONS = frozenset(
    {
        "callback_data",
        "url",
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    }
)

Params = dict[str, Any]
Uploads = dict[str, Upload]
Method = Callable[[World, Params, Uploads], Any]


# -- the bot and its updates ---------------------------------------------------


def get_me(w: World, p: Params, u: Uploads) -> Any:
    return w.bot.to_api() | {
        "can_join_groups": True,
        "can_read_all_group_messages": not w.privacy_mode,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


def get_updates(w: World, p: Params, u: Uploads) -> Any:
    """Long polling: confirm what ``offset`` confirms, then answer at once
    if anything is pending, else hold the request until an update arrives
    or ``timeout`` seconds pass. A newer getUpdates ends a held one with 409."""
    if w._webhook is not None:
        raise ApiError(409, CONFLICT_WEBHOOK)
    offset = int(p.get("offset") or 0)
    limit = min(max(int(p.get("limit") or MAX_UPDATES), 1), MAX_UPDATES)
    timeout = max(float(p.get("timeout") or 0), 0.0)
    if "allowed_updates" in p:
        w._allowed_updates = list(p["allowed_updates"] or []) or None
    if offset > 0:
        w._updates = [x for x in w._updates if x[0] >= offset]
    elif offset < 0:
        w._updates = w._updates[offset:]
    w._poll_seq += 1
    mine = w._poll_seq
    w._cond.notify_all()
    deadline = time.monotonic() + timeout
    while True:
        if w._poll_seq != mine:
            raise ApiError(409, CONFLICT_OTHER_POLL)
        if w._webhook is not None:
            raise ApiError(409, "Conflict: terminated by setWebhook request")
        allowed = w._allowed_updates
        ready = [
            {"update_id": uid, kind: copy.deepcopy(payload)}
            for uid, kind, payload in w._updates
            if allowed is None or kind in allowed
        ][:limit]
        left = deadline - time.monotonic()
        if ready or left <= 0 or w._closing:
            return ready
        w._cond.wait(left)


def delete_webhook(w: World, p: Params, u: Uploads) -> Any:
    w._webhook = None
    if p.get("drop_pending_updates"):
        w._updates.clear()
    return True


def set_webhook(w: World, p: Params, u: Uploads) -> Any:
    """Telegram's checks of the URL and the secret. As a local Bot API server
    does, the fake also takes http:// and any port on this machine (where
    it sends updates: it never calls beyond loopback)."""
    url = p.get("url")
    if url is None:
        raise bad_request("url is empty")
    if url == "":
        return delete_webhook(w, p, u)
    url = str(url)
    local = is_loopback_url(url)
    if not url.startswith("https://") and not (local and url.startswith("http://")):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    try:
        port = urlsplit(url).port or 443
    except ValueError:
        raise bad_request("bad webhook: Wrong port number specified in the URL") from None
    if not local and port not in WEBHOOK_PORTS:
        raise bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
    secret = p.get("secret_token")
    if secret is not None and not SECRET_TOKEN.fullmatch(str(secret)):
        raise bad_request("secret token contains unallowed characters")
    keep = ("url", "secret_token", "allowed_updates", "max_connections", "ip_address")
    w._webhook = {k: p[k] for k in keep if k in p}
    w._hook_tries.clear()
    w._hook_retry_at = 0.0
    if p.get("drop_pending_updates"):
        w._updates.clear()
    return True


def get_webhook_info(w: World, p: Params, u: Uploads) -> Any:
    hook = w._webhook
    info: dict[str, Any] = {
        "url": "" if hook is None else hook["url"],
        "has_custom_certificate": False,
        "pending_update_count": len(w._updates),
    }
    if hook is None:
        return info
    if hook.get("ip_address"):
        info["ip_address"] = hook["ip_address"]
    if w._hook_error is not None:
        info["last_error_date"], info["last_error_message"] = w._hook_error
    info["max_connections"] = hook.get("max_connections") or DEFAULT_MAX_CONNECTIONS
    if hook.get("allowed_updates"):
        info["allowed_updates"] = list(hook["allowed_updates"])
    return info


def set_my_commands(w: World, p: Params, u: Uploads) -> Any:
    commands = p.get("commands")
    if isinstance(commands, str):
        commands = json.loads(commands)
    if not isinstance(commands, list):
        raise bad_request("can't parse commands JSON object")
    for entry in commands:
        name = entry.get("command", "") if isinstance(entry, dict) else ""
        if not re.fullmatch(r"[a-z0-9_]{1,32}", str(name)):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(str(entry.get("description", ""))) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    w._commands = commands
    return True


def get_my_commands(w: World, p: Params, u: Uploads) -> Any:
    return copy.deepcopy(w._commands)


def delete_my_commands(w: World, p: Params, u: Uploads) -> Any:
    w._commands = []
    return True


# -- messages --------------------------------------------------------------------


def send_message(w: World, p: Params, u: Uploads) -> Any:
    chat = w._chat(p.get("chat_id"))
    text, source = _text(p, "text", MAX_TEXT)
    content: dict[str, Any] = {"text": text}
    if p.get("entities"):
        content["entities"] = p["entities"]
    return _post(w, chat.id, p, content, source)


def send_photo(w: World, p: Params, u: Uploads) -> Any:
    chat = w._chat(p.get("chat_id"))
    stored = _file(w, p, u, "photo", "photos", "AgAC")
    size = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": len(stored.data),
        "width": 800,
        "height": 600,
    }
    return _post(w, chat.id, p, {"photo": [size]} | _caption(p), (p.get("caption"),))


def send_document(w: World, p: Params, u: Uploads) -> Any:
    chat = w._chat(p.get("chat_id"))
    stored = _file(w, p, u, "document", "documents", "BQAC")
    upload = u.get("document")
    document = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_name": upload.filename if upload else stored.file_path.rsplit("/", 1)[-1],
        "mime_type": upload.content_type if upload else "application/octet-stream",
        "file_size": len(stored.data),
    }
    return _post(w, chat.id, p, {"document": document} | _caption(p), (p.get("caption"),))


def _post(
    w: World, chat_id: int, p: Params, content: dict[str, Any], source: tuple[Any, ...]
) -> Any:
    """Store a message from the bot; it ends the chat's draft."""
    chat = w._chats[chat_id]
    thread = _thread(w, chat_id, p)
    reply_to = _reply_to(w, chat_id, p)
    markup = _markup(p)
    if markup is not None:
        content["reply_markup"] = markup
    mid = w._next_message_id(chat_id)
    stored = w._store(chat, w.bot, mid, thread, reply_to, content, source)
    w._end_draft(chat_id, thread)
    return copy.deepcopy(stored.message)


def edit_message_text(w: World, p: Params, u: Uploads) -> Any:
    stored = _editable(w, p)
    if "text" not in stored.message:
        raise bad_request("there is no text in the message to edit")
    text, source = _text(p, "text", MAX_TEXT)
    markup = _markup(p)
    if source == stored.source and markup == stored.message.get("reply_markup"):
        raise ApiError(400, NOT_MODIFIED)
    stored.message["text"] = text
    stored.source = source
    _set(stored.message, "entities", p.get("entities") or None)
    return _edited(w, stored, markup)


def edit_message_reply_markup(w: World, p: Params, u: Uploads) -> Any:
    stored = _editable(w, p)
    markup = _markup(p)
    if markup == stored.message.get("reply_markup"):
        raise ApiError(400, NOT_MODIFIED)
    return _edited(w, stored, markup)


def _edited(w: World, stored: Stored, markup: dict[str, Any] | None) -> Any:
    # An edit that names no reply_markup removes the inline keyboard.
    _set(stored.message, "reply_markup", markup)
    stored.message["edit_date"] = int(w.clock())
    stored.edits += 1
    return copy.deepcopy(stored.message)


def delete_message(w: World, p: Params, u: Uploads) -> Any:
    chat = w._chat(p.get("chat_id"))
    if p.get("message_id") is None:
        raise bad_request("message identifier is not specified")
    stored = w._live(chat.id, p["message_id"])
    if stored is None:
        raise bad_request("message to delete not found")
    if not stored.sender.is_bot and not chat.is_private:
        raise bad_request("message can't be deleted")
    stored.deleted = True
    return True


def send_message_draft(w: World, p: Params, u: Uploads) -> Any:
    chat = w._chat(p.get("chat_id"))
    if not chat.is_private:
        raise bad_request("TEXTDRAFT_PEER_INVALID")
    draft_id = p.get("draft_id")
    if not isinstance(draft_id, int) or draft_id == 0:
        raise bad_request("draft_id must be non-zero")
    # Bot API 10.0: the text may be empty (a "Thinking..." placeholder).
    text = visible_text(str(p.get("text") or ""), p.get("parse_mode")).strip()
    if len(text) > MAX_TEXT:
        raise bad_request("message is too long")
    thread = p.get("message_thread_id")
    draft = Draft(draft_id, text, thread, w.clock())
    w._drafts.setdefault(chat.id, []).append(draft)
    w._active_drafts[(chat.id, thread)] = draft
    return True


def answer_callback_query(w: World, p: Params, u: Uploads) -> Any:
    query_id = str(p.get("callback_query_id") or "")
    if query_id not in w._open_queries:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    text = p.get("text")
    if text is not None and len(str(text)) > MAX_CALLBACK_ANSWER:
        raise bad_request("MESSAGE_TOO_LONG")
    del w._open_queries[query_id]
    w._answers.append(
        CallbackAnswer(
            query_id, text, bool(p.get("show_alert", False)), p.get("url"), p.get("cache_time")
        )
    )
    return True


def send_chat_action(w: World, p: Params, u: Uploads) -> Any:
    chat = w._chat(p.get("chat_id"))
    action = p.get("action")
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    thread = _thread(w, chat.id, p)
    w._actions.append(ChatAction(chat.id, action, thread, w.clock()))
    return True


def get_file(w: World, p: Params, u: Uploads) -> Any:
    stored = w._files.get(str(p.get("file_id") or ""))
    if stored is None:
        raise bad_request("invalid file_id")
    if len(stored.data) > MAX_DOWNLOAD_BYTES:
        raise bad_request("file is too big")
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": len(stored.data),
        "file_path": stored.file_path,
    }


# -- checks shared by the methods ------------------------------------------------


def _text(p: Params, name: str, limit: int) -> tuple[str, tuple[Any, ...]]:
    """The visible text, and what makes two texts "the same content"."""
    raw = p.get(name)
    if raw is None or raw == "":
        raise bad_request("message text is empty")
    mode = p.get("parse_mode")
    text = visible_text(str(raw), mode).strip()
    if not text:
        raise bad_request("message text is empty")
    if len(text) > limit:
        raise bad_request("message is too long")
    # Formatting is part of the content: keep the source when it has any.
    markdown = mode is not None and str(mode).lower() != "html"
    formatted = markdown or any(f"<{tag}" in str(raw).lower() for tag in HTML_TAGS)
    return text, (text, str(raw) if formatted else None, json.dumps(p.get("entities")))


def _caption(p: Params) -> dict[str, Any]:
    raw = p.get("caption")
    if not raw:
        return {}
    caption = visible_text(str(raw), p.get("parse_mode")).strip()
    if len(caption) > MAX_CAPTION:
        raise bad_request("message caption is too long")
    return {"caption": caption}


def _thread(w: World, chat_id: int, p: Params) -> int | None:
    thread = p.get("message_thread_id")
    if thread is None:
        return None
    if thread not in w._topics.get(chat_id, {}):
        # Also for a plain supergroup's reply chain: its message_thread_id
        # names no topic a message can be sent to.
        raise bad_request("message thread not found")
    return int(thread)


def _reply_to(w: World, chat_id: int, p: Params) -> int | None:
    parameters = p.get("reply_parameters")
    allow = bool(p.get("allow_sending_without_reply", False))
    if isinstance(parameters, dict):
        target = parameters.get("message_id")
        allow = bool(parameters.get("allow_sending_without_reply", allow))
        if parameters.get("chat_id") not in (None, chat_id):
            raise bad_request("replies to other chats are not supported by this fake")
    else:
        target = p.get("reply_to_message_id")
    if target is None:
        return None
    if w._live(chat_id, int(target)) is None:
        if allow:
            return None
        raise bad_request("message to be replied not found")
    return int(target)


def _markup(p: Params) -> dict[str, Any] | None:
    """The inline keyboard a message shows, checked; other keyboards are
    accepted but, as on Telegram, are not part of the message object."""
    markup = p.get("reply_markup")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return None
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(
            'can\'t parse inline keyboard button: field "inline_keyboard" must be '
            "an Array of Arrays"
        )
    for button in (b for row in rows for b in row):
        if not isinstance(button, dict) or not str(button.get("text") or ""):
            raise bad_request("can't parse inline keyboard button: Text must be non-empty")
        if not BUTTON_ACTIONS & button.keys():
            raise bad_request(
                "can't parse inline keyboard button: Text buttons are unallowed in the inline "
                "keyboard"
            )
        data = button.get("callback_data")
        if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
            raise bad_request("BUTTON_DATA_INVALID")
    return {"inline_keyboard": rows} if rows else None


def _editable(w: World, p: Params) -> Stored:
    if p.get("inline_message_id") is not None:
        raise bad_request("inline messages are not supported by this fake")
    chat = w._chat(p.get("chat_id"))
    if p.get("message_id") is None:
        raise bad_request("message identifier is not specified")
    stored = w._live(chat.id, p["message_id"])
    if stored is None:
        raise bad_request("message to edit not found")
    if not stored.sender.is_bot:
        raise bad_request("message can't be edited")
    return stored


def _file(w: World, p: Params, u: Uploads, name: str, folder: str, kind: str) -> Any:
    value = p.get(name)
    upload = u.get(name)
    if upload is None and isinstance(value, str) and value.startswith("attach://"):
        upload = u.get(value.removeprefix("attach://"))
    if upload is not None:
        return w._store_file(upload, folder, kind)
    if isinstance(value, str) and value in w._files:
        return w._files[value]
    raise bad_request("wrong file identifier/HTTP URL specified")


def _set(message: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        message.pop(key, None)
    else:
        message[key] = value


#: Method names as Telegram matches them: without regard to case.
METHODS: dict[str, Method] = {
    name.lower(): function
    for name, function in {
        "getMe": get_me,
        "getUpdates": get_updates,
        "deleteWebhook": delete_webhook,
        "setWebhook": set_webhook,
        "getWebhookInfo": get_webhook_info,
        "setMyCommands": set_my_commands,
        "getMyCommands": get_my_commands,
        "deleteMyCommands": delete_my_commands,
        "sendMessage": send_message,
        "sendPhoto": send_photo,
        "sendDocument": send_document,
        "editMessageText": edit_message_text,
        "editMessageReplyMarkup": edit_message_reply_markup,
        "deleteMessage": delete_message,
        "sendMessageDraft": send_message_draft,
        "answerCallbackQuery": answer_callback_query,
        "sendChatAction": send_chat_action,
        "getFile": get_file,
    }.items()
}
