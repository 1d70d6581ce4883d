"""Gemini CLI behind agentproc: one `gemini --output-format=stream-json` run per turn.

Assistant message chunks are streamed as partials, the `init` event's session id
is the session, and `--resume` continues it. The message is given as
`--prompt=<text>`: one argument, bound to the option, so it is never read as an
option itself. See README.md.
"""

from agentproc import create_profile
from agentproc.wrap import Cli, CliTurn, describe_files

GEMINI = Cli(
    "Gemini CLI",
    "gemini",
    install="npm install -g @google/gemini-cli",
    env_prefix="GEMINI_CLI",
    exit_reasons={42: "the prompt or the options were not accepted", 53: "turn limit reached"},
)


def on_event(turn, event):
    kind = event.get("type")
    turn.session(event.get("session_id"))
    if kind == "message" and event.get("role") == "assistant":
        if event.get("delta"):
            turn.delta(event.get("content"))
        else:
            turn.message(event.get("content"))
    elif kind == "tool_use":
        turn.boundary()
    elif kind == "error":
        # Documented as non-fatal (warnings, retried errors); the run's own
        # result or exit code decides.
        turn.state["last_error"] = event.get("message")
    elif kind == "result" and event.get("status") == "error":
        error = event.get("error") or {}
        turn.fail(error.get("message") or turn.state.get("last_error"))


def on_exit(turn, code):
    if code != 0 and turn.state.get("last_error"):
        turn.fail(turn.state["last_error"])


def handle(ctx):
    turn = CliTurn(ctx, GEMINI)
    argv = [GEMINI.path(), "--output-format=stream-json"]
    if ctx.session_id:
        argv.append(f"--resume={ctx.session_id}")
    files = turn.files()
    if files:
        argv.append(f"--include-directories={turn.folder}")
    argv += GEMINI.extra_args()
    argv.append(f"--prompt={ctx.message}{describe_files(files)}")
    return turn.run(argv, on_event, on_exit=on_exit)


create_profile(handle)
