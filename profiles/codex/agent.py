"""OpenAI Codex behind agentproc: one `codex exec --json` run per turn.

The message goes to the CLI's stdin (the prompt argument is `-`), so it is never
read as an option. Each finished agent message is streamed as a partial, the
thread id is the session, and `codex exec resume` continues it. Codex's
reconnects are streamed as notes, and a run that only reconnects is stopped
after RECONNECT_STALL_SECS. See README.md.
"""

import json
import os
import re
import shutil
import tempfile
import threading
import time

from agentproc import create_profile
from agentproc.wrap import (
    Cli,
    describe_files,
    fetch_attachments,
    retry_note,
    run_resuming,
    stop,
)

CODEX = Cli(
    "Codex",
    "codex",
    install="npm install -g @openai/codex",
    env_prefix="CODEX",
    exit_reasons={2: "its options were not accepted"},
)

#: Item types that hold the agent's words (the second is the name older releases used).
MESSAGE_ITEMS = ("agent_message", "assistant_message")

#: "Reconnecting... 2/5 (cause)" and "Reconnecting... waiting for network (cause)".
RECONNECT = re.compile(r"^Reconnecting\.\.\.\s*(?:(\d+)/(\d+)|(waiting for network))\s*(.*)$", re.S)
HTTP_STATUS = re.compile(r"unexpected status (\d{3})(?: ([A-Za-z][A-Za-z ]*?))?:")

#: How long a run may go on reconnecting without any progress before the wrapper
#: stops Codex and fails the turn. Codex's own retries (5 stream reconnects by
#: default, with backoff) are over well within this; after them it waits for
#: the network without end, and the person would see nothing until the turn's
#: 30-minute timeout. Two minutes is long enough for a brief outage to pass and
#: short enough for a chat. `CODEX_RECONNECT_STALL_SECS` changes it.
RECONNECT_STALL_SECS = 120.0

#: What Codex says (exit 1) when asked to resume a thread it has no record of.
SESSION_LOST = "no rollout found for thread id"

#: The prompt for a message that is only images: Codex refuses an empty prompt.
IMAGE_ONLY_PROMPT = "The user sent the attached image(s) without any text. Look at them and reply."

SANDBOX_HELP = (
    "(Codex's sandbox is read-only here, so it could not run `{command}`. To let Codex edit "
    'files in this folder, set CODEX_ARGS="--sandbox workspace-write".)'
)


def plain(message):
    """A message from Codex without a raw JSON error body around it."""
    text = str(message or "").strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            return text
        error = value.get("error") if isinstance(value, dict) else None
        if isinstance(error, dict) and error.get("message"):
            kind = error.get("code") or error.get("type")
            return f"{error['message']} ({kind})" if kind else str(error["message"])
    return text


#: "unexpected status 401 Unauthorized: ..." and "exceeded retry limit, last status: 429 ...".
STATUS = re.compile(r"(?:unexpected status|last status:) (\d{3})(?: ([A-Za-z][A-Za-z ]*[A-Za-z]))?")

#: What the person can do about an API error, by HTTP status.
API_ADVICE = {
    400: "The request was refused; starting a new conversation (/new) may help.",
    401: "Set a valid API key for the bridge: CODEX_API_KEY or OPENAI_API_KEY (or log in "
    "once with `codex login`); for a model provider of your own, the variable its "
    "env_key names.",
    403: "The key is not allowed to do this: check its permissions and the model chosen.",
    404: "Check the model name (model in config.toml, or --model in CODEX_ARGS) and the base URL.",
    429: "The account is over its rate limit or quota: wait a minute and send the message "
    "again. If it keeps happening, check the account's limits.",
    500: "A server-side failure, usually brief: send the message again in a moment.",
}
NETWORK_ADVICE = (
    "Send the message again in a moment. If it keeps failing, check the network and the "
    "base URL Codex uses (OPENAI_BASE_URL, or base_url of the model provider in "
    "$CODEX_HOME/config.toml)."
)


def failure(message):
    """The message for a turn that failed: what happened, then what to do."""
    text = plain(message)
    text = re.sub(r",? url: \S+$", "", text)
    if text.startswith("Codex ") or "\nWhat to do:" in text:
        return text
    status = STATUS.search(text)
    if status:
        code = int(status.group(1))
        reason = f" {status.group(2)}" if status.group(2) else ""
        detail = text[status.end() :].lstrip(":, ").strip() or "no answer after its retries"
        advice = API_ADVICE.get(code) or API_ADVICE[500 if code >= 500 else 400]
        return (
            f"Codex got no answer from the model API (HTTP {code}{reason}): {detail}\n"
            f"What to do: {advice}"
        )
    if not text:
        return text
    return f"Codex got no answer from the model API: {text}\nWhat to do: {NETWORK_ADVICE}"


def on_event(turn, event):
    with turn.state["lock"]:
        handle_event(turn, event)


def handle_event(turn, event):
    kind = event.get("type")
    if kind != "error":
        turn.state.pop("reconnecting", None)
    if kind == "thread.started":
        turn.session(event.get("thread_id"))
    elif kind == "item.completed":
        item = event.get("item") or {}
        item_type = item.get("type") or item.get("item_type")
        if item_type in MESSAGE_ITEMS:
            turn.message(item.get("text"))
        elif item_type == "command_execution" and item.get("status") == "failed":
            output = item.get("aggregated_output") or ""
            if "Read-only file system" in output and "sandbox_note" not in turn.state:
                turn.state["sandbox_note"] = SANDBOX_HELP.format(command=item.get("command"))
    elif kind == "turn.failed":
        turn.fail(failure((event.get("error") or {}).get("message")))
    elif kind == "error":
        message = str(event.get("message") or "")
        match = RECONNECT.match(message)
        if match:
            reconnect(turn, match)
        else:
            # The last error before `turn.failed`, or one Codex gets past.
            turn.state["last_error"] = message
    elif kind == "turn.completed":
        turn.state.pop("last_error", None)


