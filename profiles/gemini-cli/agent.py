"""Gemini CLI behind agentproc: one `gemini --output-format=stream-json` run per turn.

Assistant message chunks are streamed as partials and `--resume` continues the
session. The message is given as `--prompt=<text>`: one argument, bound to the
option, so it is never read as an option itself. What the stream leaves out is
read from the CLI's stderr and exit code: its retries become streamed notes,
its exit codes and API errors become plain messages. See README.md.
"""

import json
import os
import re
import threading

from agentproc import create_profile
from agentproc.wrap import Cli, describe_files, retry_note, run_resuming

#: Gemini CLI's own exit codes (its FatalError classes), in words for the chat.
#: An API error exits with the HTTP status modulo 256 instead (401 -> 145).
EXIT_REASONS = {
    41: (
        "it could not authenticate: log in once by running `gemini`, or set GEMINI_API_KEY "
        'and choose it in ~/.gemini/settings.json: {"security": {"auth": '
        '{"selectedType": "gemini-api-key"}}}'
    ),
    42: "the prompt or the options were not accepted",
    44: "its sandbox could not be started",
    52: "its configuration is invalid: check ~/.gemini/settings.json and GEMINI_CLI_ARGS",
    53: "turn limit reached (maxSessionTurns in settings.json)",
    54: "a tool failed in a way it cannot go on from (a full disk, say)",
    55: (
        "it does not trust this folder; the wrapper trusts the folder it runs in unless "
        "GEMINI_CLI_TRUST_WORKSPACE is set to something other than true"
    ),
    130: "it was cancelled",
}

GEMINI = Cli(
    "Gemini CLI",
    "gemini",
    install="npm install -g @google/gemini-cli",
    env_prefix="GEMINI_CLI",
    exit_reasons=EXIT_REASONS,
)

#: What Gemini CLI says (on stderr, exit 42) when it cannot resume a session:
#: an id it never saved (the turn that made it failed), or a session of
#: another folder (sessions are stored per project folder).
SESSION_LOST = ("Invalid session identifier", "No previous sessions found for this project")

#: The stream-json `result` of a failed API call: "[API Error: <body>]".
API_ERROR = re.compile(r"^\[API Error: (.*)\]$", re.S)

#: A retry Gemini CLI reports on stderr (and nowhere else): "Attempt 1 failed
#: with status 500. Retrying with backoff...", or for a rate limit "Attempt 1
#: failed: <message>. Retrying after 5303ms...".
RETRY = re.compile(
    r"Attempt (\d+) failed(.{0,600}?)\.* Retrying (?:with backoff|after (\d+)ms)", re.S
)
STATUS_IN_TEXT = re.compile(r"\b(429|5\d\d|5xx)\b")

#: How often the CLI's stderr is looked at for retries while it runs.
RETRY_POLL_SECS = 0.25

#: What the person can do about an API error, by HTTP status.
API_ADVICE = {
    400: "The request was refused. If the message says the API key is not valid, set a "
    "valid GEMINI_API_KEY; otherwise starting a new conversation (/new) may help.",
    401: "Set a valid GEMINI_API_KEY for the bridge (or log in once with `gemini`); with "
    "GOOGLE_GEMINI_BASE_URL set, use the key that server expects.",
    403: "The key is not allowed to do this: check its permissions and the model chosen.",
    404: "Check the model name (GEMINI_MODEL, or --model in GEMINI_CLI_ARGS).",
    429: "The account is over its rate limit or quota: wait a minute and send the message "
    "again. If it keeps happening, check the quota of the key.",
    500: "A server-side failure, usually brief: send the message again in a moment.",
}
NETWORK_ADVICE = (
    "Check the network and GOOGLE_GEMINI_BASE_URL (if set), then send the message again."
)
CUT_ADVICE = "The model's answer stopped before it was complete; send the message again."

#: Tools headless Gemini CLI leaves out unless an approval mode allows them.
APPROVAL_HELP = (
    "Gemini CLI could not use {tools}: headless Gemini CLI cannot ask for approval, so it "
    "leaves out tools that need it. To allow them, set GEMINI_CLI_ARGS to "
    "--approval-mode=auto_edit (file edits) or --approval-mode=yolo (everything)."
)


