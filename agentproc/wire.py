"""The agentproc wire protocol as data and pure functions.

This module is the single place that knows the protocol: the environment
variable names, the line prefixes, how payloads are encoded and decoded, how a
raw output line is framed and classified, the session-id rule and how a reply
line is rendered so it stays reply text. It does no I/O. The agent SDK writes
through it and the bridge reads through it, so both sides share one rule book.

It must stay cheap to import (a Python agent pays for it on every turn): only
the standard library, and ``json`` is imported the first time it is needed.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Iterator

#: Sent to the agent as ``AGENT_PROTOCOL_VERSION``; opaque, never compared.
PROTOCOL_VERSION = "0.2"

# --- input: environment variables -------------------------------------------

ENV_MESSAGE = "AGENT_MESSAGE"
ENV_SESSION_ID = "AGENT_SESSION_ID"
ENV_SESSION_NAME = "AGENT_SESSION_NAME"
ENV_FROM_USER = "AGENT_FROM_USER"
ENV_STREAMING = "AGENT_STREAMING"
ENV_PROTOCOL_VERSION = "AGENT_PROTOCOL_VERSION"
ENV_IMAGE_URL = "AGENT_IMAGE_URL"
ENV_FILE_URL = "AGENT_FILE_URL"
ENV_ATTACHMENTS = "AGENT_ATTACHMENTS"
ENV_PERMISSION = "AGENT_PERMISSION"
#: ``1`` when the message is too large for ``AGENT_MESSAGE`` and only stdin carries it.
ENV_MESSAGE_ON_STDIN = "AGENT_MESSAGE_ON_STDIN"

#: Every variable the bridge sets for a turn. A profile's ``env`` cannot set these.
TURN_ENV_VARS = (
    ENV_MESSAGE,
    ENV_SESSION_ID,
    ENV_SESSION_NAME,
    ENV_FROM_USER,
    ENV_STREAMING,
    ENV_PROTOCOL_VERSION,
    ENV_IMAGE_URL,
    ENV_FILE_URL,
    ENV_ATTACHMENTS,
    ENV_PERMISSION,
    ENV_MESSAGE_ON_STDIN,
)

DEFAULT_SESSION_NAME = "default"

# --- SDK settings (read by the agent SDK, never set by the bridge) ---------------

#: ``1`` makes the SDK print a handler's full traceback on stderr.
ENV_DEBUG = "AGENTPROC_DEBUG"
#: Root folder of the SDK's history files; ``~/.agentproc`` when unset.
ENV_HOME = "AGENTPROC_HOME"

# --- output: line prefixes ------------------------------------------------------

PREFIX_SESSION = "AGENT_SESSION:"
PREFIX_PARTIAL = "AGENT_PARTIAL:"
PREFIX_ERROR = "AGENT_ERROR:"
PREFIX_PERMISSION_REQUEST = "AGENT_PERMISSION_REQUEST:"
#: Written by the bridge to the agent's stdin, one line per permission request.
PREFIX_PERMISSION_RESPONSE = "AGENT_PERMISSION_RESPONSE:"

# Line kinds. Plain strings rather than an Enum: enum costs an import and a
# comparison with a module constant is as clear.
BODY = "body"
SESSION = "session"
PARTIAL = "partial"
ERROR = "error"
PERMISSION_REQUEST = "permission_request"

#: (prefix, kind) in matching order. Matching is case-sensitive and anchored at
#: the very first character of the raw line: `` AGENT_SESSION:x`` is body.
LINE_KINDS = (
    (PREFIX_SESSION, SESSION),
    (PREFIX_PARTIAL, PARTIAL),
    (PREFIX_ERROR, ERROR),
    (PREFIX_PERMISSION_REQUEST, PERMISSION_REQUEST),
)

#: Every prefix begins with this; a line without it is body, found with one check.
_COMMON_START = "AGENT_"


def classify(line: str) -> tuple[str, str]:
    """Return ``(kind, payload)`` for one decoded output line.

    ``payload`` is the text after the prefix, or the whole line for body.
    """
    if line.startswith(_COMMON_START):
        for prefix, kind in LINE_KINDS:
            if line.startswith(prefix):
                return kind, line[len(prefix) :]
    return BODY, line


# --- payloads -------------------------------------------------------------------


def encode_payload(text: str) -> str:
    """Encode the text of a partial or error line: a JSON string on one line."""
    import json

    return json.dumps(text, ensure_ascii=False)


def decode_payload(raw: str) -> tuple[str, bool]:
    """Decode the payload of a partial or error line.

    Returns ``(text, ok)``. Empty (or blank) gives ``""``; a JSON string gives its
    value; any other valid JSON gives the raw text; invalid JSON gives the raw
    text and ``ok`` is False so the reader can warn.
    """
    if not raw or raw.isspace():
        return "", True
    value = string_payload(raw, 0)
    if value is not None:
        return value, True
    import json

    try:
        value = json.loads(raw)
    except ValueError:
        return raw, False
    if isinstance(value, str):
        return value, True
    return raw, True


_scanstring: Callable[[str, int], tuple[str, int]] | None = None


def string_payload(line: str, start: int) -> str | None:
    """The value when ``line[start:]`` is exactly one JSON string, else None.

    This is :func:`decode_payload`'s common case done without the general JSON
    parser (several times faster, which matters at 100,000 partials a turn).
    None means "not that simple": use :func:`decode_payload`.
    """
    global _scanstring
    if not line.startswith('"', start):
        return None
    if _scanstring is None:
        from json.decoder import scanstring  # type: ignore[attr-defined]

        _scanstring = scanstring
    try:
        value, end = _scanstring(line, start + 1)
    except ValueError:
        return None
    return value if end == len(line) else None


# --- session ids -----------------------------------------------------------------

SESSION_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~=-")
#: Longest session id accepted. Real agent CLIs use UUIDs (36 chars); this leaves
#: room for longer schemes while keeping ids usable as file names.
MAX_SESSION_ID_LENGTH = 256


def normalize_session_id(value: str) -> str | None:
    """Return the session id ``value`` names, or None when it is not valid.

    Valid: non-empty after stripping surrounding white space, only the
    characters ``A-Z a-z 0-9 . _ ~ = -``, not ``.`` or ``..``, and at most
    :data:`MAX_SESSION_ID_LENGTH` characters. Such an id is safe as a file name.
    """
    value = value.strip()
    if not value or value in (".", "..") or len(value) > MAX_SESSION_ID_LENGTH:
        return None
    if not SESSION_ID_CHARS.issuperset(value):
        return None
    return value


def is_valid_session_id(value: str) -> bool:
    """True when ``value`` is a session id exactly as given (no stripping needed)."""
    return normalize_session_id(value) == value


# --- writing lines (the agent side) ----------------------------------------------

#: Put in front of a reply line that would otherwise read as a protocol line.
#: ZERO WIDTH SPACE is invisible in chat, and the line no longer starts with the
#: prefix, so it stays reply text.
BODY_GUARD = "\u200b"


def session_line(session_id: str) -> str:
    """The ``AGENT_SESSION:`` line for a valid id; raises ValueError otherwise."""
    value = normalize_session_id(session_id)
    if value is None:
        raise ValueError(f"invalid session id {session_id!r}: {SESSION_ID_RULE}")
    return PREFIX_SESSION + value


SESSION_ID_RULE = (
    "a session id must be 1-256 characters from A-Z a-z 0-9 . _ ~ = - and not '.' or '..'"
)


def partial_line(text: str) -> str:
    return PREFIX_PARTIAL + encode_payload(text)


def error_line(text: str) -> str:
    return PREFIX_ERROR + encode_payload(text)


def permission_request_line(request: dict[str, object]) -> str:
    import json

    return PREFIX_PERMISSION_REQUEST + json.dumps(request, ensure_ascii=False)


def permission_response_line(response: dict[str, object]) -> str:
    import json

    return PREFIX_PERMISSION_RESPONSE + json.dumps(response, ensure_ascii=False)


def render_body_line(line: str) -> str:
    """Render one reply line so that a reader classifies it as body."""
    if line.startswith(_COMMON_START) and classify(line)[0] != BODY:
        return BODY_GUARD + line
    return line


def render_body(text: str) -> Iterator[str]:
    """Split reply text into lines (on ``\\n`` only) and render each as body.

    A trailing ``\\r`` would be dropped by the reader, so a line ending in one is
    written with one more ``\\r`` to keep it.
    """
    for line in text.split("\n"):
        if line.endswith("\r"):
            line += "\r"
        yield render_body_line(line)


# --- reading lines (the bridge side) ---------------------------------------------

#: Default cap for one output line, in bytes. Protocol lines carry JSON payloads
#: (a partial is rarely over a few KiB); a whole file in one line is still fine
#: at 1 MiB, and the reader never holds more than this of an unfinished line.
DEFAULT_MAX_LINE_BYTES = 1024 * 1024


class LineFramer:
    """Split a byte stream into decoded lines by the protocol's framing rules.

    Lines end at ``\\n`` only; one trailing ``\\r`` is dropped; bytes are decoded
    as UTF-8 with replacement characters, never dropped. A line longer than
    ``max_line_bytes`` is cut at the limit (the cut part is a line of its own,
    reported in :attr:`cut_lines`) and the rest of it, up to the next ``\\n``, is
    discarded without being held in memory.
    """

    __slots__ = ("_buf", "_discarding", "cut_lines", "max_line_bytes")

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be at least 1")
        self.max_line_bytes = max_line_bytes
        self._buf = b""
        self._discarding = False
        #: How many lines were cut at the limit so far.
        self.cut_lines = 0

    def feed(self, data: bytes) -> list[str]:
        """Take the next bytes of the stream; return the lines they complete."""
        limit = self.max_line_bytes
        if self._discarding:
            nl = data.find(b"\n")
            if nl < 0:
                return []
            self._discarding = False
            data = data[nl + 1 :]
        if self._buf:
            data = self._buf + data
            self._buf = b""
        nl = data.rfind(b"\n")
        if nl < 0:
            head, tail = b"", data
            out: list[str] = []
        elif nl < limit:
            # No complete line can be over the limit: decode them all at once.
            # Same result as line by line, since b"\n" never occurs inside a
            # UTF-8 sequence and the decoder restarts at it.
            head, tail = data[:nl], data[nl + 1 :]
            text = head.decode("utf-8", "replace")
            if "\r" in text:
                text = text.replace("\r\n", "\n")
                out = text.split("\n")
                if out[-1].endswith("\r"):
                    out[-1] = out[-1][:-1]
            else:
                out = text.split("\n")
        else:
            head, tail = data[:nl], data[nl + 1 :]
            out = [self._line(raw) for raw in head.split(b"\n")]
        if len(tail) > limit:
            self.cut_lines += 1
            self._discarding = True
            out.append(self._line(tail))
        else:
            self._buf = tail
        return out

    def _line(self, raw: bytes) -> str:
        """One complete line: cut at the limit, one trailing CR dropped, decoded."""
        if len(raw) > self.max_line_bytes:
            raw = raw[: self.max_line_bytes]
            self.cut_lines += 1
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        return raw.decode("utf-8", "replace")

    def close(self) -> list[str]:
        """End of stream: return the last line if it had no ``\\n``."""
        raw, self._buf = self._buf, b""
        self._discarding = False
        if not raw:
            return []
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        return [raw.decode("utf-8", "replace")]


# --- safe rendering of what a program wrote -----------------------------------------

#: Terminal control sequences: CSI (colours, cursor moves), OSC (titles, links),
#: and lone two-byte escapes. CLIs colour their stderr even into a pipe; a chat
#: message shows these as garbage.
_ANSI = None


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences and carriage-return overprints."""
    global _ANSI
    if "\x1b" not in text and "\x9b" not in text and "\r" not in text:
        return text
    if _ANSI is None:
        import re

        _ANSI = re.compile(
            r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI ... final byte
            r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC ... BEL or ST
            r"|\x1b[@-Z\\-_]"  # two-byte escapes
        )
    text = _ANSI.sub("", text)
    # A spinner redraws its line with "\r"; keep what the line finally showed.
    lines = (line.removesuffix("\r") for line in text.split("\n"))
    return "\n".join(line.rsplit("\r", 1)[-1] for line in lines)


