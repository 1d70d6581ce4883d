"""opencode behind agentproc: one `opencode run --format=json` run per turn.

The message goes to the CLI's stdin (no message argument), so it is never read as
an option. Each finished text part is streamed as a partial, the `sessionID`
every event carries is the session, and `--session` continues it. Attachments
are passed with `--file`. What opencode 1.18 does not say in its JSON events is
read from its log lines on stderr (`--print-logs`): a model call that failed and
is being retried. See README.md.
"""

import json
import os
import re
import threading

from agentproc import ProtocolError, create_profile
from agentproc.wrap import Cli, CliTurn, stop

OPENCODE = Cli(
    "opencode",
    "opencode",
    install="npm install -g opencode-ai",
    env_prefix="OPENCODE",
)

#: A step that ends without a finish reason (the model server closed its stream
#: early) makes opencode 1.18 ask the model again at once, for ever. After this
#: many such steps in a row the turn is stopped.
MAX_UNFINISHED_STEPS = 3
#: How often the log lines on stderr are looked at for retries, in seconds.
RETRY_POLL_SECS = 0.3
#: How long a failed model call must stay the last thing opencode logged before
#: it counts as a retry being waited for (a failure opencode gives up on is
#: followed by the turn's end within milliseconds).
SETTLE_SECS = 0.25
#: Finish reasons of a step that ended properly (the AI SDK's names).
FINISHED = {"stop", "tool-calls", "length", "content-filter"}

#: `permission requested: bash (echo hi); auto-rejecting`, on stderr.
PERMISSION_LINE = re.compile(r"permission requested: (.+?); auto-rejecting")
#: One log line of `--print-logs`: `timestamp=... level=... message=...`.
LOG_LINE = re.compile(r"^timestamp=(\S+) level=\w+ ")
LOG_MESSAGE = re.compile(r' message=(?:"([^"]*)"|(\S+))')
LOG_ERROR = re.compile(r' error\.error="((?:[^"\\]|\\.)*)"')


# --- messages -------------------------------------------------------------------


def _message_in(value):
    """The human message inside a decoded JSON error body, or None."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        return _message_in(value[0])
    if isinstance(value, dict):
        for key in ("message", "error", "detail", "msg", "error_description"):
            found = _message_in(value.get(key))
            if found:
                return found
    return None


def plain_message(text):
    """``text`` with error bodies unwrapped: a message that is itself JSON (a
    proxy that passes the upstream error on) becomes the message inside it."""
    text = text.strip() if isinstance(text, str) else ""
    for _ in range(5):  # JSON inside JSON inside JSON, but not for ever
        start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
        if start < 0:
            break
        try:
            value = json.loads(text[start:])
        except ValueError:
            break
        inner = _message_in(value)
        if not inner:
            break
        prefix = text[:start].rstrip(" :")
        text = f"{prefix}: {inner.strip()}" if prefix else inner.strip()
    return text


def log_error_text(raw):
    """The error of a `stream error` log line, readable: no class name, no hints."""
    text = raw.replace('\\"', '"')
    text = re.sub(r"^\w*Error: ", "", text)
    for noise in (" For more information", " (cause:"):
        text = text.split(noise, 1)[0]
    return plain_message(text).rstrip(".") or "an error"


def log_time(line):
    """The time of a log line in seconds since the epoch, or None."""
    import datetime

    found = LOG_LINE.match(line)
    try:
        stamp = datetime.datetime.fromisoformat(found.group(1).replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None
    return stamp.timestamp()


def retry_from_logs(stderr, now=None):
    """``(attempt, cause)`` while opencode waits to call the model again after a
    failed call, or makes that call; else None.

    opencode logs `stream` when it calls the model and `stream error` when the
    call failed. A failure it gives up on is followed at once by the turn's end
    (`process` with an error, or `exiting loop`); one that it will retry is
    followed by nothing until the wait is over. So a `stream error` with
    nothing after it for :data:`SETTLE_SECS` is a retry being waited for.
    """
    import time

    now = time.time() if now is None else now
    errors = 0
    cause = ""
    in_flight = False
    last = ""
    last_time = None
    for line in stderr.splitlines():
        if not LOG_LINE.match(line) or " small=true" in line:
            continue  # not a log line, or the title agent's call
        found = LOG_MESSAGE.search(line)
        message = (found.group(1) or found.group(2)) if found else ""
        if message == "stream error":
            errors += 1
            in_flight = False
            error = LOG_ERROR.search(line)
            cause = log_error_text(error.group(1)) if error else "an error"
        elif message == "stream":
            if in_flight:
                errors = 0  # the call before this one went through
            in_flight = True
        elif message == "exiting loop" or (message == "process" and " error=" in line):
            errors, in_flight = 0, False  # the turn is over, or opencode gave up
        else:
            continue
        last, last_time = message, log_time(line)
    if not errors:
        return None
    if last == "stream error" and (last_time is None or now - last_time < SETTLE_SECS):
        return None  # it may be giving up: wait for what comes next
    if last not in ("stream", "stream error"):
        return None
    return (errors + 1, cause)


def retries_made(stderr):
    """``(retries, cause)``: how many failed model calls opencode made again in
    this run, by its whole log, and why the last one failed ("" when its log
    gave no reason).

    A failed call is a `stream error`, or a `stream` followed by another
    `stream` with no `loop` step between: the model library can retry a call
    cut before its first chunk on its own, and opencode then logs no error.
    """
    retries = 0
    cause = ""
    failed = False
    in_flight = False
    for line in stderr.splitlines():
        if not LOG_LINE.match(line) or " small=true" in line:
            continue
        found = LOG_MESSAGE.search(line)
        message = (found.group(1) or found.group(2)) if found else ""
        if message == "stream error":
            failed = True
            error = LOG_ERROR.search(line)
            cause = log_error_text(error.group(1)) if error else "an error"
        elif message == "stream":
            if failed or in_flight:
                retries += 1
                if not failed:
                    cause = ""
            failed = False
            in_flight = True
        elif message == "loop":
            in_flight = False  # the call before went through: a new step begins
    return retries, cause


def log_free(stderr):
    """The lines of ``stderr`` that are not opencode's own log lines."""
    return [ln.strip() for ln in stderr.splitlines() if ln.strip() and not LOG_LINE.match(ln)]


