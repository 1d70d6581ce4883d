"""Conversation history for agents that keep their own: one JSONL file per session.

A file lives at ``<root>/sessions/<session_id>.jsonl``, where root is
``$AGENTPROC_HOME`` or ``~/.agentproc``. Each line is one JSON object with
``role``, ``content``, ``timestamp`` and, when given, ``meta``. That is the
line format of the reference SDK of this wire too (which writes the first three
keys and ignores others), so either SDK reads the other's files.

Why this shape: an agent process lives for one turn, so what it remembers must
be on disk, and appending one line per entry costs the same however long the
conversation is. Turns of one session can overlap (two chats sharing a session,
or an agent's helpers), so each entry goes out in one ``write()`` on an
``O_APPEND`` descriptor while holding an exclusive ``flock``: lines never
interleave, and a reader holding a shared lock never sees half an entry. The
folder is 0700 and the files 0600 because they hold people's conversations.

Session ids name files, so only ids that pass the protocol's session-id rule
unchanged are used; anything else (``../x``, ``a/b``, padded with spaces) is
refused on write and reads as an empty history.
"""

from __future__ import annotations

import os
import sys

from agentproc import wire

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from typing import overload
else:

    def overload(function: object) -> object:
        # typing costs an import on every turn; the overloads only matter to type checkers.
        return function


#: Sub-folder of the root that holds one file per session.
SESSIONS_DIR = "sessions"
HISTORY_SUFFIX = ".jsonl"
DEFAULT_HOME = os.path.join("~", ".agentproc")
DIR_MODE = 0o700
FILE_MODE = 0o600

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
#: A symlink planted at a session's path is refused instead of followed.
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class HistoryEntry:
    """One message of a conversation: ``role`` (``"user"``, ``"assistant"``, ...),
    ``content``, an ISO-8601 UTC ``timestamp`` (filled in when written if None)
    and optional ``meta``, a JSON-serialisable dict for anything else."""

    __slots__ = ("content", "meta", "role", "timestamp")

    def __init__(
        self,
        role: str,
        content: str,
        timestamp: str | None = None,
        meta: Mapping[str, object] | None = None,
    ) -> None:
        if not isinstance(role, str) or not role:
            raise ValueError("a history entry needs a non-empty role, such as 'user'")
        if not isinstance(content, str):
            raise TypeError(f"history entry content must be a str, not {type(content).__name__}")
        if timestamp is not None and not isinstance(timestamp, str):
            raise TypeError("history entry timestamp must be an ISO-8601 str or None")
        self.role = role
        self.content = content
        self.timestamp = timestamp
        self.meta: dict[str, object] | None = dict(meta) if meta is not None else None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"role": self.role, "content": self.content}
        if self.timestamp is not None:
            out["timestamp"] = self.timestamp
        if self.meta is not None:
            out["meta"] = self.meta
        return out

    @classmethod
    def from_dict(cls, data: object) -> HistoryEntry:
        """Build from a decoded JSON object; raises ValueError naming what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("a history entry must be a JSON object")
        role, content = data.get("role"), data.get("content")
        timestamp, meta = data.get("timestamp"), data.get("meta")
        if not isinstance(role, str) or not role:
            raise ValueError("history entry 'role' must be a non-empty string")
        if content is None and "content" in data:
            content = ""  # an explicit null: a reply with no text, as other writers store it
        if not isinstance(content, str):
            raise ValueError("history entry 'content' must be a string")
        if timestamp is not None and not isinstance(timestamp, str):
            raise ValueError("history entry 'timestamp' must be a string")
        if meta is not None and not isinstance(meta, dict):
            raise ValueError("history entry 'meta' must be a JSON object")
        return cls(role, content, timestamp, meta)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HistoryEntry):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable, like a dict

    def __repr__(self) -> str:
        extra = f", meta={self.meta!r}" if self.meta is not None else ""
        return (
            f"HistoryEntry(role={self.role!r}, content={self.content!r}, "
            f"timestamp={self.timestamp!r}{extra})"
        )


def _home() -> str:
    return os.path.expanduser(os.environ.get(wire.ENV_HOME) or DEFAULT_HOME)


def _session_path(session_id: object) -> str | None:
    """The history file of ``session_id``, or None when the id is not safe as a name."""
    if not isinstance(session_id, str) or not wire.is_valid_session_id(session_id):
        return None
    return os.path.join(_home(), SESSIONS_DIR, session_id + HISTORY_SUFFIX)


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="microseconds")


def _encode_line(entry: HistoryEntry) -> bytes:
    """One JSON line. Readable UTF-8 normally; ``\\u`` escapes when the text holds
    a lone surrogate (which UTF-8 cannot carry) so it still round-trips."""
    import json

    data = entry.to_dict()
    try:
        text = json.dumps(data, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"history entry meta must be JSON-serialisable: {exc}") from None
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(data) + "\n").encode("ascii")


def _make_private_dir(path: str) -> None:
    """Create ``path`` as 0700 unless it exists; an existing folder is left as it is."""
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        return
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:
            return
    # mkdir's mode is filtered through the umask; set it exactly.
    os.chmod(path, DIR_MODE)


def _open_for_append(path: str) -> int:
    """Open ``path`` for appending, creating it as 0600 whatever the umask."""
    flags = os.O_WRONLY | os.O_APPEND | _O_CLOEXEC | _O_NOFOLLOW
    while True:
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            try:
                return os.open(path, flags)
            except FileNotFoundError:  # removed in between; create it after all
                continue
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, FILE_MODE)
        except OSError:
            os.close(fd)
            raise
        return fd


def _lock(fd: int, exclusive: bool) -> None:
    """flock ``fd``; released when it is closed. Without fcntl (Windows) O_APPEND alone."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return
    fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)


