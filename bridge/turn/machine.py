"""The state machine of one turn: bytes in, typed events out, a result at the end.

This module does no I/O and knows nothing of processes or event loops. The
process layer feeds it the agent's stdout as it arrives and the way the process
ended; the state machine applies every rule about what the output means:
framing and line kinds (through :mod:`agentproc.wire`), the session rule,
post-error suppression, the reply caps and the exit-code precedence.

A turn's life::

    running --AGENT_ERROR--> errored --close--> closed
       \\------------------------------close--/

"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from itertools import repeat

from agentproc import wire

# --- events ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Partial:
    """A chunk of streamed text, to show the user now."""

    text: str


@dataclass(frozen=True, slots=True)
class SessionCaptured:
    """The agent named its session; the latest valid one is the turn's."""

    session_id: str


@dataclass(frozen=True, slots=True)
class ErrorReported:
    """The agent failed the turn with a message for the user (first one only)."""

    text: str


@dataclass(frozen=True, slots=True)
class TurnWarning:
    """Something in the agent's output was off but the turn goes on."""

    text: str


@dataclass(frozen=True, slots=True)
class PermissionRequested:
    """The agent asks to use a tool and waits for one response line on stdin.

    When ``deny_reason`` is set the answer is already decided (the request was
    unreadable, or came after the turn failed): deny it without asking anyone.
    """

    request: wire.PermissionRequest
    deny_reason: str | None = None


Event = Partial | SessionCaptured | ErrorReported | TurnWarning | PermissionRequested


# --- how the process ended -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcessExit:
    """What the process layer knows at the end: the process's own status
    (``returncode``, negative for a signal, as in :mod:`subprocess`), whether
    the bridge stopped it for a timeout or a cancel, and the tail of stderr."""

    returncode: int
    timed_out: bool = False
    cancelled: bool = False
    timeout_secs: float = 0.0
    stderr_tail: str = ""


# --- the result ------------------------------------------------------------------------

EXIT_TIMEOUT = 124
EXIT_CANCELLED = 130
EXIT_AGENT_ERROR = 1

GENERIC_AGENT_ERROR = "the agent reported an error without a message"

#: Warnings kept per turn. An agent printing a million bad lines should not make
#: a million warnings; the count of the rest is reported in one more line.
MAX_WARNINGS = 20

#: Put between the reply and the stderr tail with ``include_stderr_in_reply``.
STDERR_SEPARATOR = "--- stderr ---"

#: How much of stderr a failure message quotes: the last few lines, briefly.
STDERR_QUOTE_LINES = 3
STDERR_QUOTE_CHARS = 400


@dataclass(frozen=True, slots=True)
class TurnResult:
    """The outcome of one turn. ``--json`` prints these fields.

    ``reply`` is the body (the non-protocol lines). ``session_id`` is the id
    the agent named, or the id the turn started with when it named none, so a
    caller can always store it; ``session_captured`` says which. ``error`` is
    None on success, else a sentence for the user.
    """

    reply: str
    session_id: str
    error: str | None
    exit_code: int
    timed_out: bool = False
    cancelled: bool = False
    partials: list[str] = field(default_factory=list)
    duration_ms: int = 0
    session_captured: bool = False
    truncated: bool = False
    stderr: str = ""
    warnings: list[str] = field(default_factory=list)
    #: What the user can do about ``error``, when the bridge knows (spawn failures).
    hint: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        """What to show as the final answer: the body, or the streamed text
        when the agent printed no body."""
        return self.reply if self.reply else "".join(self.partials)

    def to_dict(self) -> dict[str, object]:
        return {
            "reply": self.reply,
            "session_id": self.session_id,
            "session_captured": self.session_captured,
            "error": self.error,
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "cancelled": self.cancelled,
            "partials": list(self.partials),
            "duration_ms": self.duration_ms,
            "truncated": self.truncated,
            "stderr": self.stderr,
            "warnings": list(self.warnings),
            "hint": self.hint,
        }


def failed_result(
    error: str, exit_code: int, *, session_id: str = "", hint: str = ""
) -> TurnResult:
    """A result for a turn that never ran (bad input, spawn failure)."""
    return TurnResult(reply="", session_id=session_id, error=error, exit_code=exit_code, hint=hint)


# --- the state machine ----------------------------------------------------------------------

#: A partial line whose payload starts as a JSON string.
_PARTIAL_STRING_START = wire.PREFIX_PARTIAL + '"'

RUNNING = "running"
ERRORED = "errored"
CLOSED = "closed"

_TRANSITIONS = {
    (RUNNING, "error"): ERRORED,
    (RUNNING, "close"): CLOSED,
    (ERRORED, "error"): ERRORED,
    (ERRORED, "close"): CLOSED,
}


class TurnStateError(RuntimeError):
    """A method was called in a state that does not allow it (a bug in the caller)."""