def api_error(body):
    """The message for a turn that failed on an API error, from the body Gemini CLI quotes."""
    status = None
    text = body.strip()
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, list) and value:
        value = value[0]
    error = value.get("error") if isinstance(value, dict) else None
    if isinstance(error, dict):
        code = error.get("code")
        status = code if isinstance(code, int) and not isinstance(code, bool) else None
        name = error.get("status")
        text = str(error.get("message") or name or "").strip()
        if status is not None and isinstance(name, str) and name:
            head = f"Gemini CLI got no answer from the model API (HTTP {status} {name})"
        elif status is not None:
            head = f"Gemini CLI got no answer from the model API (HTTP {status})"
        else:
            head = "Gemini CLI got no answer from the model API"
    elif text in ("terminated", "fetch failed") or "ECONNRESET" in text:
        head = "Gemini CLI lost the connection to the model API"
        text = f"the connection broke off ({text})"
    else:
        head = "Gemini CLI got no answer from the model API"
    if status is None:
        advice = NETWORK_ADVICE
    else:
        advice = API_ADVICE.get(status) or API_ADVICE[500 if status >= 500 else 400]
    text = " ".join(text.split())
    return f"{head}: {text}\nWhat to do: {advice}" if text else f"{head}\nWhat to do: {advice}"


def failure(message):
    """The message for a failed `result`: API errors in words, others as they are."""
    text = str(message or "").strip()
    match = API_ERROR.match(text)
    return api_error(match.group(1)) if match else text


def on_event(turn, event):
    with turn.state["lock"]:
        handle_event(turn, event)


def handle_event(turn, event):
    kind = event.get("type")
    if kind == "init":
        # Named to the bridge only once Gemini CLI has saved the session (a
        # result that succeeded, or a tool that ran): an id from a turn that
        # failed before that cannot be resumed, and would fail every later turn.
        turn.state["session"] = event.get("session_id")
    elif kind == "message" and event.get("role") == "assistant":
        content = event.get("content")
        if event.get("delta"):
            turn.delta(content)
            if isinstance(content, str):
                turn.state.setdefault("said", []).append(content)
        else:
            turn.message(content)
            turn.state["said"] = [content] if isinstance(content, str) else []
    elif kind == "tool_use":
        turn.boundary()
        turn.state["said"] = []
        turn.state.setdefault("tools", {})[event.get("tool_id")] = event.get("tool_name")
    elif kind == "tool_result":
        turn.session(turn.state.get("session"))
        error = event.get("error") or {}
        if event.get("status") == "error" and error.get("type") == "tool_not_registered":
            name = turn.state.get("tools", {}).get(event.get("tool_id"))
            if name:
                turn.state.setdefault("unavailable", []).append(name)
    elif kind == "error":
        # Warnings and errors the run may still get past; the `result` decides.
        turn.state["last_error"] = event.get("message")
    elif kind == "result":
        if event.get("status") == "success":
            turn.session(turn.state.get("session"))
            turn.state["succeeded"] = True
        else:
            error = event.get("error") or {}
            message = error.get("message") or turn.state.get("last_error")
            if message and "without a finish reason" in message:
                message = f"{message}\nWhat to do: {CUT_ADVICE}"
            turn.fail(failure(message) or "Gemini CLI reported that the turn failed")


def retry_notes(turn, stop):
    """Stream a note for each retry Gemini CLI reports on stderr, until ``stop`` is set."""
    seen = 0
    while not stop.wait(RETRY_POLL_SECS):
        found = list(RETRY.finditer(turn.stderr_text()))
        if len(found) < seen:
            # The kept tail of stderr moved on past older retries: take what is
            # there as told (saying old retries again would be wrong, and a
            # note after the answer would take it out of the reply).
            seen = len(found)
        for match in found[seen:]:
            attempt, cause, delay_ms = match.groups()
            status = STATUS_IN_TEXT.search(cause)
            # "Retrying after N ms" is Gemini CLI honouring a rate limit's delay.
            said = status.group(1) if status else "a rate limit" if delay_ms else "an error"
            with turn.state["lock"]:
                turn.status(
                    retry_note(
                        status=said,
                        attempt=int(attempt) + 1,
                        delay_secs=int(delay_ms) / 1000 if delay_ms else None,
                    )
                )
        seen = len(found)