def _warn(message: str) -> None:
    if sys.stderr is not None:
        try:
            sys.stderr.write(f"agentproc: {message}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


def session_file_path(session_id: str) -> Path:
    """The history file of ``session_id``: ``<root>/sessions/<session_id>.jsonl``.

    The folders are created (private, 0700) so the path can be opened for
    writing at once; the file itself may not exist yet. Raises ValueError when
    ``session_id`` is empty or not safe as a file name.
    """
    from pathlib import Path

    path = _session_path(session_id)
    if path is None:
        if session_id == "":
            raise ValueError(f"an empty session id has no history file; {_NO_SESSION_HINT}")
        raise ValueError(f"no history file for session id {session_id!r}: {wire.SESSION_ID_RULE}")
    _make_folders()
    return Path(path)


#: Said when a turn without a session id tries to keep history.
_NO_SESSION_HINT = (
    "a new conversation has no session id yet: make one (for example uuid.uuid4().hex) "
    "and return it with AgentResult(reply, session_id=...)"
)


def _make_folders() -> None:
    home = _home()
    _make_private_dir(home)
    _make_private_dir(os.path.join(home, SESSIONS_DIR))


def _entries_of(entry: object, content: str | None) -> tuple[list[HistoryEntry], bool]:
    """The entries an ``append_history`` call names, and whether it named one or a list."""
    if isinstance(entry, HistoryEntry):
        if content is not None:
            raise TypeError("pass either a HistoryEntry or a role and its content, not both")
        return [entry], True
    if isinstance(entry, str):
        if content is None:
            raise TypeError(
                "append_history(session_id, role, content) needs the content; or pass a list: "
                "append_history(session_id, [HistoryEntry(role=..., content=...)])"
            )
        return [HistoryEntry(entry, content)], True
    if isinstance(entry, list | tuple):
        if content is not None:
            raise TypeError("pass either a list of entries or a role and its content, not both")
        for index, item in enumerate(entry):
            if not isinstance(item, HistoryEntry):
                raise TypeError(
                    f"append_history entries must be HistoryEntry objects; item {index} is "
                    f"{type(item).__name__}"
                )
        return list(entry), False
    raise TypeError(
        "append_history needs a list of HistoryEntry, one HistoryEntry, or a role and its "
        f"content, not {type(entry).__name__}"
    )


@overload
def append_history(session_id: str, entry: HistoryEntry) -> HistoryEntry: ...
@overload
def append_history(session_id: str, entry: str, content: str) -> HistoryEntry: ...  # noqa: F811
@overload
def append_history(  # noqa: F811
    session_id: str, entry: list[HistoryEntry] | tuple[HistoryEntry, ...]
) -> list[HistoryEntry]: ...
def append_history(  # noqa: F811
    session_id: str,
    entry: HistoryEntry | str | list[HistoryEntry] | tuple[HistoryEntry, ...],
    content: str | None = None,
) -> HistoryEntry | list[HistoryEntry]:
    """Append to a session's history; return what was written.

    Three call shapes::

        append_history(sid, [HistoryEntry(role="user", content=text), ...])  # -> list
        append_history(sid, HistoryEntry("assistant", reply))                # -> entry
        append_history(sid, "user", text)                                    # -> entry

    Entries without a timestamp get the current time. A list is written in
    one piece: a reader never sees part of it. An empty ``session_id`` (a new
    conversation that has no session yet) writes nothing and says so on
    stderr, as the reference SDK skips it too; any other id that is not safe
    as a file name raises ValueError.
    """
    entries, single = _entries_of(entry, content)
    path = _session_path(session_id)
    if path is None and session_id != "":
        raise ValueError(
            f"cannot keep history for session id {session_id!r}: {wire.SESSION_ID_RULE}"
        )
    stamp = _now() if any(e.timestamp is None for e in entries) else ""
    written = [
        e if e.timestamp is not None else HistoryEntry(e.role, e.content, stamp, e.meta)
        for e in entries
    ]
    if path is None:
        _warn(f"history not kept: {_NO_SESSION_HINT}")
    elif written:
        _append_lines(path, b"".join(_encode_line(e) for e in written))
    return written[0] if single else written


def _append_lines(path: str, data: bytes) -> None:
    _make_folders()
    fd = _open_for_append(path)
    try:
        _lock(fd, exclusive=True)
        # One write for all the lines; the loop only matters for a short write
        # (a full disk), and the lock still keeps them in one piece.
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def load_history(session_id: str, limit: int | None = None) -> list[HistoryEntry]:
    """The entries of a session's history, oldest first; the last ``limit`` if given.

    A session without a file, or an id that is not safe as a file name, has
    no history: ``[]``. Lines that do not hold an entry (a torn write, manual
    edits) are skipped with one note on stderr; bytes that are not UTF-8 are
    replaced, not fatal.
    """
    if limit is not None and limit < 0:
        raise ValueError("limit must be None or a number >= 0")
    path = _session_path(session_id)
    if path is None or limit == 0:
        return []
    try:
        fd = os.open(path, os.O_RDONLY | _O_CLOEXEC | _O_NOFOLLOW)
    except FileNotFoundError:
        return []
    with os.fdopen(fd, "rb") as f:
        _lock(fd, exclusive=False)
        data = f.read()
    import json

    entries: list[HistoryEntry] = []
    skipped = 0
    for raw in reversed(data.split(b"\n")):
        if limit is not None and len(entries) >= limit:
            break
        if not raw.strip():
            continue
        try:
            entries.append(HistoryEntry.from_dict(json.loads(raw.decode("utf-8", "replace"))))
        except (ValueError, TypeError, RecursionError):
            skipped += 1
    entries.reverse()
    if skipped:
        _warn(f"skipped {skipped} unreadable line(s) in {path}")
    return entries
