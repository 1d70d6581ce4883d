"""aider behind agentproc: one `aider --message-file` run per turn.

aider has no machine-readable output, so this wrapper does what it can with
plain text: it streams aider's stdout lines except its own status lines, and
takes the answer from aider's chat history file, one per conversation, which
`--restore-chat-history` also uses to continue the conversation on the next
turn. The session id is the wrapper's own. See README.md.
"""

import os
import re
import uuid

from agentproc import create_profile
from agentproc.wrap import Cli, CliTurn

AIDER = Cli(
    "aider",
    "aider",
    install="python -m pip install aider-install && aider-install",
    env_prefix="AIDER",
)

#: Lines aider prints about itself rather than as the model's answer.
STATUS = re.compile(
    r"^(Aider v\d|Main model:|Model:|Weak model:|Editor model:|Git repo:|Repo-map:|"
    r"Added .* to the chat|Restored previous conversation history|Tokens:|Cost:|"
    r"Use /help|Applied edit to|Commit [0-9a-f]{7}|Creating empty file|Warning:|"
    r"https://aider\.chat/|Scraping |Summarizing|Can't initialize prompt toolkit)"
)


def on_line(turn, line):
    if STATUS.match(line):
        return
    if line.strip() or turn.state.get("text"):
        turn.state["text"] = True
        turn.delta(line + "\n")


def last_answer(history, start):
    """The model's words after the last user message of the history file, from ``start``."""
    try:
        with open(history, encoding="utf-8", errors="replace") as fh:
            fh.seek(start)
            text = fh.read()
    except OSError:
        return ""
    answer = []
    for line in text.splitlines():
        if line.startswith(("#### ", "# aider chat started")):
            answer = []  # a user message (or a new run) starts
        elif not line.startswith(">"):  # aider quotes its own tool output
            answer.append(line)
    return "\n".join(answer).strip()


def handle(ctx):
    turn = CliTurn(ctx, AIDER)
    executable = AIDER.path()
    session = ctx.session_id or uuid.uuid4().hex
    turn.session(session)
    home = os.path.expanduser(os.environ.get("AGENTPROC_HOME") or "~/.agentproc")
    folder = os.path.join(home, "aider")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    history = os.path.join(folder, f"{session}.chat.md")
    start = os.path.getsize(history) if os.path.exists(history) else 0
    message = os.path.join(turn.folder, "message.txt")
    with open(message, "w", encoding="utf-8") as fh:
        fh.write(ctx.message)
    argv = [executable, "--no-pretty", "--stream" if ctx.streaming else "--no-stream"]
    argv += [f"--chat-history-file={history}", "--restore-chat-history"]
    argv += [f"--input-history-file={os.path.join(folder, session + '.input')}"]
    argv += [f"--read={f.path}" for f in turn.files()]
    argv += [*AIDER.extra_args(), f"--message-file={message}"]

    def on_exit(turn, code):
        answer = last_answer(history, start)
        if answer:
            turn.final(answer)
        elif code == 0:
            said = turn.reply().strip().splitlines()[-3:]
            turn.fail("aider gave no answer" + (": " + " | ".join(said) if said else ""))

    return turn.run(argv, on_line, json_lines=False, on_exit=on_exit)


create_profile(handle)
