"""Reading a person's input at a terminal without blocking the event loop.

Both ``agentproc run`` (a permission question) and ``agentproc chat`` (every
message) read standard input while turns run. Reading is done on the raw
file descriptor, after the event loop says it is readable, so a read can be
cancelled (a turn times out while a question is open) and no thread is left
blocked in ``readline()`` when the command ends. Python's buffered
``sys.stdin`` is not used at all: it could hold lines the event loop does not
know about.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from agentproc.wire import PermissionDecision, PermissionRequest

#: Bytes read from stdin at once.
READ_SIZE = 64 * 1024


class StdinLines:
    """Lines of a file descriptor (stdin by default), read asynchronously."""

    def __init__(self, fd: int | None = None) -> None:
        self.fd = sys.stdin.fileno() if fd is None else fd
        self._buf = b""
        self._eof = False
        # A regular file or /dev/null cannot be watched by the event loop
        # (epoll refuses them), but reading one never blocks.
        self._pollable = True

    @property
    def is_terminal(self) -> bool:
        return os.isatty(self.fd)

    async def readline(self) -> str | None:
        """The next line without its newline, or None at end of input."""
        while b"\n" not in self._buf:
            if self._eof:
                if not self._buf:
                    return None
                line, self._buf = self._buf, b""
                return line.decode("utf-8", "surrogateescape")
            if self._pollable:
                try:
                    import anyio

                    await anyio.wait_readable(self.fd)
                except PermissionError:
                    self._pollable = False
            # The descriptor stays blocking; it is readable, so this returns
            # at once with whatever is there.
            data = os.read(self.fd, READ_SIZE)
            if data:
                self._buf += data
            else:
                self._eof = True
        line, _, self._buf = self._buf.partition(b"\n")
        return line.rstrip(b"\r").decode("utf-8", "surrogateescape")


#: How much of a tool's input the question shows as JSON: enough for a few
#: arguments, short enough to read before answering.
INPUT_SHOWN_CHARS = 600
#: How much of a command or a file's content is shown, in lines and in
#: characters per line: enough to see what runs or what is written.
TEXT_SHOWN_LINES = 12
TEXT_SHOWN_LINE_CHARS = 240
#: Input keys shown as they are, not as JSON (the command a tool runs, the file
#: it writes and what it writes), with the label each gets.
PLAIN_INPUT_KEYS = (("command", "command"), ("file_path", "file"), ("content", "content"))


def printable(text: str) -> str:
    """``text`` with control characters (but newlines and tabs) escaped, so
    what an agent sends cannot move the cursor or recolour the question."""
    if all(ch.isprintable() or ch in "\n\t" for ch in text):
        return text
    return "".join(
        ch if ch.isprintable() or ch in "\n\t" else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain_lines(label: str, value: str) -> list[str]:
    lines = printable(value).split("\n")
    shown = [_cut(line, TEXT_SHOWN_LINE_CHARS) for line in lines[:TEXT_SHOWN_LINES]]
    if len(lines) > TEXT_SHOWN_LINES:
        more = len(lines) - TEXT_SHOWN_LINES
        shown.append(f"… ({more} more line{'' if more == 1 else 's'}, {len(value)} characters)")
    head = f"  {label}:".ljust(11)
    return [head + shown[0], *(" " * 11 + line for line in shown[1:])]


def describe_permission(tool: str, description: str, input: Mapping[str, Any]) -> list[str]:
    """The question's lead-in, one line each: the tool, what the agent says it
    is for, and the input it would run with (the input is what is really
    allowed): a command, a file's path and its content as they are, anything
    else as compact JSON, all cut to a readable size."""
    import json

    lines = [f"agentproc: the agent asks to use {printable(tool)}"]
    if description:
        why = printable(" ".join(description.split()))
        lines.append(f"  why:     {_cut(why, INPUT_SHOWN_CHARS)}")
    rest = dict(input)
    for key, label in PLAIN_INPUT_KEYS:
        value = rest.get(key)
        if isinstance(value, str):
            del rest[key]
            lines += _plain_lines(label, value)
    if rest:
        shown = json.dumps(rest, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))
        lines.append(f"  input:   {_cut(printable(shown), INPUT_SHOWN_CHARS)}")
    return lines


def describe_request(req: PermissionRequest) -> str:
    """:func:`describe_permission` of a request, as one block of text."""
    return "\n".join(describe_permission(req.tool, req.description, req.input or {}))


async def ask_permission(lines: StdinLines, req: PermissionRequest) -> PermissionDecision:
    """Show the request (tool, description, input) on stderr, ask
    ``Allow <tool>? [y/N]`` and read the answer.

    Anything but y/yes is a denial, and so is the end of input.
    """
    import anyio

    sys.stderr.write(f"{describe_request(req)}\nAllow {req.tool}? [y/N] ")
    sys.stderr.flush()
    try:
        answer = await lines.readline()
    except anyio.get_cancelled_exc_class():
        sys.stderr.write("\n")
        raise
    if answer is not None and answer.strip().lower() in ("y", "yes"):
        return PermissionDecision(True)
    return PermissionDecision(False, None, "denied by the user at the terminal")


def denial_without_terminal(why: str) -> str:
    """The message an agent gets when nobody could be asked."""
    return f"denied: the bridge has no terminal to ask ({why})"


def deny_without_terminal(req: PermissionRequest, why: str) -> PermissionDecision:
    """Deny when no one can be asked, and say so on stderr."""
    sys.stderr.write(f"agentproc: denied {req.tool}: {why}\n")
    return PermissionDecision(False, None, denial_without_terminal(why))


# --- showing a turn's reply after its streamed text ------------------------------------------

#: The line that tells the final reply apart from the streamed text above it.
FINAL_HEADER = "--- final reply ---"


def use_color(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal that takes ANSI styles (NO_COLOR and
    TERM=dumb turn them off)."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def reply_was_streamed(streamed: str, reply: str) -> bool:
    """True when the final reply is already on screen: the streamed text,
    stripped, ends with the reply, stripped. Wrappers may stream a short note
    ("(retrying: ...)") before the answer, and an agent that retried streams
    its answer again; both still end with the final reply."""
    shown = streamed.strip()
    return bool(shown) and shown.endswith(reply.strip())


def write_reply(out: TextIO, notes: TextIO, streamed: Sequence[str], reply: str) -> None:
    """End a turn on the terminal: close the streamed line, then print the
    final reply unless it only repeats what streamed.

    When text streamed and the reply differs from it, a header line on
    ``notes`` (stderr; dim on a terminal) marks the reply as the final version,
    so ``out`` carries nothing but the agent's text."""
    text = "".join(streamed)
    if text and not text.endswith("\n"):
        out.write("\n")
    if reply and not reply_was_streamed(text, reply):
        if text.strip():
            out.flush()
            header = FINAL_HEADER
            if use_color(notes):
                header = f"\x1b[2m{header}\x1b[0m"
            notes.write(header + "\n")
            notes.flush()
        out.write(reply + "\n")
    out.flush()
