"""Shared plumbing for agents that wrap an agent CLI (Claude Code, Codex, Gemini CLI, ...).

A wrapper starts the CLI once per turn in its machine-readable streaming mode,
reads one JSON event per stdout line and translates events into the protocol:
streamed text becomes partials, the CLI's session id is named as soon as it
appears, an error event fails the turn. Everything around that is the same for
every CLI and lives here, so a wrapper is mostly its event table::

    from agentproc import create_profile
    from agentproc.wrap import Cli, CliTurn

    TOOL = Cli("Tool", "tool", install="npm install -g tool", env_prefix="TOOL")

    def on_event(turn, event):
        turn.session(event.get("session_id"))
        if event.get("type") == "text":
            turn.message(event["text"])

    def handle(ctx):
        turn = CliTurn(ctx, TOOL)
        return turn.run([TOOL.path(), "--json", "--", ctx.message], on_event)

    create_profile(handle)

What :meth:`CliTurn.run` does for every wrapper:

- reports a CLI that is not installed with the command that installs it;
- gives the CLI ``/dev/null`` (or the bytes it is handed) as stdin, never the
  wrapper's own stdin, which may be the bridge's permission channel;
- drains the CLI's stderr on a thread while stdout is read, passes it on to
  the wrapper's stderr (the bridge keeps its tail) and keeps the last
  :data:`STDERR_TAIL_BYTES` for the error message;
- fails the turn with the first error the CLI reported, else with its exit
  code and the end of its stderr;
- answers with the CLI's final text, or, when it gave none, with the last
  message it streamed.

Standard library only. It is not imported by ``import agentproc``, and it
imports :mod:`subprocess` and :mod:`threading` only when a CLI is started.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

from agentproc import wire
from agentproc._sdk import AgentResult, ProtocolError
from agentproc.wire import strip_ansi

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any

    from agentproc._sdk import Context
    from agentproc.wire import Attachment

    Event = dict[str, Any]

__all__ = [
    "FETCH_TIMEOUT_SECS",
    "MAX_ATTACHMENT_BYTES",
    "STDERR_TAIL_BYTES",
    "Cli",
    "CliTurn",
    "LocalFile",
    "describe_files",
    "fetch_attachments",
    "jsonl",
    "retry_note",
    "run_resuming",
    "stop",
    "strip_ansi",
]

#: How much of the end of a CLI's stderr is kept for the error message. The
#: useful part of a failure ("not logged in", a stack trace's last frame) is at
#: the end; 64 KiB is what the bridge itself keeps of an agent's stderr.
STDERR_TAIL_BYTES = 64 * 1024
#: Lines and characters of that tail quoted in a failed turn's message: enough
#: for an error and its cause, short enough for a chat message.
TAIL_LINES = 3
TAIL_CHARS = 400
#: A chat attachment is a photo or a document; a bigger download is refused
#: rather than filling the disk of the host the bridge runs on.
MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
#: Seconds for connecting to and reading from an attachment's server.
FETCH_TIMEOUT_SECS = 30.0
#: How long to wait for the stderr thread once the CLI has exited. A process the
#: CLI left behind may hold stderr open; the turn does not wait for it.
STDERR_JOIN_SECS = 1.0
#: Put between two messages of one turn in the streamed text (a CLI that works
#: in steps says something, uses a tool, says more).
MESSAGE_SEPARATOR = "\n\n"


def _warn(text: str) -> None:
    try:
        sys.stderr.write(f"agentproc.wrap: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass


class Cli:
    """How to find one agent CLI, and what to tell a user who does not have it.

    ``env_prefix`` names two optional variables a profile (or the bridge's
    environment, through ``env_allowlist``) may set: ``<PREFIX>_BIN``, the
    executable to run instead of ``executable`` found on PATH, and
    ``<PREFIX>_ARGS``, extra options (split like a shell would) put before
    the message, for a model or an approval setting. ``exit_reasons`` says
    what the CLI's own exit codes mean, for the message of a failed turn.
    """

    __slots__ = ("args_var", "bin_var", "executable", "exit_reasons", "install", "name")

    def __init__(
        self,
        name: str,
        executable: str,
        *,
        install: str,
        env_prefix: str,
        exit_reasons: Mapping[int, str] | None = None,
    ) -> None:
        self.name = name
        self.executable = executable
        self.install = install
        self.bin_var = f"{env_prefix}_BIN"
        self.args_var = f"{env_prefix}_ARGS"
        #: What the CLI's documented exit codes mean, in words for the chat.
        self.exit_reasons: Mapping[int, str] = dict(exit_reasons or {})

    def missing(self, executable: str) -> str:
        """The message for a CLI that cannot be found."""
        return (
            f"{self.name} is not installed here: `{executable}` was not found on PATH. "
            f"Install it with `{self.install}`, or set {self.bin_var} to its full path."
        )

    def path(self, environ: Mapping[str, str] | None = None) -> str:
        """The executable to start; ProtocolError with an install hint when there is none."""
        import shutil

        env = os.environ if environ is None else environ
        executable = env.get(self.bin_var) or self.executable
        found = shutil.which(executable, path=env.get("PATH", os.defpath))
        if found is None:
            raise ProtocolError(self.missing(executable))
        return found

    def extra_args(self, environ: Mapping[str, str] | None = None) -> list[str]:
        """The options in ``<PREFIX>_ARGS``, split like a shell would (no expansion)."""
        import shlex

        env = os.environ if environ is None else environ
        try:
            return shlex.split(env.get(self.args_var, ""))
        except ValueError as exc:
            raise ProtocolError(f"{self.args_var} cannot be split into options: {exc}") from None

    def __repr__(self) -> str:
        return f"Cli({self.name!r}, {self.executable!r})"


class LocalFile:
    """An attachment of the turn as a file on this machine, for a CLI that reads files."""

    __slots__ = ("attachment", "mime_type", "path")

    def __init__(self, attachment: Attachment, path: str, mime_type: str | None) -> None:
        self.attachment = attachment
        self.path = path
        self.mime_type = mime_type

    @property
    def type(self) -> str:
        """``image``, ``file``, ``audio`` or ``video``."""
        return self.attachment.type

    def read_bytes(self) -> bytes:
        with open(self.path, "rb") as fh:
            return fh.read()

    def __repr__(self) -> str:
        return f"LocalFile({self.type!r}, {self.path!r}, {self.mime_type!r})"


def _safe_name(name: str, index: int) -> str:
    """A file name made of harmless characters: no path, no comma, no leading dash."""
    kept = "".join(c if c.isalnum() or c in "._-" else "_" for c in os.path.basename(name))
    kept = kept.strip("._-")[:80] or "attachment"
    return f"{index}-{kept}"


def _copy_limited(source: Any, target: str, what: str) -> None:
    """Copy a readable binary stream to ``target``; refuse more than MAX_ATTACHMENT_BYTES."""
    total = 0
    with open(target, "wb") as out:
        while True:
            chunk = source.read(1024 * 1024)
            if not chunk:
                return
            total += len(chunk)
            if total > MAX_ATTACHMENT_BYTES:
                raise ProtocolError(
                    f"the attachment {what} is larger than "
                    f"{MAX_ATTACHMENT_BYTES // (1024 * 1024)} MiB; send a smaller file"
                )
            out.write(chunk)


def fetch_attachments(attachments: Iterable[Attachment], folder: str) -> list[LocalFile]:
    """Local copies of ``attachments`` in ``folder``, in order.

    ``http(s)://`` URLs are downloaded, ``file://`` URLs and absolute paths are
    copied (so a CLI limited to one extra folder can read them all). Anything
    that cannot be fetched fails the turn with a message naming the attachment.
    """
    import mimetypes
    import urllib.error
    import urllib.parse
    import urllib.request

    out: list[LocalFile] = []
    for index, att in enumerate(attachments, 1):
        parts = urllib.parse.urlsplit(att.url)
        name = att.name or urllib.parse.unquote(os.path.basename(parts.path)) or att.type
        target = os.path.join(folder, _safe_name(name, index))
        mime = att.mime_type
        try:
            if parts.scheme in ("http", "https"):
                request = urllib.request.Request(att.url, headers={"User-Agent": "agentproc"})
                with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECS) as response:
                    _copy_limited(response, target, name)
                    mime = mime or response.headers.get_content_type()
            elif parts.scheme == "file" or (not parts.scheme and att.url.startswith("/")):
                source = urllib.request.url2pathname(parts.path) if parts.scheme else att.url
                with open(source, "rb") as fh:
                    _copy_limited(fh, target, name)
            else:
                raise ProtocolError(
                    f"cannot fetch the attachment {att.url}: only http, https and file URLs "
                    "are supported"
                )
        except (OSError, urllib.error.URLError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
            raise ProtocolError(f"cannot fetch the attachment {att.url}: {reason}") from None
        if not mime or mime == "application/octet-stream":
            mime = mimetypes.guess_type(name)[0] or mime
        out.append(LocalFile(att, target, mime))
    return out


def describe_files(files: Iterable[LocalFile]) -> str:
    """A paragraph naming local copies of attachments, to append to a prompt."""
    lines = [f"- {f.path} ({f.type}{', ' + f.mime_type if f.mime_type else ''})" for f in files]
    if not lines:
        return ""
    return "\n\nAttached files (local copies you can read):\n" + "\n".join(lines)


def jsonl(*objects: object) -> bytes:
    """``objects`` as JSON lines, UTF-8: what a stream-json CLI reads on stdin."""
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects).encode("utf-8")


def _json_object(line: str) -> Event | None:
    """The JSON object on ``line``; None for a blank line or anything else."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def retry_note(
    *,
    status: object = None,
    attempt: object = None,
    max_attempts: object = None,
    delay_secs: object = None,
    what: str = "the model server",
) -> str:
    """A short line saying a CLI is waiting to retry, from whatever it told us.

    ``retry_note(status=529, attempt=2, max_attempts=10)`` is
    ``"retrying: the model server answered 529, attempt 2 of 10"``.
    """
    parts = ["retrying"]
    cause = f"{what} answered {status}" if status not in (None, "") else ""
    count = ""
    if isinstance(attempt, int) and not isinstance(attempt, bool):
        count = f"attempt {attempt}"
        if isinstance(max_attempts, int) and not isinstance(max_attempts, bool):
            count += f" of {max_attempts}"
    wait = ""
    if isinstance(delay_secs, (int, float)) and not isinstance(delay_secs, bool) and delay_secs > 0:
        wait = f"in {delay_secs:.0f} s" if delay_secs >= 1 else "shortly"
    detail = ", ".join(p for p in (cause, count, wait) if p)
    return f"{parts[0]}: {detail}" if detail else parts[0]


