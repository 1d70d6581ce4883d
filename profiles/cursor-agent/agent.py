"""Cursor Agent CLI behind agentproc: one `cursor-agent --print` run per turn.

Each assistant message of the stream-json output is streamed as a partial, the
`session_id` is the session, and `--resume` continues it. The message comes
after `--`, so it is never read as an option. The CLI has no way to take
attachments; they are downloaded and named in the message. See README.md.
"""

from agentproc import create_profile
from agentproc.wrap import Cli, CliTurn, describe_files

CURSOR = Cli(
    "Cursor Agent",
    "cursor-agent",
    install="curl https://cursor.com/install -fsS | bash",
    env_prefix="CURSOR_AGENT",
)


def on_event(turn, event):
    kind = event.get("type")
    turn.session(event.get("session_id"))
    if kind == "assistant":
        content = (event.get("message") or {}).get("content") or []
        turn.message("".join(b.get("text", "") for b in content if b.get("type") == "text"))
    elif kind == "tool_call" and event.get("subtype") == "started":
        turn.boundary()
    elif kind == "result":
        if event.get("is_error") or event.get("subtype") != "success":
            turn.fail(event.get("result") or event.get("error"))
        else:
            turn.final(event.get("result"))


def handle(ctx):
    turn = CliTurn(ctx, CURSOR)
    argv = [CURSOR.path(), "--print", "--output-format=stream-json"]
    if ctx.session_id:
        argv.append(f"--resume={ctx.session_id}")
    argv += CURSOR.extra_args()
    files = turn.files()
    if files:
        turn.note(
            "(Cursor Agent cannot take attachments directly: it got local copies of them "
            "named in the message, which it can read if its settings allow.)"
        )
    return turn.run([*argv, "--", ctx.message + describe_files(files)], on_event)


create_profile(handle)