def reconnect(turn, match):
    """Codex is retrying: say so, and start the stall clock if it is not running."""
    attempt, total, waiting, cause = match.groups()
    cause = plain(cause.strip().removeprefix("(").removesuffix(")"))
    cause = re.sub(r",? url: \S+$", "", cause)
    turn.state["last_error"] = cause
    turn.state.setdefault("reconnecting", time.monotonic())
    status = HTTP_STATUS.search(cause)
    if status:
        note = retry_note(
            status=" ".join(filter(None, status.groups())),
            attempt=int(attempt) if attempt else None,
            max_attempts=int(total) if total else None,
        )
    elif waiting:
        note = f"reconnecting: waiting for the network to come back; {cause}"
    else:
        note = f"reconnecting, attempt {attempt} of {total}: {cause}"
    turn.status(note)


def watchdog(turn, done, limit):
    """Stop Codex when it has only been reconnecting for ``limit`` seconds."""
    while not done.wait(min(1.0, limit / 4)):
        with turn.state["lock"]:
            since = turn.state.get("reconnecting")
            if since is None or time.monotonic() - since < limit:
                continue
            cause = turn.state.get("last_error") or "no answer"
            turn.fail(
                f"Codex could not reach the model server for {limit:.0f} s and was stopped "
                f"(last error: {cause}).\nWhat to do: {NETWORK_ADVICE}"
            )
        stop(turn)
        return


def on_exit(turn, code):
    turn.state["stop"].set()
    with turn.state["lock"]:
        if code != 0 and turn.state.get("last_error"):
            turn.fail(failure(turn.state["last_error"]))
        said = error_line(turn.stderr_text()) if code != 0 and turn.error is None else ""
        if said and code == 2:
            # A usage error: the reason is the `error:` line above the usage text.
            advice = "check CODEX_ARGS against `codex exec --help`"
            if "--full-auto" in said:
                advice += " (`--full-auto` is gone: use `--sandbox workspace-write`)"
            turn.fail(f"Codex did not accept its options: {said}\nWhat to do: {advice}.")
        elif said and not session_lost(turn, code):
            # Its own error, above a stack backtrace that would otherwise be the
            # end of stderr quoted (a config it cannot load, say).
            turn.fail(f"Codex exited with code {code}: {said}")
        if turn.error is None and turn.state.get("sandbox_note"):
            turn.note(turn.state["sandbox_note"])


def error_line(stderr):
    """The first `error` line Codex wrote on stderr (with the next, if it goes on there)."""
    lines = [line.strip() for line in stderr.splitlines()]
    for number, line in enumerate(lines):
        if line.lower().startswith("error"):
            if line.endswith(":") and number + 1 < len(lines):
                line = f"{line} {lines[number + 1]}"
            return re.sub(r"^error:\s*", "", line, flags=re.I)
    return ""


def session_lost(turn, code):
    return SESSION_LOST in turn.stderr_text()


def stall_limit():
    value = os.environ.get("CODEX_RECONNECT_STALL_SECS", "")
    try:
        limit = float(value)
    except ValueError:
        return RECONNECT_STALL_SECS
    return limit if limit > 0 else RECONNECT_STALL_SECS


def handle(ctx):
    executable = CODEX.path()
    extra = CODEX.extra_args()
    options = ["exec", "--json"]
    if "--skip-git-repo-check" not in extra:  # Codex refuses it twice
        options.append("--skip-git-repo-check")
    # `codex exec` ignores OPENAI_BASE_URL and reads its key from CODEX_API_KEY;
    # pass on what a user set the usual OpenAI way.
    base_url = os.environ.get("OPENAI_BASE_URL", "").strip()
    if base_url:
        options += ["-c", f"openai_base_url={json.dumps(base_url)}"]
    if os.environ.get("OPENAI_API_KEY") and not os.environ.get("CODEX_API_KEY"):
        os.environ["CODEX_API_KEY"] = os.environ["OPENAI_API_KEY"]
    limit = stall_limit()
    folder = tempfile.mkdtemp(prefix="agentproc-codex-")
    try:
        files = fetch_attachments(ctx.attachments, folder) if ctx.attachments else []
        images = [f for f in files if f.type == "image"]
        prompt = ctx.message + describe_files(f for f in files if f not in images)
        if images and not ctx.message.strip():
            prompt = IMAGE_ONLY_PROMPT + prompt

        def argv(turn, session_id):
            turn.state["lock"] = threading.RLock()
            done = turn.state["stop"] = threading.Event()
            threading.Thread(target=watchdog, args=(turn, done, limit), daemon=True).start()
            command = [executable, *options, *(f"--image={f.path}" for f in images), *extra]
            if session_id:
                command += ["resume", "--", session_id]
            return [*command, "-"]  # the prompt is read from stdin

        return run_resuming(
            ctx,
            CODEX,
            argv,
            on_event,
            lost=session_lost,
            on_exit=on_exit,
            stdin=prompt.encode("utf-8"),
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


create_profile(handle)
