"""SDK agent with one handler per test case; ``SDK_CASE`` picks which one runs.

tests/test_sdk.py runs this file as a real process, the way a bridge would, and
reads its stdout, stderr and exit code. ``SDK_TEXT`` is text for the cases that
echo it back.
"""

import asyncio
import json
import os
import sys
import time

from agentproc import AgentResult, ProtocolError, create_profile

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def decision_dict(decision):
    return {
        "allow": decision.allow,
        "updated_input": decision.updated_input,
        "message": decision.message,
    }


@case
def reply_str(ctx):
    return f"You said: {ctx.message}"


@case
def reply_text(ctx):
    return os.environ["SDK_TEXT"]


@case
def reply_none(ctx):
    return None


@case
def reply_empty(ctx):
    return ""


@case
def reply_result(ctx):
    return AgentResult("ok", session_id="sess-1")


@case
def reply_result_padded(ctx):
    return AgentResult("ok", session_id="  sess-2\n")


@case
def reply_result_invalid(ctx):
    return AgentResult("ok", session_id="../evil id")


@case
def reply_result_empty_id(ctx):
    return AgentResult("ok", session_id=ctx.session_id)


@case
def reply_result_no_body(ctx):
    return AgentResult(None, session_id="sess-3")


@case
def reply_int(ctx):
    return 42


@case
def reply_surrogate(ctx):
    return "lone \ud800 surrogate"


@case
def partials_and_print(ctx):
    ctx.send_partial("one")
    print("printed by the handler")
    ctx.send_partial("two")
    return "body"


@case
def send_error_continues(ctx):
    ctx.send_partial("before")
    ctx.send_error("went wrong")
    ctx.send_partial("after")
    return AgentResult("body", session_id="sess-e")


@case
def protocol_error(ctx):
    ctx.send_partial("working")
    raise ProtocolError("cannot do that")


@case
def crash(ctx):
    raise ValueError("boom")


@case
async def async_handler(ctx):
    ctx.send_partial("not awaited")
    await ctx.send_partial("awaited")
    await asyncio.sleep(0)
    return "async done"


@case
async def async_result(ctx):
    await asyncio.sleep(0)
    return AgentResult("async ok", session_id="sess-a")


@case
async def async_crash(ctx):
    await asyncio.sleep(0)
    raise ValueError("async boom")


@case
async def async_protocol_error(ctx):
    await ctx.send_partial("working")
    raise ProtocolError("async refusal")


@case
def partials_only(ctx):
    ctx.send_partial("Hel")
    ctx.send_partial("lo")
    return None


@case
def partials_then_reply(ctx):
    ctx.send_partial("draft")
    return "final"


@case
def dump_ctx(ctx):
    return json.dumps(
        {
            "message": ctx.message,
            "session_id": ctx.session_id,
            "session_name": ctx.session_name,
            "from_user": ctx.from_user,
            "streaming": ctx.streaming,
            "protocol_version": ctx.protocol_version,
            "image_url": ctx.image_url,
            "file_url": ctx.file_url,
            "attachments": [a.to_dict() for a in ctx.attachments],
            "permission": ctx.permission,
        }
    )


@case
def permission(ctx):
    first = ctx.request_permission("Bash", {"cmd": "ls"}, "list files")
    second = ctx.request_permission("Write", {"path": "notes.txt"})
    return json.dumps([decision_dict(first), decision_dict(second)])


@case
async def permission_async(ctx):
    decision = await ctx.request_permission("Bash", {"cmd": "rm -rf build"})
    return json.dumps([decision_dict(decision)])


@case
def permission_tool_use_id(ctx):
    decision = ctx.request_permission("Edit", {"file": "a.py"}, tool_use_id="toolu_01")
    return json.dumps([decision_dict(decision)])


@case
def permission_bad_input(ctx):
    ctx.request_permission("Edit", ["not", "a", "dict"])
    return "unreachable"


@case
def sleep(ctx):
    ctx.send_partial("started")
    print("pending", end="")  # left in the text buffer: SIGTERM must flush it
    sys.stderr.write("ready\n")
    sys.stderr.flush()
    time.sleep(30)
    return "never"


@case
def interrupt(ctx):
    raise KeyboardInterrupt


@case
def exit_code(ctx):
    sys.exit(3)


create_profile(CASES[os.environ["SDK_CASE"]])
