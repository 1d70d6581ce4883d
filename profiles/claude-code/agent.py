"""Claude Code behind agentproc: one `claude --print` run per turn, in stream-json.

The message goes to the CLI's stdin as a stream-json user message (never on
the command line), with images as content blocks. Text deltas become partials,
`--resume` continues the conversation (a session Claude Code no longer has
here starts afresh, with a note), API errors and retries are told in words,
and with the permission channel on, the CLI's tool approval requests (control
requests of subtype `can_use_tool`) are asked in the chat. See README.md.
"""

import base64
import shutil
import tempfile

from agentproc import create_profile
from agentproc.wrap import Cli, describe_files, fetch_attachments, jsonl, retry_note, run_resuming

CLAUDE = Cli(
    "Claude Code",
    "claude",
    install="npm install -g @anthropic-ai/claude-code",
    env_prefix="CLAUDE_CODE",
)

#: Image types the Messages API takes as base64 content blocks.
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")

#: The first control request of a stream-json session, as the Agent SDKs send it.
INITIALIZE = {"subtype": "initialize", "hooks": None}

#: The `model` of the assistant message Claude Code makes up to report an API
#: error (with an `error` field); its text is not the model's answer.
SYNTHETIC = "<synthetic>"

#: `result` subtypes that are failures, in words for the chat.
RESULT_ERRORS = {
    "error_max_turns": "Claude Code stopped: it reached its maximum number of turns",
    "error_during_execution": "Claude Code failed while working on the request",
    "error_max_budget_usd": "Claude Code stopped: it reached its budget",
}

#: What Claude Code says (on stderr, or in a result's `errors`) when it has no
#: session of that id for this folder: sessions are stored per project folder.
SESSION_LOST = "No conversation found with session ID"

#: What Claude Code says on stderr when it refuses to skip approvals as root.
ROOT_REFUSAL = "cannot be used with root/sudo privileges"

ROOT_HELP = (
    "Claude Code refuses --permission-mode bypassPermissions (and "
    "--dangerously-skip-permissions) when it runs as root. Run the bridge as an "
    "ordinary user; or drop that option from CLAUDE_CODE_ARGS and let the chat approve "
    "tools (or use --permission-mode acceptEdits); or, only inside a throwaway container "
    "or VM, set IS_SANDBOX=1 in the profile's env to tell Claude Code it is sandboxed."
)

#: What the person can do about an API error, by HTTP status.
API_ADVICE = {
    400: "The request was refused; starting a new conversation (/new) may help.",
    401: (
        "Set a valid ANTHROPIC_API_KEY for the bridge (or log in once with `claude`); "
        "with ANTHROPIC_BASE_URL set, use the key that server expects."
    ),
    403: "The key is not allowed to do this: check its permissions and the model chosen.",
    404: "Check the model name (ANTHROPIC_MODEL, or --model in CLAUDE_CODE_ARGS).",
    429: (
        "The account is over its rate limit: wait a minute and send the message again. "
        "If it keeps happening, raise the limit or slow down."
    ),
    500: "A server-side failure, usually brief: send the message again in a moment.",
    529: "The API is overloaded for everyone: send the message again in a few minutes.",
}
NETWORK_ADVICE = "Check the network and ANTHROPIC_BASE_URL (if set), then send the message again."


def api_error(status, text):
    """The message for a turn that failed on an API error, for the chat."""
    import re

    text = " ".join(str(text or "").split())
    # "API Error: 500 Internal server error. ..." -> "Internal server error. ..."
    text = re.sub(r"^API Error:\s*(?:\d{3}\s+)?", "", text)
    if isinstance(status, int) and not isinstance(status, bool):
        head = f"Claude Code got no answer from the model API (HTTP {status})"
        advice = API_ADVICE.get(status) or API_ADVICE[500 if status >= 500 else 400]
    else:
        head = "Claude Code got no answer from the model API"
        advice = NETWORK_ADVICE
    said = f": {text}" if text else ""
    return f"{head}{said}\nWhat to do: {advice}"


def on_event(turn, event):
    kind = event.get("type")
    turn.session(event.get("session_id"))
    if kind == "stream_event":  # token deltas, with --include-partial-messages
        inner = event.get("event") or {}
        if inner.get("type") == "message_start":
            turn.boundary()
            turn.state["streaming_id"] = (inner.get("message") or {}).get("id")
        delta = inner.get("delta") or {}
        if inner.get("type") == "content_block_delta" and delta.get("type") == "text_delta":
            turn.delta(delta.get("text"))
    elif kind == "assistant":
        assistant(turn, event)
    elif kind == "system" and event.get("subtype") == "api_retry":
        delay = event.get("retry_delay_ms")
        turn.status(
            retry_note(
                status=event.get("error_status"),
                attempt=event.get("attempt"),
                max_attempts=event.get("max_retries"),
                delay_secs=delay / 1000 if isinstance(delay, (int, float)) else None,
            )
        )
    elif kind == "result":
        result(turn, event)
        turn.close_stdin()  # the turn is over; EOF lets the CLI exit
    elif kind == "control_request":
        answer(turn, event)