def _stderr_tail(data: bytes) -> str:
    text = wire.strip_ansi(data.decode("utf-8", "replace"))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    text = " | ".join(lines[-TAIL_LINES:])
    return text if len(text) <= TAIL_CHARS else "…" + text[-(TAIL_CHARS - 1) :]


class CliTurn:
    """One turn of a wrapped CLI: the reply being built, and the CLI's process.

    An event handler reports what the CLI said:

    - :meth:`session` the CLI's session id (sent to the bridge at once, so a turn
      that fails or times out later still keeps it);
    - :meth:`delta` a piece of the message being written;
    - :meth:`message` a whole message (streamed unless its pieces were);
    - :meth:`boundary` the current message is over (a tool call follows);
    - :meth:`final` the CLI's own final answer;
    - :meth:`fail` an error (the first one counts).

    and may talk back to the CLI with :meth:`send` and :meth:`close_stdin`.
    """

    def __init__(self, ctx: Context, cli: Cli) -> None:
        self.ctx = ctx
        self.cli = cli
        #: Free room for a wrapper's own bookkeeping during the turn.
        self.state: dict[str, Any] = {}
        self.session_id: str | None = None
        self.error: str | None = None
        self.final_text: str | None = None
        #: The last whole message of the turn: the answer when there is no final text.
        self.last_text = ""
        self._pieces: list[str] = []
        #: Whether the CLI's text has been streamed (the next message needs a separator).
        self._said = False
        self._after_status = False
        self._last_status = ""
        self._notes_before: list[str] = []
        self._notes_after: list[str] = []
        self._folder: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr = bytearray()

    # --- what the CLI said ----------------------------------------------------

    def session(self, value: object) -> None:
        """Name the CLI's session id to the bridge now; None and repeats are ignored."""
        if not isinstance(value, str) or not value or value == self.session_id:
            return
        session_id = wire.normalize_session_id(value)
        if session_id is None:
            _warn(f"ignoring the session id {value!r} of {self.cli.name}: {wire.SESSION_ID_RULE}")
            return
        if session_id != self.session_id:
            self.session_id = session_id
            self.ctx.send_session(session_id)

    def delta(self, text: object) -> None:
        """A piece of the message being written; streamed at once."""
        if not isinstance(text, str) or not text:
            return
        if (not self._pieces and self._said) or self._after_status:
            self._stream(MESSAGE_SEPARATOR)
            self._after_status = False
        self._pieces.append(text)
        self._stream(text)
        self._said = True

    def message(self, text: object = None) -> None:
        """A whole message. Its pieces, if :meth:`delta` streamed them, are not sent twice."""
        pieces = "".join(self._pieces)
        self._pieces = []
        if not isinstance(text, str) or not text:
            text = pieces
        elif not pieces:
            if self._said:
                self._stream(MESSAGE_SEPARATOR)
            self._after_status = False
            self._stream(text)
            self._said = True
        if text:
            self.last_text = text

    def boundary(self) -> None:
        """The message being streamed is over."""
        self.message()

    def final(self, text: object) -> None:
        """The CLI's final answer; empty or missing means it gave none."""
        if isinstance(text, str) and text.strip():
            self.final_text = text

    def fail(self, text: object) -> None:
        """The CLI reported an error; the turn fails with the first one."""
        if self.error is None:
            message = text.strip() if isinstance(text, str) else ""
            self.error = message or f"{self.cli.name} reported an error without a message"

    def note(self, text: str) -> None:
        """Tell the user something about the turn itself, in its own paragraph.

        A note made before the CLI said anything leads the reply (an attachment
        that could not be passed on); a later one ends it.
        """
        if self._said:
            self._stream(MESSAGE_SEPARATOR + text)
            self._notes_after.append(text)
        else:
            self._stream(text + MESSAGE_SEPARATOR)
            self._notes_before.append(text)

    def status(self, text: str) -> None:
        """Stream a short note about a wait (a retry, a reconnect) that is not the answer.

        The note is its own paragraph in the streamed text, in parentheses, and
        is left out of the final reply, as is the part of a message streamed
        before it (a CLI that retries writes its message again from the
        start): a chat that shows the final reply in place of the stream drops
        it, a terminal keeps it on screen. The same note twice in a row is
        streamed once.
        """
        text = " ".join(text.split())
        if not text or text == self._last_status:
            return
        self._last_status = text
        self._stream((MESSAGE_SEPARATOR if self._said else "") + f"({text})")
        self._said = True
        # A retry starts its message over: what was streamed of it stays on
        # screen but is not part of the reply, and the CLI's next text starts
        # a new paragraph.
        self._pieces = []
        self._after_status = True

    def stderr_text(self) -> str:
        """What the CLI wrote on stderr so far (its last :data:`STDERR_TAIL_BYTES`), plain."""
        return wire.strip_ansi(bytes(self._stderr[-STDERR_TAIL_BYTES:]).decode("utf-8", "replace"))

    def streamed(self) -> bool:
        """Whether anything (text, a note) has been streamed in this turn."""
        return self._said

    def reply(self) -> str:
        """The answer: the final text, else the last message; with any notes."""
        self.message()
        text = self.final_text if self.final_text is not None else self.last_text
        parts = [*self._notes_before, text, *self._notes_after]
        return MESSAGE_SEPARATOR.join(p for p in parts if p)

    def _stream(self, text: str) -> None:
        self.ctx.send_partial(text)

    # --- attachments ----------------------------------------------------------------

    def files(self) -> list[LocalFile]:
        """The turn's attachments as local files in :attr:`folder`; removed after the run."""
        if not self.ctx.attachments:
            return []
        return fetch_attachments(self.ctx.attachments, self.folder)

    @property
    def folder(self) -> str:
        """A private temporary folder for this turn, removed when the run ends."""
        if self._folder is None:
            import atexit
            import shutil
            import tempfile

            self._folder = tempfile.mkdtemp(prefix="agentproc-")
            atexit.register(shutil.rmtree, self._folder, True)
        return self._folder

    # --- the process ------------------------------------------------------------------

    def run(
        self,
        argv: list[str],
        on_event: Callable[[CliTurn, Any], None],
        *,
        stdin: bytes | None = None,
        keep_stdin: bool = False,
        json_lines: bool = True,
        on_exit: Callable[[CliTurn, int], None] | None = None,
    ) -> AgentResult:
        """Start ``argv``, hand each stdout event to ``on_event``, and return the reply.

        ``on_event(turn, event)`` gets each JSON object line, or with
        ``json_lines=False`` each line of text. ``stdin`` is written to the CLI
        (then closed, unless ``keep_stdin``: then :meth:`send` may write more
        and :meth:`close_stdin` ends it). ``on_exit(turn, exit_code)`` runs
        when the CLI has ended, before the reply is made: the place for what
        only the end can tell. Raises ProtocolError for a CLI that is missing,
        reported an error or exited with a non-zero code.
        """
        import subprocess
        import threading

        want_stdin = stdin is not None or keep_stdin
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if want_stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except FileNotFoundError:
            raise ProtocolError(self.cli.missing(argv[0])) from None
        except OSError as exc:
            raise ProtocolError(
                f"cannot start {self.cli.name} ({argv[0]}): {exc.strerror or exc}"
            ) from None
        self._proc = proc
        drain = threading.Thread(target=self._drain_stderr, name="cli-stderr", daemon=True)
        drain.start()
        writer: threading.Thread | None = None
        if stdin is not None:
            if keep_stdin:
                self._write(stdin)
            else:
                writer = threading.Thread(target=self._feed, args=(stdin,), daemon=True)
                writer.start()
        assert proc.stdout is not None
        finished = False
        try:
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if not json_lines:
                    on_event(self, line)
                    continue
                event = _json_object(line)
                if event is not None:
                    on_event(self, event)
                elif line.strip():
                    _warn(f"{self.cli.name} wrote a line that is not a JSON object: {line[:200]}")
            finished = True
        finally:
            self.close_stdin()
            if not finished and proc.poll() is None:
                _stop(proc)
            code = proc.wait()
            drain.join(STDERR_JOIN_SECS)
            if writer is not None:
                writer.join(STDERR_JOIN_SECS)
            self._proc = None
            if self._folder is not None:
                import shutil

                shutil.rmtree(self._folder, ignore_errors=True)
        if on_exit is not None:
            on_exit(self, code)
        return self._result(code)

    def send(self, event: Mapping[str, Any]) -> None:
        """Write one JSON line to the CLI's stdin (started with ``keep_stdin``)."""
        self._write((json.dumps(event, ensure_ascii=False) + "\n").encode("utf-8"))

    def close_stdin(self) -> None:
        """End the CLI's stdin; further :meth:`send` calls are dropped."""
        proc = self._proc
        if proc is not None and proc.stdin is not None and not proc.stdin.closed:
            with contextlib.suppress(OSError):
                proc.stdin.close()

    def _write(self, data: bytes) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.closed:
            return
        try:
            proc.stdin.write(data)
            proc.stdin.flush()
        except (OSError, ValueError):
            pass  # the CLI stopped reading; its exit code tells the rest

    def _feed(self, data: bytes) -> None:
        self._write(data)
        self.close_stdin()

    def _drain_stderr(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stderr is not None
        fd = proc.stderr.fileno()
        out = getattr(sys.stderr, "buffer", None)
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self._stderr += chunk
            if len(self._stderr) > 2 * STDERR_TAIL_BYTES:
                del self._stderr[:-STDERR_TAIL_BYTES]
            if out is not None:
                try:
                    out.write(chunk)
                    out.flush()
                except (OSError, ValueError):
                    out = None

    def _result(self, code: int) -> AgentResult:
        if self.error is not None:
            raise ProtocolError(self.error)
        if code != 0:
            if code < 0:
                what = f"{self.cli.name} was killed by signal {-code}"
            else:
                what = f"{self.cli.name} exited with code {code}"
                reason = self.cli.exit_reasons.get(code)
                if reason:
                    what += f" ({reason})"
            tail = _stderr_tail(bytes(self._stderr[-STDERR_TAIL_BYTES:]))
            raise ProtocolError(
                f"{what}; its stderr ends with: {tail}"
                if tail
                else f"{what} (it wrote nothing on stderr)"
            )
        return AgentResult(self.reply())


def run_resuming(
    ctx: Context,
    cli: Cli,
    argv: Callable[[CliTurn, str], list[str]],
    on_event: Callable[[CliTurn, Any], None],
    *,
    lost: Callable[[CliTurn, int], bool],
    on_exit: Callable[[CliTurn, int], None] | None = None,
    **run_options: Any,
) -> AgentResult:
    """Resume the conversation's CLI session, or start a fresh one when it is gone.

    A CLI keeps its sessions in its own store, often per project folder: a
    session id the bridge holds can stop working (the turn that made it failed
    before the CLI saved it, the conversation moved to another folder, the
    CLI's files were removed). Resuming it would then fail every later turn.
    ``argv(turn, session_id)`` builds the command line (``session_id`` empty
    for a new session); ``lost(turn, exit_code)`` tells, after a failed run,
    whether it failed because the session could not be found. Then, when the
    CLI streamed nothing, the turn is run again as a new session, and the
    reply opens with a note saying so, so nobody is surprised the agent
    forgot the conversation.
    """
    exit_code: list[int] = []

    def remember_exit(turn: CliTurn, code: int) -> None:
        exit_code.append(code)
        if on_exit is not None:
            on_exit(turn, code)

    turn = CliTurn(ctx, cli)
    try:
        return turn.run(argv(turn, ctx.session_id), on_event, on_exit=remember_exit, **run_options)
    except ProtocolError:
        code = exit_code[-1] if exit_code else -1
        if not ctx.session_id or turn.streamed() or not lost(turn, code):
            raise
    fresh = CliTurn(ctx, cli)
    fresh.note(
        f"(The earlier {cli.name} session {ctx.session_id} could not be resumed here, "
        "so this reply starts a new session: the agent does not remember the "
        "conversation before this message.)"
    )
    return fresh.run(argv(fresh, ""), on_event, on_exit=on_exit, **run_options)


def stop(turn: CliTurn) -> None:
    """End the CLI of a running turn now, for a wrapper that saw it loop.

    Some CLIs retry or ask again for ever when the model server misbehaves.
    Call :meth:`CliTurn.fail` first with what happened and the limit that was
    reached: the turn then fails with that message rather than with the exit
    code. The CLI gets SIGTERM, and SIGKILL two seconds later if it is still
    there; :meth:`CliTurn.run` reads what it wrote until then as usual.
    """
    import threading

    proc = turn._proc
    if proc is not None and proc.poll() is None:
        threading.Thread(target=_stop, args=(proc,), name="cli-stop", daemon=True).start()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the CLI, and kill it if it does not go within two seconds."""
    import subprocess

    try:
        proc.terminate()
        proc.wait(2)
    except subprocess.TimeoutExpired:
        proc.kill()
    except OSError:
        pass