# --- attachments ---------------------------------------------------------------------

ATTACHMENT_TYPES = ("image", "file", "audio", "video")


class Attachment:
    """One attachment of a turn: ``type`` (image, file, audio, video) and ``url``,
    with an optional ``name`` and ``mime_type``."""

    __slots__ = ("mime_type", "name", "type", "url")

    def __init__(
        self, type: str, url: str, name: str | None = None, mime_type: str | None = None
    ) -> None:
        if type not in ATTACHMENT_TYPES:
            raise ValueError(
                f"attachment type {type!r} is not one of {', '.join(ATTACHMENT_TYPES)}"
            )
        if not isinstance(url, str) or not url:
            raise ValueError("an attachment needs a non-empty url")
        self.type = type
        self.url = url
        self.name = name
        self.mime_type = mime_type

    def to_dict(self) -> dict[str, str]:
        out = {"type": self.type, "url": self.url}
        if self.name is not None:
            out["name"] = self.name
        if self.mime_type is not None:
            out["mime_type"] = self.mime_type
        return out

    @classmethod
    def from_dict(cls, data: object) -> Attachment:
        """Build from a decoded JSON object; raises ValueError naming what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("an attachment must be a JSON object")
        name = data.get("name")
        mime = data.get("mime_type")
        if name is not None and not isinstance(name, str):
            raise ValueError("attachment 'name' must be a string")
        if mime is not None and not isinstance(mime, str):
            raise ValueError("attachment 'mime_type' must be a string")
        return cls(str(data.get("type", "")), data.get("url", ""), name, mime)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Attachment):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.type, self.url, self.name, self.mime_type))

    def __repr__(self) -> str:
        extra = "".join(
            f", {k}={v!r}" for k, v in (("name", self.name), ("mime_type", self.mime_type)) if v
        )
        return f"Attachment(type={self.type!r}, url={self.url!r}{extra})"


def encode_attachments(attachments: Iterable[Attachment]) -> str:
    import json

    return json.dumps([a.to_dict() for a in attachments], ensure_ascii=False)


def decode_attachments(raw: str | None) -> list[Attachment]:
    """Parse ``AGENT_ATTACHMENTS``; ``[]`` when unset, empty or unparseable.

    Entries that are not valid attachments are skipped, the rest kept.
    """
    if not raw:
        return []
    import json

    try:
        items = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(items, list):
        return []
    out = []
    for item in items:
        try:
            out.append(Attachment.from_dict(item))
        except ValueError:
            continue
    return out


def turn_env(
    message: str | None,
    *,
    session_id: str = "",
    session_name: str = DEFAULT_SESSION_NAME,
    from_user: str = "",
    streaming: bool = True,
    attachments: Iterable[Attachment] = (),
    permission: bool = False,
) -> dict[str, str]:
    """The ``AGENT_*`` variables for one turn, as the bridge sets them.

    ``message=None`` leaves ``AGENT_MESSAGE`` out and sets
    ``AGENT_MESSAGE_ON_STDIN=1`` instead: the message is too large for the
    environment and travels on stdin only.
    """
    env = {
        ENV_SESSION_ID: session_id,
        ENV_SESSION_NAME: session_name or DEFAULT_SESSION_NAME,
        ENV_FROM_USER: from_user,
        ENV_STREAMING: "1" if streaming else "0",
        ENV_PROTOCOL_VERSION: PROTOCOL_VERSION,
    }
    if message is not None:
        env[ENV_MESSAGE] = message
    else:
        env[ENV_MESSAGE_ON_STDIN] = "1"
    atts = list(attachments)
    if atts:
        env[ENV_ATTACHMENTS] = encode_attachments(atts)
        image = next((a for a in atts if a.type == "image"), None)
        file = next((a for a in atts if a.type == "file"), None)
        if image is not None:
            env[ENV_IMAGE_URL] = image.url
        if file is not None:
            env[ENV_FILE_URL] = file.url
    if permission:
        env[ENV_PERMISSION] = "1"
    return env


# --- permission frames -------------------------------------------------------------
#
# Request (agent -> bridge, one stdout line). The field names are those of the
# reference implementation of this wire; a reader also takes the short names
# ``id`` and ``tool`` that earlier agents of this project write:
#   AGENT_PERMISSION_REQUEST:{"request_id": "1", "tool_name": "Bash", "input": {...},
#                             "description": "...", "tool_use_id": "..."}
# Response (bridge -> agent, one stdin line per request, in request order). It
# carries both answer shapes, so agents written against either one can read it:
#   AGENT_PERMISSION_RESPONSE:{"request_id": "1", "behavior": "deny", "message": "...",
#                              "id": "1", "allow": false, "updated_input": null}

#: The answers ``behavior`` may give.
BEHAVIOR_ALLOW = "allow"
BEHAVIOR_DENY = "deny"

UNREADABLE_RESPONSE = "unreadable permission response"


def _field(data: dict[str, object], long: str, short: str) -> object:
    """The value of ``long``, else of ``short`` (None and "" count as absent)."""
    value = data.get(long)
    if value is None or value == "":
        value = data.get(short)
    return value


class PermissionRequest:
    """An agent's request to use a tool.

    ``id`` (the wire's ``request_id``), ``tool`` (``tool_name``), ``input``,
    ``description`` and ``tool_use_id`` (the agent CLI's own id of the tool
    call, when it has one).
    """

    __slots__ = ("description", "id", "input", "tool", "tool_use_id")

    def __init__(
        self,
        id: str,
        tool: str,
        input: dict[str, object] | None = None,
        description: str = "",
        tool_use_id: str = "",
    ) -> None:
        self.id = id
        self.tool = tool
        self.input = input if input is not None else {}
        self.description = description
        self.tool_use_id = tool_use_id

    @property
    def request_id(self) -> str:
        """The wire name of :attr:`id`."""
        return self.id

    @property
    def tool_name(self) -> str:
        """The wire name of :attr:`tool`."""
        return self.tool

    def to_dict(self) -> dict[str, object]:
        """The request as written on the wire: the reference's field names, then the
        short ``id`` and ``tool`` for bridges that only know those."""
        out: dict[str, object] = {
            "request_id": self.id,
            "tool_name": self.tool,
            "input": self.input,
        }
        if self.description:
            out["description"] = self.description
        if self.tool_use_id:
            out["tool_use_id"] = self.tool_use_id
        out["id"] = self.id
        out["tool"] = self.tool
        return out

    def summary(self, width: int = 120) -> str:
        """One line for a human: the description, or the input compacted."""
        text = self.description
        if not text:
            import json

            text = json.dumps(self.input, ensure_ascii=False, sort_keys=True) if self.input else ""
        text = " ".join(text.split())
        return text if len(text) <= width else text[: width - 1] + "…"

    @classmethod
    def from_payload(cls, raw: str, fallback_id: str) -> PermissionRequest:
        """Parse a request payload; raises ValueError naming what is wrong.

        Either name of a field works (``request_id`` or ``id``, ``tool_name``
        or ``tool``); when both are given the reference's name wins.
        ``fallback_id`` is used when the request carries no id.
        """
        import json

        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"permission request is not valid JSON: {exc}") from None
        except RecursionError:
            raise ValueError("permission request is not valid JSON: nested too deeply") from None
        if not isinstance(data, dict):
            raise ValueError("permission request must be a JSON object")
        tool = _field(data, "tool_name", "tool")
        if not isinstance(tool, str) or not tool:
            raise ValueError("permission request needs a non-empty string 'tool_name' (or 'tool')")
        inp = data.get("input", {})
        if inp is None:
            inp = {}
        if not isinstance(inp, dict):
            raise ValueError("permission request 'input' must be a JSON object")
        desc = data.get("description", "")
        if desc is None:
            desc = ""
        elif not isinstance(desc, str):
            desc = str(desc)
        rid = _field(data, "request_id", "id")
        if rid is None or rid == "":
            rid = fallback_id
        elif isinstance(rid, bool) or not isinstance(rid, str | int | float):
            raise ValueError("permission request 'request_id' must be a string (or a number)")
        use_id = data.get("tool_use_id")
        if use_id is None:
            use_id = ""
        elif not isinstance(use_id, str):
            raise ValueError("permission request 'tool_use_id' must be a string")
        return cls(str(rid), tool, inp, desc, use_id)

    def __repr__(self) -> str:
        return f"PermissionRequest(id={self.id!r}, tool={self.tool!r}, input={self.input!r})"


class PermissionDecision:
    """The answer to a permission request.

    ``allow``; ``updated_input`` (None keeps the agent's input); ``message``
    (why, for the agent to show or log). Awaiting a decision gives the decision,
    so the SDK's helper works with or without ``await``.
    """

    __slots__ = ("allow", "message", "updated_input")

    def __init__(
        self, allow: bool, updated_input: dict[str, object] | None = None, message: str = ""
    ) -> None:
        self.allow = bool(allow)
        self.updated_input = updated_input
        self.message = message

    @property
    def behavior(self) -> str:
        """``"allow"`` or ``"deny"``, as the wire's ``behavior`` field says it."""
        return BEHAVIOR_ALLOW if self.allow else BEHAVIOR_DENY

    def to_response(self, request_id: str) -> dict[str, object]:
        """The response payload: ``request_id``, ``behavior``, ``updated_input`` when
        set, ``message``, and the short form's ``id`` and ``allow``."""
        out: dict[str, object] = {"request_id": request_id, "behavior": self.behavior}
        if self.updated_input is not None:
            out["updated_input"] = self.updated_input
        out["message"] = self.message
        out["id"] = request_id
        out["allow"] = self.allow
        return out

    @classmethod
    def from_payload(cls, raw: str) -> PermissionDecision:
        """Parse a response payload in either shape; anything unreadable is a denial.

        ``behavior`` (``"allow"``/``"deny"``) and ``allow`` (a JSON boolean) are
        both understood. When both are present they must agree; an answer that
        is not clearly "allow" denies, with a message that says why.
        """
        import json

        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            return cls(False, None, UNREADABLE_RESPONSE)
        if not isinstance(data, dict):
            return cls(False, None, f"{UNREADABLE_RESPONSE}: not a JSON object")
        upd = data.get("updated_input")
        msg = data.get("message", "")
        message = "" if msg is None else msg if isinstance(msg, str) else str(msg)
        updated = upd if isinstance(upd, dict) else None
        behavior = data.get("behavior")
        flag = data.get("allow")
        votes: list[bool] = []
        if behavior is not None:
            if behavior not in (BEHAVIOR_ALLOW, BEHAVIOR_DENY):
                return cls(
                    False,
                    None,
                    f'{UNREADABLE_RESPONSE}: \'behavior\' must be "allow" or "deny", '
                    f"not {json.dumps(behavior)[:40]}",
                )
            votes.append(behavior == BEHAVIOR_ALLOW)
        if flag is not None:
            if not isinstance(flag, bool):
                return cls(
                    False,
                    None,
                    f"{UNREADABLE_RESPONSE}: 'allow' must be true or false, "
                    f"not {json.dumps(flag)[:40]}",
                )
            votes.append(flag)
        if not votes:
            return cls(False, None, f"{UNREADABLE_RESPONSE}: it has neither 'behavior' nor 'allow'")
        if len(set(votes)) > 1:
            return cls(
                False, None, f"{UNREADABLE_RESPONSE}: 'behavior' and 'allow' disagree; denied"
            )
        return cls(votes[0], updated if votes[0] else None, message)

    def __await__(self) -> Generator[None, None, PermissionDecision]:
        # A generator that yields nothing: awaiting it returns at once.
        return self
        yield  # type: ignore[unreachable]

    def __bool__(self) -> bool:
        return self.allow

    def __repr__(self) -> str:
        return (
            f"PermissionDecision(allow={self.allow!r}, updated_input={self.updated_input!r}, "
            f"message={self.message!r})"
        )