def on_exit(turn, code):
    turn.state["stop"].set()
    with turn.state["lock"]:
        if code != 0 and turn.state.get("last_error"):
            turn.fail(turn.state["last_error"])
        if turn.state.get("succeeded") and turn.error is None:
            restarted(turn)
        unavailable = turn.state.get("unavailable")
        if unavailable and turn.error is None:
            names = ", ".join(f"`{n}`" for n in dict.fromkeys(unavailable))
            turn.note(f"({APPROVAL_HELP.format(tools=names)})")
        if code == 0 and turn.error is None and not turn.streamed():
            # A settings file Gemini CLI cannot read makes it answer nothing at all.
            stderr = turn.stderr_text()
            where = stderr.find("Invalid configuration in")
            if where >= 0:
                lines = [ln.strip() for ln in stderr[where:].splitlines() if ln.strip()]
                turn.fail("Gemini CLI did not run: " + " ".join(lines[:4]))


def restarted(turn):
    """Make the reply the answer Gemini CLI saved, when its stream started over.

    When a model stream ends early, Gemini CLI asks the model again and streams
    the new answer after the part it already streamed, and its stream-json
    says nothing about it: the streamed text is the broken start followed by
    the whole answer. The session file it saves holds the answer alone.
    """
    said = "".join(turn.state.get("said") or [])
    saved = saved_answer(turn.state.get("session"))
    if saved and said != saved and said.endswith(saved):
        turn.final(saved)


def saved_answer(session_id):
    """The last model message of a session Gemini CLI saved, or None.

    Sessions are JSON Lines files under ~/.gemini/tmp/<project>/chats/, named
    ``session-<time>-<first 8 characters of the id>.jsonl``; the first line
    names the session, model messages have ``"type": "gemini"``.
    """
    import glob

    if not isinstance(session_id, str) or len(session_id) < 8:
        return None
    root = os.environ.get("GEMINI_CLI_HOME") or os.path.expanduser("~")
    pattern = os.path.join(
        glob.escape(root), ".gemini", "tmp", "*", "chats", f"session-*-{session_id[:8]}.jsonl"
    )
    for path in glob.glob(pattern):
        last = None
        try:
            with open(path, encoding="utf-8") as fh:
                for number, line in enumerate(fh):
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue
                    if not isinstance(record, dict):
                        continue
                    if number == 0 and record.get("sessionId") != session_id:
                        break
                    if record.get("type") == "gemini":
                        last = record
        except OSError:
            continue
        if last is not None:
            content = last.get("content")
            if isinstance(content, list):
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            return content if isinstance(content, str) else None
    return None


def session_lost(turn, code):
    """Whether the run failed because Gemini CLI has no such session for this folder."""
    stderr = turn.stderr_text()
    return code == 42 and any(text in stderr for text in SESSION_LOST)


def handle(ctx):
    executable = GEMINI.path()
    extra = GEMINI.extra_args()
    # Headless Gemini CLI refuses a folder it has not been told to trust (exit
    # 55). The bridge's operator chose this folder for the agent, so trust it
    # for this run, unless they set the variable themselves.
    os.environ.setdefault("GEMINI_CLI_TRUST_WORKSPACE", "true")

    def argv(turn, session_id):
        turn.state["lock"] = threading.RLock()
        stop = turn.state["stop"] = threading.Event()
        threading.Thread(target=retry_notes, args=(turn, stop), daemon=True).start()
        command = [executable, "--output-format=stream-json"]
        if session_id:
            command.append(f"--resume={session_id}")
        files = turn.files()
        if files:
            command.append(f"--include-directories={turn.folder}")
        command += extra
        command.append(f"--prompt={ctx.message}{describe_files(files)}")
        return command

    return run_resuming(ctx, GEMINI, argv, on_event, lost=session_lost, on_exit=on_exit)


create_profile(handle)