# --- sessions and their folders --------------------------------------------------


def folders_dir():
    home = os.path.expanduser(os.environ.get("AGENTPROC_HOME") or "~/.agentproc")
    return os.path.join(home, "opencode", "sessions")


def remember_folder(session_id):
    """Note the folder a new session was made in (opencode keeps it there)."""
    try:
        os.makedirs(folders_dir(), mode=0o700, exist_ok=True)
        with open(os.path.join(folders_dir(), session_id), "w", encoding="utf-8") as fh:
            fh.write(os.path.realpath(os.getcwd()))
    except OSError:
        pass  # only an optimisation: without it the folder is asked of opencode


def session_folder(executable, session_id):
    """The folder opencode made ``session_id`` in; "" when it does not know it."""
    try:
        with open(os.path.join(folders_dir(), session_id), encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError:
        pass
    import subprocess

    try:
        listed = subprocess.run(
            [executable, "session", "list", "--format", "json"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
        )
        sessions = json.loads(listed.stdout or b"[]")
    except (OSError, ValueError, subprocess.SubprocessError):
        return None  # cannot tell: try to resume
    for entry in sessions if isinstance(sessions, list) else []:
        if isinstance(entry, dict) and entry.get("id") == session_id:
            return str(entry.get("directory") or "")
    return ""


# --- the events -------------------------------------------------------------------


class Watch:
    """What one run of opencode said, beyond the text: for notes and limits."""

    def __init__(self, turn, new_session):
        self.turn = turn
        self.new_session = new_session
        self.lock = threading.Lock()
        self.unfinished = 0
        self.rejected = []
        #: The highest attempt a live retry note has named.
        self.noted = 0
        self.done = threading.Event()

    def on_event(self, turn, event):
        with self.lock:
            self._on_event(turn, event)

    def _on_event(self, turn, event):
        if turn.error is not None:
            return  # stopped: what comes until the CLI exits is not the answer
        kind = event.get("type")
        session = event.get("sessionID")
        known = turn.session_id
        turn.session(session)
        if self.new_session and turn.session_id != known and turn.session_id:
            remember_folder(turn.session_id)
        part = event.get("part") or {}
        if kind == "text":
            turn.message(part.get("text"))
        elif kind == "tool_use":
            turn.boundary()
            state = part.get("state") or {}
            error = str(state.get("error") or "")
            if state.get("status") == "error" and "rejected permission" in error:
                self.rejected.append(str(part.get("tool") or "a tool"))
        elif kind == "step_start":
            turn.boundary()
        elif kind == "step_finish":
            turn.boundary()
            self._step_finished(turn, part.get("reason"))
        elif kind == "error":
            error = event.get("error") or {}
            data = error.get("data") or {}
            said = data.get("message") or error.get("message") or error.get("name")
            turn.fail(plain_message(said))

    def _step_finished(self, turn, reason):
        if reason in FINISHED:
            self.unfinished = 0
            return
        self.unfinished += 1
        if self.unfinished >= MAX_UNFINISHED_STEPS:
            turn.fail(
                f"the model server ended its answer {self.unfinished} times in a row without "
                "a finish reason (the stream was cut short), and opencode would ask it again "
                f"for ever; the turn was stopped after {MAX_UNFINISHED_STEPS} tries. Check the "
                "model server or the proxy in front of it."
            )
            stop(turn)
        else:
            turn.status(
                "retrying: the model server's answer ended without a finish reason, "
                f"opencode asks again (attempt {self.unfinished + 1} of at most "
                f"{MAX_UNFINISHED_STEPS})"
            )

    def watch_retries(self):
        """On a thread: stream a note while opencode retries a failed model call."""
        while not self.done.wait(RETRY_POLL_SECS):
            retrying = retry_from_logs(self.turn.stderr_text())
            if retrying is None:
                continue
            attempt, cause = retrying
            with self.lock:
                if self.turn.error is None:
                    note = f"retrying: the model server answered: {cause}, attempt {attempt}"
                    self.turn.status(note)
                    self.noted = max(self.noted, attempt)

    def note_missed_retries(self, stderr):
        """Say a retry the live watch did not see: opencode's log can reach us
        in one piece after the retry already went through."""
        retries, cause = retries_made(stderr)
        if retries and self.noted < retries + 1 and self.turn.error is None:
            self.turn.message()  # the answer so far stays the answer
            why = (
                f"the model server answered: {cause}"
                if cause
                else ("a model call failed (opencode's log gives no reason)")
            )
            self.turn.status(f"retried: {why}; attempt {retries + 1} went through")

    def on_exit(self, turn, code):
        self.done.set()
        with self.lock:
            stderr = turn.stderr_text()
            if code == 0:
                self.note_missed_retries(stderr)
            if code != 0 and turn.error is None:
                # The CLI's own words, not the log lines around them.
                said = " | ".join(log_free(stderr)[-3:])
                turn.fail(
                    f"opencode exited with code {code}"
                    + (f": {said}" if said else " (it wrote nothing but its log on stderr)")
                )
            asked = PERMISSION_LINE.findall(stderr) or self.rejected
            if asked and turn.error is None:
                turn.note(
                    f"(opencode turned down permission requests for: {', '.join(asked)}. "
                    "`opencode run` cannot ask anyone; see the opencode profile's README "
                    "to allow them.)"
                )


# --- one turn ---------------------------------------------------------------------


class Gone(Exception):
    """opencode does not know the session it was asked to continue."""


def run_once(ctx, executable, session_id, note=""):
    turn = CliTurn(ctx, OPENCODE)
    if note:
        turn.note(note)
    argv = [executable, "run", "--format=json", "--print-logs", "--log-level=INFO"]
    if session_id:
        argv.append(f"--session={session_id}")
    argv += [f"--file={f.path}" for f in turn.files()]
    argv += OPENCODE.extra_args()
    watch = Watch(turn, new_session=not session_id)
    watcher = threading.Thread(target=watch.watch_retries, name="opencode-retries", daemon=True)
    watcher.start()
    try:
        return turn.run(
            argv, watch.on_event, stdin=ctx.message.encode("utf-8"), on_exit=watch.on_exit
        )
    except ProtocolError:
        said = log_free(turn.stderr_text())
        if session_id and not turn.streamed() and any("Session not found" in s for s in said):
            raise Gone() from None
        raise
    finally:
        watch.done.set()
        watcher.join(1.0)


def fresh_note(session_id, why):
    return (
        f"(The earlier opencode session {session_id} {why}, so this reply starts a new "
        "session: the agent does not remember the conversation before this message.)"
    )


def handle(ctx):
    executable = OPENCODE.path()
    session_id = ctx.session_id
    if session_id:
        here = os.path.realpath(os.getcwd())
        folder = session_folder(executable, session_id)
        if folder == "":
            why = "is not known to opencode here"
            return run_once(ctx, executable, "", fresh_note(session_id, why))
        if folder is not None and os.path.realpath(folder) != here:
            # opencode would run the turn but never report it: its events go
            # to the session's own folder, and `run` waits for ever.
            why = f"belongs to the folder {folder} and opencode cannot continue it in {here}"
            return run_once(ctx, executable, "", fresh_note(session_id, why))
    try:
        return run_once(ctx, executable, session_id)
    except Gone:
        return run_once(ctx, executable, "", fresh_note(session_id, "could not be found"))


create_profile(handle)
