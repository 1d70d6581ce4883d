"""The agent side: turn one handler function into an agent that speaks the protocol.

A turn is one run of the process. :func:`create_profile` wraps a handler; when
it is called from the program being run (``__name__ == "__main__"``) it runs the
turn at once and exits, so a five-line ``agent.py`` is a complete agent::

    from agentproc import create_profile

    def handle(ctx):
        return f"You said: {ctx.message}"

    create_profile(handle)

Every line goes out through :mod:`agentproc.wire`; this module only decides
*when* a line is written. It is imported on every turn, so it stays cheap:
``asyncio`` is imported only for an async handler, ``json`` only when a payload
needs it, and nothing here pulls in typing, dataclasses, inspect or enum.
"""

from __future__ import annotations

import os
import sys

from agentproc import wire

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
    from types import FrameType
    from typing import IO, Any, NoReturn, TypeAlias

    from agentproc.wire import Attachment, PermissionDecision

    Reply: TypeAlias = "str | AgentResult | None"
    Handler: TypeAlias = "Callable[[Context], Reply | Awaitable[Reply]]"

# Exit codes of a turn, as a shell would report them.
EXIT_OK = 0
EXIT_FAILED = 1
#: 128 + SIGINT: the turn was interrupted (Ctrl-C, or the bridge cancelled it).
EXIT_INTERRUPTED = 130
#: 128 + SIGTERM: the bridge stopped the turn (timeout or cancel).
EXIT_TERMINATED = 143

#: Longest handler error message put on the one-line failure report.
MAX_FAILURE_DETAIL = 300

NO_PERMISSION_CHANNEL = (
    "this profile has no permission channel (set `permission: true` in the profile "
    "to let the agent ask before using a tool)"
)