class Turn:
    """One turn's output rules. Feed stdout bytes with :meth:`feed`, call
    :meth:`end_of_output` at EOF, then :meth:`finish` with how the process ended.
    """

    def __init__(
        self,
        *,
        streaming: bool = True,
        max_reply_chars: int = 1_000_000,
        truncation_suffix: str = "\n\n…(truncated)",
        max_line_bytes: int = wire.DEFAULT_MAX_LINE_BYTES,
        session_id: str = "",
        include_stderr_in_reply: bool = False,
    ) -> None:
        if max_reply_chars < 1:
            raise ValueError("max_reply_chars must be at least 1")
        self.state = RUNNING
        self.include_stderr_in_reply = include_stderr_in_reply
        self.streaming = streaming
        self.max_reply_chars = max_reply_chars
        self.truncation_suffix = truncation_suffix
        self._framer = wire.LineFramer(max_line_bytes)
        self._reported_cuts = 0
        self._initial_session = session_id
        self.session_id: str | None = None
        self.error: str | None = None
        self._body: list[str] = []
        self._body_len = -1  # chars held, counting the "\n" joins; -1 = no line yet
        self.body_truncated = False
        self.partials: list[str] = []
        self._partial_len = 0
        self.partials_truncated = False
        self._requests = 0
        self.warnings: list[str] = []
        self._dropped_warnings = 0

    # -- transitions

    def _move(self, action: str) -> None:
        try:
            self.state = _TRANSITIONS[(self.state, action)]
        except KeyError:
            raise TurnStateError(f"cannot {action} a turn in state {self.state!r}") from None

    # -- input

    def feed(self, data: bytes) -> list[Event]:
        """Take the next bytes of stdout; return the events they produce."""
        if self.state == CLOSED:
            raise TurnStateError("cannot feed a turn in state 'closed'")
        return self._lines(self._framer.feed(data))

    def end_of_output(self) -> list[Event]:
        """stdout reached EOF (or was abandoned): handle an unfinished last line."""
        if self.state == CLOSED:
            raise TurnStateError("cannot end the output of a turn in state 'closed'")
        return self._lines(self._framer.close())

    def _lines(self, lines: list[str]) -> list[Event]:
        events: list[Event] = []
        if self._framer.cut_lines != self._reported_cuts:
            self._reported_cuts = self._framer.cut_lines
            self._warn(
                events,
                f"an output line was longer than {self._framer.max_line_bytes} bytes "
                "and was cut (max_line_bytes)",
            )
        # The loop below is the hot path of the bridge (a streaming agent sends
        # partials and body lines by the hundred thousand), so the two common
        # lines, body and a partial whose payload is a plain JSON string, are
        # handled inline on local copies of the counters. Everything else goes
        # through _line(), after which the locals are read again.
        scan = wire.string_payload
        partial_start = _PARTIAL_STRING_START
        offset = len(wire.PREFIX_PARTIAL)
        body, partials = self._body, self.partials
        cap = self.max_reply_chars
        take_body, take_partials, body_len, room = self._hot_state()
        if take_body and len(lines) > 1 and not any(map(str.startswith, lines, repeat("AGENT_"))):
            # A run of reply lines only (the common shape of a large body):
            # take them in bulk, up to the cap.
            n = len(lines)
            total = sum(map(len, lines)) + n
            if body_len + total <= cap:
                body.extend(lines)
                self._body_len = body_len + total
                return events
        for line in lines:
            if not line.startswith("AGENT_"):
                if take_body:
                    body_len += len(line) + 1
                    body.append(line)
                    if body_len > cap:
                        self.body_truncated = True
                        take_body = False
                continue
            if take_partials and line.startswith(partial_start):
                text = scan(line, offset)
                if text is not None and len(text) <= room:
                    if text:
                        room -= len(text)
                        partials.append(text)
                        events.append(Partial(text))
                    continue
            self._body_len, self._partial_len = body_len, cap - room
            self._line(line, events)
            take_body, take_partials, body_len, room = self._hot_state()
        self._body_len, self._partial_len = body_len, cap - room
        return events

    def _hot_state(self) -> tuple[bool, bool, int, int]:
        running = self.state == RUNNING
        return (
            running and not self.body_truncated,
            running and self.streaming and not self.partials_truncated,
            self._body_len,
            self.max_reply_chars - self._partial_len,
        )

    def _line(self, line: str, events: list[Event]) -> None:
        kind, payload = wire.classify(line)
        if kind == wire.BODY:
            if self.state == RUNNING:
                self._add_body(line)
        elif kind == wire.PARTIAL:
            if self.state == RUNNING and self.streaming:
                self._add_partial(payload, events)
        elif kind == wire.SESSION:
            self._session(payload, events)
        elif kind == wire.ERROR:
            self._error(payload, events)
        else:
            self._permission(payload, events)

    def _add_body(self, line: str) -> None:
        if self.body_truncated:
            return
        self._body_len += len(line) + 1
        self._body.append(line)
        if self._body_len > self.max_reply_chars:
            self.body_truncated = True

    def _add_partial(self, payload: str, events: list[Event]) -> None:
        text, ok = wire.decode_payload(payload)
        if not ok:
            self._warn(events, f"partial payload is not valid JSON, used as text: {payload[:80]!r}")
        if self.partials_truncated or not text:
            return
        self._partial_text(text, events)

    def _partial_text(self, text: str, events: list[Event]) -> None:
        room = self.max_reply_chars - self._partial_len
        if len(text) > room:
            text = text[:room] + self.truncation_suffix
            self.partials_truncated = True
            if not text:
                return
        self._partial_len += len(text)
        self.partials.append(text)
        events.append(Partial(text))

    def _session(self, payload: str, events: list[Event]) -> None:
        value = wire.normalize_session_id(payload)
        if value is None:
            self._warn(
                events, f"ignored an invalid session id {payload[:80]!r}: {wire.SESSION_ID_RULE}"
            )
            return
        self.session_id = value
        events.append(SessionCaptured(value))

    def _error(self, payload: str, events: list[Event]) -> None:
        if self.state != RUNNING:
            return
        text, ok = wire.decode_payload(payload)
        if not ok:
            self._warn(events, f"error payload is not valid JSON, used as text: {payload[:80]!r}")
        self._move("error")
        self.error = text or GENERIC_AGENT_ERROR
        events.append(ErrorReported(self.error))

    def _permission(self, payload: str, events: list[Event]) -> None:
        self._requests += 1
        fallback = str(self._requests)
        try:
            request = wire.PermissionRequest.from_payload(payload, fallback)
        except ValueError as exc:
            events.append(
                PermissionRequested(wire.PermissionRequest(fallback, "unknown"), f"denied: {exc}")
            )
            return
        if self.state != RUNNING:
            events.append(PermissionRequested(request, "denied: the turn has already failed"))
            return
        events.append(PermissionRequested(request))

    def _warn(self, events: list[Event], text: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(text)
            events.append(TurnWarning(text))
        else:
            self._dropped_warnings += 1

    # -- outcome

    @property
    def reply(self) -> str:
        """The body so far, capped, with the suffix when the cap cut it."""
        text = "\n".join(self._body)
        if len(text) > self.max_reply_chars:
            return text[: self.max_reply_chars] + self.truncation_suffix
        return text

    def finish(self, exit: ProcessExit) -> TurnResult:
        """Close the turn and compute its result from the output and the exit."""
        self._move("close")
        if exit.timed_out:
            code, error = EXIT_TIMEOUT, f"timed out after {_secs(exit.timeout_secs)} s"
        elif exit.cancelled:
            code, error = EXIT_CANCELLED, "cancelled"
        elif self.error is not None:
            code, error = EXIT_AGENT_ERROR, self.error
        elif exit.returncode < 0:
            code = 128 - exit.returncode
            error = (
                f"the agent was killed by signal {-exit.returncode} ({_signame(-exit.returncode)})"
            )
            error += _stderr_quote(exit.stderr_tail)
        elif exit.returncode > 0:
            code = exit.returncode
            error = f"the agent exited with code {code}" + _stderr_quote(exit.stderr_tail)
        else:
            code, error = 0, None
        reply = self.reply
        truncated = self.body_truncated or self.partials_truncated
        if code == 0 and self.include_stderr_in_reply and exit.stderr_tail.strip():
            reply, cut = self._with_stderr(exit.stderr_tail)
            truncated = truncated or cut
        warnings = list(self.warnings)
        if self._dropped_warnings:
            warnings.append(f"{self._dropped_warnings} more warnings were not kept")
        if code == 0 and not reply and not self.partials:
            warnings.append("the agent exited without printing a reply")
        return TurnResult(
            reply=reply,
            session_id=self.session_id if self.session_id is not None else self._initial_session,
            session_captured=self.session_id is not None,
            error=error,
            exit_code=code,
            timed_out=exit.timed_out,
            cancelled=exit.cancelled and not exit.timed_out,
            partials=self.partials,
            truncated=truncated,
            stderr=exit.stderr_tail,
            warnings=warnings,
        )

    def _with_stderr(self, tail: str) -> tuple[str, bool]:
        """The final answer (the body, else the streamed text) followed by the
        stderr tail, under the reply cap; and whether the cap cut it."""
        base = self.reply if self._body else "".join(self.partials)
        text = f"{base}\n{STDERR_SEPARATOR}\n" if base else f"{STDERR_SEPARATOR}\n"
        text += tail.rstrip("\n")
        if len(text) > self.max_reply_chars:
            return text[: self.max_reply_chars] + self.truncation_suffix, True
        return text, False


def _secs(value: float) -> str:
    return f"{value:g}"


def _signame(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _stderr_quote(tail: str) -> str:
    lines = [ln.strip() for ln in wire.strip_ansi(tail).splitlines() if ln.strip()]
    if not lines:
        return " (it wrote nothing on stderr)"
    quote = " | ".join(lines[-STDERR_QUOTE_LINES:])
    if len(quote) > STDERR_QUOTE_CHARS:
        quote = "…" + quote[-(STDERR_QUOTE_CHARS - 1) :]
    return f"; its stderr ends with: {quote}"
