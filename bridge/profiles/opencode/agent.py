"""opencode behind agentproc: one `opencode run --format=json` run per turn.

The message goes to the CLI's stdin (no message argument), so it is never read as
an option. Each finished text part is streamed as a partial, the `sessionID`
every event carries is the session, and `--session` continues it. Attachments
are passed with `--file`. See README.md.
"""

from agentproc import create_profile
from agentproc.wrap import Cli, CliTurn

OPENCODE = Cli(
    "opencode",
    "opencode",
    install="npm install -g opencode-ai",
    env_prefix="OPENCODE",
)


def on_event(turn, event):
    kind = event.get("type")
    turn.session(event.get("sessionID"))
    part = event.get("part") or {}
    if kind == "text":
        turn.message(part.get("text"))
    elif kind in ("tool_use", "step_start", "step_finish"):
        turn.boundary()
    elif kind == "error":
        error = event.get("error") or {}
        data = error.get("data") or {}
        turn.fail(data.get("message") or error.get("message") or error.get("name"))
    elif kind == "done" and event.get("rejected"):
        asked = ", ".join(str(p) for p in event["rejected"])
        turn.note(
            f"(opencode turned down permission requests for: {asked}. "
            "See the opencode profile's README to allow them.)"
        )


def handle(ctx):
    turn = CliTurn(ctx, OPENCODE)
    argv = [OPENCODE.path(), "run", "--format=json"]
    if ctx.session_id:
        argv.append(f"--session={ctx.session_id}")
    argv += [f"--file={f.path}" for f in turn.files()]
    argv += OPENCODE.extra_args()
    return turn.run(argv, on_event, stdin=ctx.message.encode("utf-8"))


create_profile(handle)