class ProtocolError(Exception):
    """Raise from a handler to fail the turn with a message for the user.

    The SDK writes it as the turn's error line and exits with code 1. Any other
    exception is treated as a bug in the agent: a short note goes to stderr and
    the user sees a generic failure.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = str(message)


class AgentResult:
    """A reply plus the agent's own session id.

    Return it instead of a plain string when the agent keeps its own session
    (for example an agent CLI's conversation id), so the bridge hands that id
    back as ``ctx.session_id`` on the conversation's next turn. ``session_id``
    None or empty sends no session line.
    """

    __slots__ = ("response", "session_id")

    def __init__(self, response: str | None = None, session_id: str | None = None) -> None:
        if response is not None and not isinstance(response, str):
            raise TypeError(
                f"AgentResult response must be a str or None, not {type(response).__name__}"
            )
        if session_id is not None and not isinstance(session_id, str):
            raise TypeError(
                f"AgentResult session_id must be a str or None, not {type(session_id).__name__}"
            )
        self.response = response
        self.session_id = session_id

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AgentResult):
            return NotImplemented
        return (self.response, self.session_id) == (other.response, other.session_id)

    def __hash__(self) -> int:
        return hash((self.response, self.session_id))

    def __repr__(self) -> str:
        return f"AgentResult(response={self.response!r}, session_id={self.session_id!r})"


# --- output -----------------------------------------------------------------------


def _encode(text: str) -> bytes:
    """UTF-8 bytes of ``text``; never raises.

    ``surrogateescape`` gives back the exact bytes of a non-UTF-8 environment
    value (Python decodes those with it); any other lone surrogate becomes ``?``.
    """
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _warn(message: str) -> None:
    """One note on stderr for the person running the agent; never raises."""
    stream = sys.stderr
    if stream is None:
        return
    try:
        stream.write(f"agentproc: {message}\n")
        stream.flush()
    except (OSError, ValueError):
        pass


def _flush_quietly(stream: object) -> None:
    # Not contextlib.suppress: contextlib is an import every turn would pay for.
    try:  # noqa: SIM105
        stream.flush()  # type: ignore[attr-defined]
    except Exception:
        pass


class _Output:
    """Writes protocol lines to a text stream's binary buffer, whole and flushed.

    A handler's own ``print()`` output waits in the text layer's buffer, so that
    is flushed first: both kinds of output reach the reader in the order they
    were written. A stream without a binary buffer (``io.StringIO``) gets text.
    If the reader has gone away the output is marked closed and later writes
    are dropped instead of raising inside the handler.
    """

    __slots__ = ("_binary", "_text", "closed")

    def __init__(self, stream: IO[str] | None) -> None:
        self._text = stream
        self._binary: IO[bytes] | None = getattr(stream, "buffer", None)
        self.closed = stream is None

    def write_lines(self, lines: Iterable[str]) -> bool:
        """Write each line plus ``\\n``; False when the output is closed."""
        data = "".join([line + "\n" for line in lines])
        if self.closed or self._text is None:
            return False
        if not data:
            return True
        try:
            self._text.flush()
            if self._binary is not None:
                self._binary.write(_encode(data))
                self._binary.flush()
            else:
                self._text.write(data)
                self._text.flush()
        except (OSError, ValueError):
            self.closed = True
            return False
        return True


def _readline(stream: IO[str] | None) -> bytes:
    """One line from ``stream`` as bytes; ``b""`` at EOF or when it cannot be read."""
    if stream is None:
        return b""
    try:
        binary = getattr(stream, "buffer", None)
        if binary is not None:
            line: bytes = binary.readline()
            return line
        return stream.readline().encode("utf-8", "replace")
    except (OSError, ValueError):
        return b""


class _Done:
    """What ``send_partial`` and ``send_error`` return: awaiting it does nothing.

    The line is written when the method is called, so a sync handler can ignore
    the result and an async handler can ``await`` it; both behave the same.
    """

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return
        yield  # pragma: no cover - makes this a generator

    def __repr__(self) -> str:
        return "<agentproc: sent>"


_DONE = _Done()


# --- the context ------------------------------------------------------------------


class Context:
    """One turn, as the bridge handed it over, plus the ways to talk back.

    Fields come from the ``AGENT_*`` environment variables, with defaults that
    make an agent easy to run by hand (``AGENT_MESSAGE=hi python3 agent.py``):
    a missing variable is an empty string (``image_url`` and ``file_url``
    included), ``session_name`` is ``"default"``, ``streaming`` is on,
    ``attachments`` is an empty list and ``permission`` is off.
    """

    __slots__ = (
        "_attachments",
        "_buffered",
        "_error_sent",
        "_message",
        "_next_request_id",
        "_out",
        "_stdin",
        "environ",
        "file_url",
        "from_user",
        "image_url",
        "permission",
        "protocol_version",
        "session_id",
        "session_name",
        "streaming",
    )

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        stdout: IO[str] | None = None,
        stdin: IO[str] | None = None,
    ) -> None:
        """Read the turn from ``environ`` (default ``os.environ``).

        ``stdout`` and ``stdin`` default to ``sys.stdout`` and ``sys.stdin`` as
        they are now; their binary buffers are used when they have one.
        """
        env: Mapping[str, str] = os.environ if environ is None else environ
        self.environ = env
        self.session_id = env.get(wire.ENV_SESSION_ID, "")
        self.session_name = env.get(wire.ENV_SESSION_NAME) or wire.DEFAULT_SESSION_NAME
        self.from_user = env.get(wire.ENV_FROM_USER, "")
        self.streaming = env.get(wire.ENV_STREAMING) != "0"
        self.protocol_version = env.get(wire.ENV_PROTOCOL_VERSION, "")
        self.image_url = env.get(wire.ENV_IMAGE_URL, "")
        self.file_url = env.get(wire.ENV_FILE_URL, "")
        self.permission = env.get(wire.ENV_PERMISSION) == "1"
        self._out = _Output(sys.stdout if stdout is None else stdout)
        self._stdin = sys.stdin if stdin is None else stdin
        self._message: str | None = None
        self._attachments: list[Attachment] | None = None
        self._buffered: list[str] = []
        self._error_sent = False
        self._next_request_id = 0

    @property
    def message(self) -> str:
        """The user's message; empty when there is none.

        When the message is too large for the environment the bridge sets
        ``AGENT_MESSAGE_ON_STDIN=1`` (and leaves ``AGENT_MESSAGE`` out): the
        message is then read from stdin, once, on first use. A bridge that
        leaves ``AGENT_MESSAGE`` out without the flag is read the same way.
        Without a bridge (no ``AGENT_PROTOCOL_VERSION``, no flag) or with the
        permission channel on, stdin is never read for it, so running by hand
        cannot hang.
        """
        if self._message is None:
            self._message = self._read_message()
        return self._message

    def _read_message(self) -> str:
        on_stdin = self.environ.get(wire.ENV_MESSAGE_ON_STDIN) == "1"
        value = self.environ.get(wire.ENV_MESSAGE)
        if value is not None and not on_stdin:
            return value
        if self.permission or self._stdin is None:
            return value or ""
        if not on_stdin and not self.protocol_version:
            return ""
        try:
            if self._stdin.isatty():
                return value or ""
            binary = getattr(self._stdin, "buffer", None)
            if binary is not None:
                data: bytes = binary.read()
                return data.decode("utf-8", "replace")
            return self._stdin.read()
        except (OSError, ValueError):
            return value or ""

    @property
    def attachments(self) -> list[Attachment]:
        """The turn's attachments; ``[]`` when unset or unreadable (parsed on first use)."""
        if self._attachments is None:
            self._attachments = wire.decode_attachments(self.environ.get(wire.ENV_ATTACHMENTS))
        return self._attachments

    @property
    def error_sent(self) -> bool:
        """True once :meth:`send_error` was called; the turn then exits with code 1."""
        return self._error_sent

    def send_partial(self, text: str) -> _Done:
        """Stream a chunk of the reply to the user now.

        With streaming off the bridge would ignore the line, so nothing is
        written; the text is kept and becomes the reply if the handler returns
        None. Works with or without ``await``.
        """
        text = text if isinstance(text, str) else str(text)
        if self.streaming:
            self._out.write_lines([wire.partial_line(text)])
        else:
            self._buffered.append(text)
        return _DONE

    def send_session(self, session_id: str) -> _Done:
        """Name the agent's session now, before the reply is done, so the bridge
        keeps it even if the turn later fails or is cut off. An invalid id is
        not written (a warning goes to stderr). Works with or without ``await``.
        """
        value = wire.normalize_session_id(session_id) if isinstance(session_id, str) else None
        if value is None:
            _warn(f"ignoring invalid session id {session_id!r}: {wire.SESSION_ID_RULE}")
        else:
            self._out.write_lines([wire.session_line(value)])
        return _DONE

    def send_error(self, text: str) -> _Done:
        """Fail the turn with ``text`` for the user; the handler keeps running.

        The bridge discards partials and body that come after the error, but a
        session id returned later still counts. The process exits with code 1.
        Works with or without ``await``.
        """
        text = text if isinstance(text, str) else str(text)
        self._error_sent = True
        self._out.write_lines([wire.error_line(text)])
        return _DONE

    def request_permission(
        self,
        tool: str,
        input: Mapping[str, object] | None = None,
        description: str = "",
        *,
        tool_use_id: str = "",
    ) -> PermissionDecision:
        """Ask the user whether the agent may use ``tool``; blocks until answered.

        ``input`` is the tool's arguments (shown to the person), ``description``
        one line about it, ``tool_use_id`` the wrapped CLI's own id of the call.
        Writes one permission request line (the wire's ``request_id``,
        ``tool_name``, ``input``, ... plus the short ``id`` and ``tool``) and
        reads the one answer line from stdin, in either shape (``behavior`` or
        ``allow``). Anything that is not a readable answer (EOF, a garbled
        line) is a denial whose ``message`` says why, so a caller only has to
        check ``decision.allow``. Without a permission channel the request is
        denied at once. The decision works with or without ``await``.
        """
        if not self.permission:
            return wire.PermissionDecision(False, None, NO_PERMISSION_CHANNEL)
        if not isinstance(tool, str) or not tool:
            raise ValueError("request_permission needs a non-empty tool name")
        if input is not None and not hasattr(input, "keys"):
            raise TypeError(
                f"request_permission input must be a dict of the tool's arguments, "
                f"not {type(input).__name__}"
            )
        if not isinstance(tool_use_id, str):
            raise TypeError("request_permission tool_use_id must be a str")
        self._next_request_id += 1
        request = wire.PermissionRequest(
            str(self._next_request_id),
            tool,
            dict(input) if input is not None else None,
            description if isinstance(description, str) else str(description),
            tool_use_id,
        )
        if not self._out.write_lines([wire.permission_request_line(request.to_dict())]):
            return wire.PermissionDecision(
                False, None, "could not send the permission request: stdout is closed"
            )
        raw = _readline(self._stdin)
        if not raw:
            return wire.PermissionDecision(
                False, None, "no permission response: stdin was closed before an answer came"
            )
        line = raw.decode("utf-8", "replace")
        line = line.removesuffix("\n").removesuffix("\r")
        if not line.startswith(wire.PREFIX_PERMISSION_RESPONSE):
            return wire.PermissionDecision(
                False,
                None,
                "unreadable permission response: expected a line starting with "
                + wire.PREFIX_PERMISSION_RESPONSE,
            )
        return wire.PermissionDecision.from_payload(line[len(wire.PREFIX_PERMISSION_RESPONSE) :])

    def __repr__(self) -> str:
        # Not self.message: a repr must not read stdin.
        message = (
            self._message if self._message is not None else self.environ.get(wire.ENV_MESSAGE, "")
        )
        return (
            f"Context(message={message!r}, session_id={self.session_id!r}, "
            f"session_name={self.session_name!r}, from_user={self.from_user!r}, "
            f"streaming={self.streaming!r})"
        )


# --- running a turn ----------------------------------------------------------------


async def _await(awaitable: Awaitable[object]) -> object:
    return await awaitable


def _run_awaitable(awaitable: Awaitable[object]) -> object:
    """Drive an async handler's result to completion on a fresh event loop."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_await(awaitable))
    # Called from inside a running loop (``invoke()`` in an async test):
    # asyncio.run refuses, so the handler gets a loop of its own on a thread.
    import threading

    outcome: list[object] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(asyncio.run(_await(awaitable)))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name="agentproc-handler")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


def _report_failure(exc: BaseException, environ: Mapping[str, str]) -> None:
    """Say on stderr that the handler crashed: one line, or the traceback when debugging."""
    name = type(exc).__name__
    if environ.get(wire.ENV_DEBUG) == "1":
        import traceback

        text = "".join(traceback.format_exception(exc)).rstrip("\n")
        _warn(f"handler failed: {name}\n{text}")
        return
    detail = " ".join(str(exc).split())
    if len(detail) > MAX_FAILURE_DETAIL:
        detail = detail[: MAX_FAILURE_DETAIL - 1] + "…"
    head = f"{name}: {detail}" if detail else name
    _warn(f"handler failed: {head} (set {wire.ENV_DEBUG}=1 to see the traceback)")


def _exit_code(exc: SystemExit, failed: bool) -> int:
    """The exit code ``sys.exit(...)`` inside a handler asked for."""
    code = exc.code
    if code is None:
        number = 0
    elif isinstance(code, int):
        number = code
    else:
        _warn(str(code))
        number = 1
    return number or (EXIT_FAILED if failed else EXIT_OK)


def _reply_lines(reply: object, ctx: Context) -> list[str] | None:
    """The lines a handler's return value stands for; None when it is not a reply."""
    lines: list[str] = []
    if isinstance(reply, AgentResult):
        if reply.session_id:
            session_id = wire.normalize_session_id(reply.session_id)
            if session_id is None:
                _warn(f"ignoring invalid session id {reply.session_id!r}: {wire.SESSION_ID_RULE}")
            else:
                lines.append(wire.session_line(session_id))
        text = reply.response
    elif reply is None or isinstance(reply, str):
        text = reply
    else:
        _warn(
            f"the handler returned {type(reply).__name__}; return a str (the reply), "
            "an AgentResult (a reply and a session id) or None (no reply)"
        )
        return None
    if text is None and ctx._buffered:
        # Streaming was off, so the partials were kept back: they are the reply.
        text = "".join(ctx._buffered)
    if text:
        lines.extend(wire.render_body(text))
    return lines


def _run_turn(handler: Handler, ctx: Context) -> int:
    """Run the handler once against ``ctx``, write what it returned, give the exit code."""
    try:
        try:
            reply: object = handler(ctx)
            if hasattr(reply, "__await__"):
                reply = _run_awaitable(reply)
        except ProtocolError as exc:
            ctx._error_sent = True
            ctx._out.write_lines([wire.error_line(exc.message)])
            return EXIT_FAILED
        except SystemExit as exc:
            return _exit_code(exc, ctx._error_sent)
        except Exception as exc:
            _report_failure(exc, ctx.environ)
            return EXIT_FAILED
        lines = _reply_lines(reply, ctx)
        if lines is None:
            return EXIT_FAILED
        ctx._out.write_lines(lines)
        return EXIT_FAILED if ctx._error_sent else EXIT_OK
    except KeyboardInterrupt:
        _flush_quietly(sys.stdout)
        _warn("interrupted")
        return EXIT_INTERRUPTED


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Stop now: keep what was written, skip cleanup that could stall the exit."""
    _flush_quietly(sys.stdout)
    _flush_quietly(sys.stderr)
    os._exit(EXIT_TERMINATED)


def _signal_module() -> Any:
    """CPython's ``_signal``, loaded at start-up; ``signal`` itself would import
    ``enum`` (a few milliseconds on every turn) only to wrap the same functions."""
    return sys.modules.get("_signal") or __import__("signal")


def _install_sigterm() -> Callable[[], None]:
    """Handle SIGTERM while a turn runs; return the function that undoes it."""
    sig = _signal_module()
    try:
        previous = sig.signal(sig.SIGTERM, _on_sigterm)
    except (AttributeError, OSError, ValueError):
        # No SIGTERM on this platform, or not the main thread: nothing to undo.
        return lambda: None

    def restore() -> None:
        try:  # noqa: SIM105 - no contextlib, see _flush_quietly
            sig.signal(sig.SIGTERM, previous if previous is not None else sig.SIG_DFL)
        except (OSError, ValueError):
            pass

    return restore


class Invocation:
    """The captured outcome of :meth:`Agent.invoke`.

    ``lines`` are the output lines as the bridge would frame them (split on
    ``\\n``, one trailing ``\\r`` dropped, no length cap); ``stdout`` the raw
    bytes, ``stderr`` the text, ``exit_code`` what the process would exit with.
    ``body``, ``partials``, ``errors`` and ``session_id`` sort the lines by kind
    without applying the bridge's turn rules.
    """

    __slots__ = ("exit_code", "lines", "stderr", "stdout")

    def __init__(self, stdout: bytes, stderr: str, exit_code: int) -> None:
        framer = wire.LineFramer(max(len(stdout), 1))
        self.stdout = stdout
        self.lines = framer.feed(stdout) + framer.close()
        self.stderr = stderr
        self.exit_code = exit_code

    def _payloads(self, kind: str) -> list[str]:
        out = []
        for line in self.lines:
            line_kind, payload = wire.classify(line)
            if line_kind == kind:
                out.append(payload)
        return out

    @property
    def body(self) -> str:
        """The body lines joined with ``\\n``."""
        return "\n".join(self._payloads(wire.BODY))

    @property
    def partials(self) -> list[str]:
        """The decoded text of every partial line, in order."""
        return [wire.decode_payload(p)[0] for p in self._payloads(wire.PARTIAL)]

    @property
    def errors(self) -> list[str]:
        """The decoded text of every error line, in order."""
        return [wire.decode_payload(p)[0] for p in self._payloads(wire.ERROR)]

    @property
    def session_id(self) -> str | None:
        """The last valid session id written, if any."""
        found = None
        for payload in self._payloads(wire.SESSION):
            found = wire.normalize_session_id(payload) or found
        return found

    def __repr__(self) -> str:
        return f"Invocation(exit_code={self.exit_code!r}, lines={self.lines!r})"


class Agent:
    """A handler made runnable as an agent; what :func:`create_profile` returns.

    ``run()`` does one turn against the real process streams; ``invoke()``
    does one in-process and captures the output, for tests. Calling the agent
    calls the handler, so a decorated function stays usable directly.
    """

    __slots__ = ("handler",)

    def __init__(self, handler: Handler) -> None:
        if not callable(handler):
            raise TypeError(f"create_profile needs a function, not {type(handler).__name__}")
        self.handler = handler

    def __call__(self, ctx: Context) -> Reply | Awaitable[Reply]:
        return self.handler(ctx)

    def run(self, environ: Mapping[str, str] | None = None) -> int:
        """Run one turn on ``sys.stdout``/``sys.stdin`` and return the exit code.

        While it runs, SIGTERM flushes what was written and exits with 143 at
        once, so a bridge stopping the turn keeps the partials already sent.
        """
        restore = _install_sigterm()
        try:
            return _run_turn(self.handler, Context(environ))
        finally:
            restore()

    def main(self) -> NoReturn:
        """Run one turn and exit the process with its exit code."""
        sys.exit(self.run())

    def invoke(
        self,
        message: str = "",
        *,
        session_id: str = "",
        session_name: str = wire.DEFAULT_SESSION_NAME,
        from_user: str = "",
        streaming: bool = True,
        attachments: Iterable[Attachment] = (),
        stdin: str | bytes | None = None,
        permission: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> Invocation:
        """Run one turn in this process, as the bridge would, and capture it.

        The environment is this process's, minus any ``AGENT_*`` turn
        variables, plus ``env`` (like a profile's ``env``), plus the turn's
        variables built from the arguments. ``stdin`` is what the agent reads
        (permission answers); empty by default. ``sys.stdin``, ``sys.stdout``
        and ``sys.stderr`` are swapped for the call, so it is not thread-safe.
        """
        import io

        environ = {k: v for k, v in os.environ.items() if k not in wire.TURN_ENV_VARS}
        if env:
            environ.update(env)
        environ.update(
            wire.turn_env(
                message,
                session_id=session_id,
                session_name=session_name,
                from_user=from_user,
                streaming=streaming,
                attachments=attachments,
                permission=permission,
            )
        )
        data = stdin.encode("utf-8") if isinstance(stdin, str) else (stdin or b"")
        out_bytes = io.BytesIO()
        fake_out = io.TextIOWrapper(
            out_bytes, encoding="utf-8", errors="surrogateescape", newline="", write_through=True
        )
        fake_err = io.StringIO()
        fake_in = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace")
        saved = sys.stdin, sys.stdout, sys.stderr
        sys.stdin, sys.stdout, sys.stderr = fake_in, fake_out, fake_err
        try:
            code = _run_turn(self.handler, Context(environ))
        finally:
            sys.stdin, sys.stdout, sys.stderr = saved
            _flush_quietly(fake_out)
        return Invocation(out_bytes.getvalue(), fake_err.getvalue(), code)

    def __repr__(self) -> str:
        name = getattr(self.handler, "__qualname__", None) or repr(self.handler)
        return f"<Agent {name}>"


def _called_as_program(caller_globals: Mapping[str, object]) -> bool:
    """True when the caller is the script being run, not an import or a REPL."""
    if caller_globals.get("__name__") != "__main__":
        return False
    # The REPL, IPython and notebooks are "__main__" too; running a turn there
    # would exit the user's session.
    import builtins

    return not hasattr(sys, "ps1") and not getattr(builtins, "__IPYTHON__", False)


def create_profile(handler: Handler) -> Agent:
    """Make ``handler`` an agent; run it now if the caller is the program being run.

    ``handler(ctx)`` gets a :class:`Context` and returns a ``str`` (the reply),
    an :class:`AgentResult` (reply and session id) or None (no reply); it may
    be ``async``. Called from a script's top level (or used as a decorator
    there), this runs one turn and exits with its code, so the script is the
    agent. Called from a module that is imported (a test), it only returns the
    :class:`Agent`.
    """
    agent = Agent(handler)
    if _called_as_program(sys._getframe(1).f_globals):
        agent.main()
    return agent
