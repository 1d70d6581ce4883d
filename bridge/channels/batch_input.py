"""The items of a batch, and reading them from an input file.

:func:`parse_input` / :func:`read_input` turn an input file into
:class:`BatchItem` objects, or raise :class:`BatchInputError` listing every
bad line at once, before anything runs.

Input formats: JSONL when the first non-blank line starts with ``{`` (each line
``{"id", "message", "session_id"?, "attachments"?}``), otherwise plain text, one
message per non-blank line with its 1-based line number as id.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import IO, Literal

from agentproc.wire import Attachment
from bridge.turn.attachments import URL_EXAMPLES, url_problem
from bridge.turn.request import TurnRequest

from .errors import BatchInputError

__all__ = [
    "INPUT_KEYS",
    "MAX_PROBLEMS",
    "BatchItem",
    "InputFormat",
    "ItemId",
    "ParsedInput",
    "id_key",
    "parse_input",
    "read_input",
]

ItemId = str | int | float
InputFormat = Literal["auto", "text", "jsonl"]

#: The keys of a JSONL input line that mean something; others are ignored (with a warning).
INPUT_KEYS = ("id", "message", "session_id", "attachments")
#: Bad input lines listed in one error; the rest are counted.
MAX_PROBLEMS = 20


def id_key(value: ItemId) -> str:
    """The identity of an item id for duplicate checks and ``--resume``: a string
    is itself, a number its JSON text (so ``3`` and ``"3"`` are the same id)."""
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One message of a batch. ``id`` is kept as given in the input (a string or
    a number); ``index`` is the 0-based position among the items; ``line`` the
    1-based line of the input it came from."""

    id: ItemId
    index: int
    line: int
    message: str
    session_id: str = ""
    attachments: tuple[Attachment, ...] = ()

    @property
    def key(self) -> str:
        return id_key(self.id)

    def request(self, *, timeout: float | None = None, cwd: str | None = None) -> TurnRequest:
        """The turn of this item: its message, session and attachments, streaming
        off (a batch keeps only the final reply), with the run's ``--timeout``
        and ``--cwd``."""
        return TurnRequest(
            self.message,
            session_id=self.session_id,
            attachments=self.attachments,
            cwd=cwd,
            timeout=timeout,
            streaming=False,
        )


@dataclass(slots=True)
class ParsedInput:
    items: list[BatchItem]
    format: Literal["text", "jsonl"]
    warnings: list[str] = field(default_factory=list)


# --- input ----------------------------------------------------------------------------


def read_input(
    path: str, *, fmt: InputFormat = "auto", stdin: IO[bytes] | None = None
) -> ParsedInput:
    """Read and parse the input file ``path`` (``-`` reads ``stdin``, by default
    the process's standard input). Raises :class:`BatchInputError`."""
    label = "<stdin>" if path == "-" else path
    try:
        if path == "-":
            raw = (stdin if stdin is not None else sys.stdin.buffer).read()
        else:
            with open(path, "rb") as fh:
                raw = fh.read()
    except OSError as exc:
        raise BatchInputError(
            f"cannot read the input {label}: {exc.strerror or exc}",
            hint="give a file with one message per line, or - for standard input",
        ) from exc
    # surrogateescape: bytes that are not UTF-8 reach the agent unchanged, as with `run --stdin`.
    return parse_input(raw.decode("utf-8", "surrogateescape"), fmt=fmt, label=label)


def parse_input(text: str, *, fmt: InputFormat = "auto", label: str = "<input>") -> ParsedInput:
    """Parse batch input text. ``fmt="auto"`` picks JSONL when the first non-blank
    line starts with ``{``. Raises :class:`BatchInputError` with every problem."""
    text = text.removeprefix("\ufeff")
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if fmt == "auto":
        first = next((line for line in lines if line.strip()), "")
        fmt = "jsonl" if first.lstrip().startswith("{") else "text"
    if fmt == "text":
        items = [
            BatchItem(id=str(n), index=0, line=n, message=line)
            for n, line in enumerate(lines, 1)
            if line.strip()
        ]
        parsed = ParsedInput(_numbered(items), "text")
    else:
        parsed = _parse_jsonl(lines, label)
    if not parsed.items:
        raise BatchInputError(
            f"the input {label} has no messages",
            hint="write one message per line (plain text), or one JSON object per line "
            'like {"id": "a", "message": "hello"}',
        )
    return parsed