def assistant(turn, event):
    message = event.get("message") or {}
    content = message.get("content") or []
    text = "".join(b.get("text", "") for b in content if b.get("type") == "text")
    if event.get("error") or message.get("model") == SYNTHETIC:
        # Claude Code's own words about a failed request, not the model's answer:
        # kept for the error (or the reply, if the result says all went well).
        turn.state["synthetic"] = text
        return
    streaming_id = turn.state.get("streaming_id")
    if streaming_id and message.get("id") not in (None, streaming_id):
        # A streamed answer broke off and Claude Code asked again without
        # streaming: what streamed of the first answer is not the reply.
        turn.state["streaming_id"] = None
        turn.status("the answer broke off; Claude Code asked the model again")
    if text:
        turn.message(text)


def result(turn, event):
    subtype = event.get("subtype")
    errors = "; ".join(str(e) for e in event.get("errors") or [])
    status = event.get("api_error_status")
    if event.get("is_error") or subtype != "success":
        text = event.get("result") or turn.state.get("synthetic") or errors
        if status is not None or "synthetic" in turn.state:
            turn.fail(api_error(status, text))
        else:
            turn.fail(text or RESULT_ERRORS.get(subtype) or subtype)
    else:
        if turn.state.get("synthetic"):
            turn.message(turn.state.pop("synthetic"))
        turn.final(event.get("result"))


def describe(tool_input, description):
    """One line about a tool call that shows what it would do, not only why.

    Claude Code's own description of a Bash call is the model's summary
    ("Write the file"); the person approving it should see the command.
    """
    what = ""
    for key in ("command", "file_path", "notebook_path", "path", "url"):
        value = tool_input.get(key) if isinstance(tool_input, dict) else None
        if isinstance(value, str) and value.strip():
            what = value.strip()
            break
    why = description.strip() if isinstance(description, str) else ""
    if what and why and why != what:
        return f"{what} ({why})"
    return what or why


def answer(turn, event):
    """Ask the chat about a tool the CLI wants to use, and give the CLI the answer."""
    request = event.get("request") or {}
    response = {"subtype": "success", "request_id": event.get("request_id")}
    if request.get("subtype") != "can_use_tool":
        response.update(subtype="error", error=f"unsupported request {request.get('subtype')}")
    else:
        tool_input = request.get("input") or {}
        tool_use_id = request.get("tool_use_id")
        decision = turn.ctx.request_permission(
            request.get("tool_name") or "tool",
            tool_input,
            describe(tool_input, request.get("description")),
            tool_use_id=tool_use_id if isinstance(tool_use_id, str) else "",
        )
        if decision.allow:
            given = decision.updated_input
            response["response"] = {
                "behavior": "allow",
                "updatedInput": tool_input if given is None else given,
            }
        else:
            response["response"] = {
                "behavior": "deny",
                "message": decision.message or "the user denied this",
            }
    turn.send({"type": "control_response", "response": response})


def on_exit(turn, code):
    if code != 0 and ROOT_REFUSAL in turn.stderr_text():
        turn.fail(ROOT_HELP)


def session_lost(turn, code):
    """Whether the run failed because Claude Code has no such session in this folder."""
    return SESSION_LOST in (turn.error or "") or SESSION_LOST in turn.stderr_text()


def user_message(ctx, folder):
    """The stdin of a run: the initialize request, then the message (with attachments)."""
    files = fetch_attachments(ctx.attachments, folder) if ctx.attachments else []
    images = [f for f in files if f.type == "image" and f.mime_type in IMAGE_TYPES]
    others = [f for f in files if f not in images]
    text = ctx.message + describe_files(others)
    blocks = [
        {
            "type": "image",
            "source": {
                "type": "base64",
                "media_type": f.mime_type,
                "data": base64.b64encode(f.read_bytes()).decode("ascii"),
            },
        }
        for f in images
    ]
    content = [*blocks, {"type": "text", "text": text}] if blocks else text
    stdin = jsonl(
        {"type": "control_request", "request_id": "init", "request": INITIALIZE},
        {
            "type": "user",
            "message": {"role": "user", "content": content},
            "parent_tool_use_id": None,
            "session_id": "default",
        },
    )
    return stdin, bool(others)


def handle(ctx):
    executable = CLAUDE.path()
    extra = CLAUDE.extra_args()
    folder = tempfile.mkdtemp(prefix="agentproc-claude-")
    try:
        stdin, add_dir = user_message(ctx, folder)

        def argv(turn, session_id):
            args = [executable, "--print", "--verbose"]
            args += ["--output-format", "stream-json", "--input-format", "stream-json"]
            if ctx.streaming:
                args.append("--include-partial-messages")
            if ctx.permission:
                args += ["--permission-prompt-tool", "stdio"]
            if session_id:
                args.append(f"--resume={session_id}")
            if add_dir:
                args.append(f"--add-dir={folder}")
            return [*args, *extra]

        return run_resuming(
            ctx,
            CLAUDE,
            argv,
            on_event,
            lost=session_lost,
            on_exit=on_exit,
            stdin=stdin,
            keep_stdin=True,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


create_profile(handle)
