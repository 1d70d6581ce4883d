"""The Bot API's wire format as pure functions: no sockets, no state.

Bodies in, plain parameters out (``decode_body``); formatted text in, the
text a person sees out (``visible_text``); a person's text in, the entities
Telegram would attach out (``detect_entities``). Errors are ``ApiError``,
which carries the exact JSON Telegram answers with.
"""

from __future__ import annotations

import email.parser
import email.policy
import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

#: Fields Telegram reads as integers. Form bodies carry every value as a
#: string, and Telegram also accepts "123" for an integer in a JSON body.
INT_FIELDS = frozenset(
    {
        "message_id",
        "message_thread_id",
        "reply_to_message_id",
        "offset",
        "limit",
        "draft_id",
        "cache_time",
        "max_connections",
        "from_chat_id",
    }
)
#: ``timeout`` is documented as an integer; python-telegram-bot sends a
#: fraction when given one (``timedelta(seconds=0.5)``), so accept floats.
FLOAT_FIELDS = frozenset({"timeout"})
BOOL_FIELDS = frozenset(
    {
        "show_alert",
        "drop_pending_updates",
        "disable_notification",
        "protect_content",
        "allow_sending_without_reply",
        "disable_web_page_preview",
    }
)
#: Fields sent as JSON-serialized objects or arrays ("A JSON-serialized ...").
JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "reply_parameters",
        "entities",
        "caption_entities",
        "allowed_updates",
        "link_preview_options",
    }
)


@dataclass(frozen=True, slots=True)
class Upload:
    """A file part of a multipart body."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class ApiError(Exception):
    """A Bot API failure: ``{"ok": false, "error_code": ..., "description": ...}``."""

    status: int
    description: str
    parameters: dict[str, Any] | None = field(default=None)

    def __str__(self) -> str:
        return f"{self.status} {self.description}"

    def body(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            answer["parameters"] = self.parameters
        return answer


def bad_request(what: str) -> ApiError:
    return ApiError(400, f"Bad Request: {what}")


def is_loopback_url(url: str) -> bool:
    """Whether ``url``'s host is this machine: the only place the fake sends
    webhook requests to."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- bodies ------------------------------------------------------------------


def decode_body(
    content_type: str, body: bytes, query: str = ""
) -> tuple[dict[str, Any], dict[str, Upload], str]:
    """Parameters and uploads of one request, and which encoding carried them
    ("query", "json", "form" or "multipart")."""
    params: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    uploads: dict[str, Upload] = {}
    kind = "query"
    mime = content_type.split(";", 1)[0].strip().lower()
    if body and mime == "application/json":
        kind = "json"
        try:
            decoded = json.loads(body)
        except ValueError as exc:
            raise bad_request("can't parse JSON body") from exc
        if not isinstance(decoded, dict):
            raise bad_request("JSON body must be an object")
        params.update(decoded)
    elif body and mime == "application/x-www-form-urlencoded":
        kind = "form"
        params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    elif body and mime == "multipart/form-data":
        kind = "multipart"
        fields, uploads = _multipart(content_type, body)
        params.update(fields)
    return {k: coerce(k, v) for k, v in params.items()}, uploads, kind


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, Upload]]:
    # The email package reads MIME multipart; http.server has no parser of its own.
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise bad_request("can't parse multipart body")
    fields: dict[str, str] = {}
    uploads: dict[str, Upload] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        data = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is None:
            fields[name] = data.decode(part.get_content_charset() or "utf-8")
        else:
            uploads[name] = Upload(filename, part.get_content_type(), data)
    return fields, uploads


def coerce(name: str, value: Any) -> Any:
    """A parameter as Telegram reads it, whatever encoding carried it."""
    if not isinstance(value, str):
        return value
    try:
        if name == "chat_id":
            return int(value) if re.fullmatch(r"-?\d+", value) else value
        if name in INT_FIELDS:
            return int(value)
        if name in FLOAT_FIELDS:
            return float(value)
    except ValueError as exc:
        raise bad_request(f"invalid {name} specified") from exc
    if name in BOOL_FIELDS:
        return value.lower() in ("true", "1")
    if name in JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError as exc:
            raise bad_request(f"can't parse {name} JSON object") from exc
    return value


# -- formatted text ------------------------------------------------------------

#: Tags of Telegram's HTML style (https://core.telegram.org/bots/api#html-style).
HTML_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "tg-emoji",
        "code",
        "pre",
        "blockquote",
    }
)
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s[^<>]*)?)>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9A-Fa-f]+);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def visible_text(text: str, parse_mode: str | None) -> str:
    """The text a person sees. HTML is checked the way Telegram checks it
    (unknown or unbalanced tags are refused); Markdown modes are passed
    through unparsed (a limitation of this fake)."""
    if parse_mode is None or parse_mode == "":
        return text
    mode = parse_mode.lower()
    if mode == "html":
        return _html_text(text)
    if mode in ("markdown", "markdownv2"):
        return text
    raise bad_request("unsupported parse_mode")


def _html_text(text: str) -> str:
    out: list[str] = []
    open_tags: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "<":
            at = len(text[:i].encode("utf-8"))
            match = _TAG.match(text, i)
            if match is None:
                raise _entities_error(f"Unclosed start tag at byte offset {at}")
            closing, name = match.group(1) == "/", match.group(2).lower()
            if name not in HTML_TAGS:
                kind = "end" if closing else "start"
                raise _entities_error(f'Unsupported {kind} tag "{name}" at byte offset {at}')
            if not closing:
                open_tags.append(name)
            elif not open_tags:
                raise _entities_error(f"Unexpected end tag at byte offset {at}")
            elif open_tags[-1] != name:
                raise _entities_error(
                    f'Unmatched end tag at byte offset {at}, expected "</{open_tags[-1]}>", '
                    f'found "</{name}>"'
                )
            else:
                open_tags.pop()
            i = match.end()
        elif ch == "&" and (entity := _ENTITY.match(text, i)):
            ref = entity.group(1)
            if ref in _NAMED:
                out.append(_NAMED[ref])
            else:
                out.append(chr(int(ref[2:], 16) if ref[1] in "xX" else int(ref[1:])))
            i = entity.end()
        else:
            out.append(ch)
            i += 1
    if open_tags:
        raise _entities_error(f'Can\'t find end tag corresponding to start tag "{open_tags[-1]}"')
    return "".join(out)


def _entities_error(what: str) -> ApiError:
    return bad_request(f"can't parse entities: {what}")


# -- entities Telegram attaches to what people write ---------------------------

_MENTION = re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{4,31}\b")
_COMMAND = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z][A-Za-z0-9_]{4,31})?\b")


def utf16_len(text: str) -> int:
    """Entity offsets and lengths are counted in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def detect_entities(text: str) -> list[dict[str, Any]]:
    """The ``mention`` and ``bot_command`` entities Telegram finds in a
    person's text, in order."""
    found = [("mention", m) for m in _MENTION.finditer(text)]
    found += [("bot_command", m) for m in _COMMAND.finditer(text)]
    found.sort(key=lambda pair: pair[1].start())
    return [
        {
            "type": kind,
            "offset": utf16_len(text[: m.start()]),
            "length": utf16_len(m.group()),
        }
        for kind, m in found
    ]
