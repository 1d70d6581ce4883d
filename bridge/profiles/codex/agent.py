"""OpenAI Codex behind agentproc: one `codex exec --json` run per turn.

The message goes to the CLI's stdin (the prompt argument is `-`), so it is never
read as an option. Each finished agent message is streamed as a partial, the
thread id is the session, and `codex exec resume` continues it. See README.md.
"""

from agentproc import create_profile
from agentproc.wrap import Cli, CliTurn, describe_files

CODEX = Cli("Codex", "codex", install="npm install -g @openai/codex", env_prefix="CODEX")

#: Item types that hold the agent's words (the second is the name older releases used).
MESSAGE_ITEMS = ("agent_message", "assistant_message")


def on_event(turn, event):
    kind = event.get("type")
    if kind == "thread.started":
        turn.session(event.get("thread_id"))
    elif kind == "item.completed":
        item = event.get("item") or {}
        if (item.get("type") or item.get("item_type")) in MESSAGE_ITEMS:
            turn.message(item.get("text"))
    elif kind == "turn.failed":
        turn.fail((event.get("error") or {}).get("message"))
    elif kind == "error":
        # Codex also reports errors it retries ("reconnecting 1/5"); one counts
        # only if the run then fails.
        turn.state["last_error"] = event.get("message")
    elif kind == "turn.completed":
        turn.state.pop("last_error", None)


def on_exit(turn, code):
    if code != 0 and turn.state.get("last_error"):
        turn.fail(turn.state["last_error"])


def handle(ctx):
    turn = CliTurn(ctx, CODEX)
    argv = [CODEX.path(), "exec", "--json"]
    files = turn.files()
    images = [f for f in files if f.type == "image"]
    argv += [f"--image={f.path}" for f in images]
    argv += CODEX.extra_args()
    if ctx.session_id:
        argv += ["resume", "--", ctx.session_id]
    argv.append("-")  # read the prompt from stdin
    prompt = ctx.message + describe_files(f for f in files if f not in images)
    return turn.run(argv, on_event, stdin=prompt.encode("utf-8"), on_exit=on_exit)


create_profile(handle)
