"""Claude Code behind agentproc: one `claude --print` run per turn, in stream-json.

The message goes to the CLI's stdin as a stream-json user message (never on
the command line), with images as content blocks. Text deltas become partials,
`--resume` continues the conversation, and with the permission channel on, the
CLI's tool approval requests (control requests of subtype `can_use_tool`) are
asked in the chat. See README.md.
"""

import base64

from agentproc import create_profile
from agentproc.wrap import Cli, CliTurn, describe_files, jsonl

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

#: `result` subtypes that are failures, in words for the chat.
RESULT_ERRORS = {
    "error_max_turns": "Claude Code stopped: it reached its maximum number of turns",
    "error_during_execution": "Claude Code failed while working on the request",
    "error_max_budget_usd": "Claude Code stopped: it reached its budget",
}


def on_event(turn, event):
    kind = event.get("type")
    turn.session(event.get("session_id"))
    if kind == "stream_event":  # token deltas, with --include-partial-messages
        inner = event.get("event") or {}
        if inner.get("type") == "message_start":
            turn.boundary()
        delta = inner.get("delta") or {}
        if inner.get("type") == "content_block_delta" and delta.get("type") == "text_delta":
            turn.delta(delta.get("text"))
    elif kind == "assistant":
        content = (event.get("message") or {}).get("content") or []
        text = "".join(b.get("text", "") for b in content if b.get("type") == "text")
        if text:
            turn.message(text)
    elif kind == "result":
        subtype = event.get("subtype")
        if event.get("is_error") or subtype != "success":
            errors = "; ".join(str(e) for e in event.get("errors") or [])
            turn.fail(event.get("result") or errors or RESULT_ERRORS.get(subtype) or subtype)
        else:
            turn.final(event.get("result"))
        turn.close_stdin()  # the turn is over; EOF lets the CLI exit
    elif kind == "control_request":
        answer(turn, event)


def answer(turn, event):
    """Ask the chat about a tool the CLI wants to use, and give the CLI the answer."""
    request = event.get("request") or {}
    response = {"subtype": "success", "request_id": event.get("request_id")}
    if request.get("subtype") != "can_use_tool":
        response.update(subtype="error", error=f"unsupported request {request.get('subtype')}")
    else:
        tool_input = request.get("input") or {}
        decision = turn.ctx.request_permission(
            request.get("tool_name") or "tool", tool_input, request.get("description") or ""
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


def handle(ctx):
    turn = CliTurn(ctx, CLAUDE)
    argv = [CLAUDE.path(), "--print", "--verbose"]
    argv += ["--output-format", "stream-json", "--input-format", "stream-json"]
    if ctx.streaming:
        argv.append("--include-partial-messages")
    if ctx.permission:
        argv += ["--permission-prompt-tool", "stdio"]
    if ctx.session_id:
        argv.append(f"--resume={ctx.session_id}")
    files = turn.files()
    images = [f for f in files if f.type == "image" and f.mime_type in IMAGE_TYPES]
    others = [f for f in files if f not in images]
    if others:
        argv.append(f"--add-dir={turn.folder}")
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
    return turn.run([*argv, *CLAUDE.extra_args()], on_event, stdin=stdin, keep_stdin=True)


create_profile(handle)