def _numbered(items: list[BatchItem]) -> list[BatchItem]:
    return [
        BatchItem(it.id, i, it.line, it.message, it.session_id, it.attachments)
        for i, it in enumerate(items)
    ]


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number JSON allows")


def _parse_jsonl(lines: list[str], label: str) -> ParsedInput:
    problems: list[str] = []
    items: list[BatchItem] = []
    seen: dict[str, int] = {}
    unknown: dict[str, int] = {}

    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{label}:{n}"
        try:
            data = json.loads(line, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        except ValueError as exc:
            problems.append(f"{where}: invalid JSON: {exc}")
            continue
        if not isinstance(data, dict):
            problems.append(f'{where}: expected a JSON object like {{"message": ...}}')
            continue
        bad = len(problems)
        for key in data:
            if key not in INPUT_KEYS:
                unknown.setdefault(key, n)

        item_id: ItemId = str(n)
        if "id" in data:
            raw_id = data["id"]
            if isinstance(raw_id, bool) or not isinstance(raw_id, str | int | float):
                problems.append(f'{where}: "id" must be a string or a number')
            elif raw_id == "":
                problems.append(f'{where}: "id" is empty')
            else:
                item_id = raw_id
        key = id_key(item_id)
        if len(problems) == bad:
            if key in seen:
                problems.append(
                    f"{where}: duplicate id {json.dumps(item_id)} (first on line {seen[key]})"
                )
            else:
                seen[key] = n

        attachments: list[Attachment] = []
        raw_atts = data.get("attachments")
        if raw_atts is not None:
            if not isinstance(raw_atts, list):
                problems.append(f'{where}: "attachments" must be a list of objects')
            else:
                for i, raw in enumerate(raw_atts, 1):
                    try:
                        att = Attachment.from_dict(raw)
                    except ValueError as exc:
                        problems.append(f"{where}: attachment {i}: {exc}")
                        continue
                    problem = url_problem(att.url)
                    if problem:
                        problems.append(
                            f"{where}: attachment {i}: url {att.url!r}: {problem}; "
                            f"give a URL or an absolute path, like {URL_EXAMPLES}"
                        )
                        continue
                    attachments.append(att)

        message = data.get("message")
        if message is None:
            message = ""
            if not raw_atts:
                problems.append(f'{where}: no "message" (and no attachments)')
        elif not isinstance(message, str):
            problems.append(f'{where}: "message" must be a string')
            message = ""
        elif message == "" and not raw_atts:
            problems.append(f'{where}: "message" is empty (and there are no attachments)')

        session_id = data.get("session_id")
        if session_id is None:
            session_id = ""
        elif not isinstance(session_id, str):
            problems.append(f'{where}: "session_id" must be a string')
            session_id = ""

        if len(problems) == bad:
            items.append(BatchItem(item_id, 0, n, message, session_id, tuple(attachments)))

    if problems:
        count = len(problems)
        shown = problems[:MAX_PROBLEMS]
        if count > MAX_PROBLEMS:
            shown.append(f"... and {count - MAX_PROBLEMS} more")
        raise BatchInputError(
            f"invalid input {label}: {count} problem{'s' if count != 1 else ''}; nothing was run",
            problems=shown,
            hint='each line must be a JSON object like {"id": "a", "message": "hello"} '
            "with a unique id (or use --format text for plain lines)",
        )
    warnings = [
        f"{label}:{line}: key {key!r} is not used (used: {', '.join(INPUT_KEYS)})"
        for key, line in unknown.items()
    ]
    return ParsedInput(_numbered(items), "jsonl", warnings)
