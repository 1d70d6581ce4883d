"""aider behind agentproc: one `aider --message-file` run per turn.

aider has no machine-readable output, so this wrapper does what it can with
plain text: it streams aider's stdout lines except aider's own status lines,
turns its retries into streamed notes (and stops it after a few), and takes the
answer from aider's chat history file, one per conversation, which
`--restore-chat-history` also uses to continue the conversation on the next
turn. A failed turn is taken out of that file again, and so are the partial
answers of retried model calls, so the next turn's history holds only what
was really said. The session id is the wrapper's own. See README.md.
"""

import os
import re
import uuid

from agentproc import create_profile
from agentproc.wrap import Cli, CliTurn, stop

AIDER = Cli(
    "aider",
    "aider",
    install="python -m pip install aider-install && aider-install",
    env_prefix="AIDER",
)

#: aider retries a failed model call for about a minute (waits of 0.25, 0.5,
#: 1, 2, 4, ... s, eight retries), writing the answer again each time. After
#: this many retries the wrapper stops it and the turn fails.
MAX_RETRIES = 4

#: Lines aider prints about itself rather than as the model's answer (seen in
#: the output of aider 0.86; see tests/fake_clis/aider/).
STATUS = re.compile(
    r"^(Aider v\d|Main model:|Model:|Weak model:|Editor model:|Git repo:|Repo-map:|"
    r"Added .* to the chat|Added \.aider\S* to \.gitignore|Git repository created in |"
    r"Update git (name|email) with: |Detected dumb terminal|"
    r"Restored previous conversation history|Tokens:|Cost:|"
    r"Use /help|Applied edit to|Commit [0-9a-f]{7}|Creating empty file|Warning:|Warning for |"
    r"You can skip this check with|HTTPSConnectionPool\(|"
    r"https?://\S+$|Scraping |Summarizing|Can't initialize prompt toolkit)"
)
#: The start of an error aider reports: `litellm.RateLimitError: RateLimitError:
#: OpenAIException - <the server's words>`; it may follow a partial answer on
#: the same line.
ERROR = re.compile(r"litellm\.(\w+): (?:\1: )?(?:\w+Exception - )?")
#: The plain words aider adds under an error (aider/exceptions.py).
ERROR_HINT = re.compile(
    r"^(The API provider|OpenRouter or the upstream API provider |Insufficient credits |"
    r"You need to: pip install)"
)
RETRY = re.compile(r"^Retrying in ([\d.]+) seconds\.\.\.$")
#: Without a model and any API key aider offers to log in to OpenRouter in a
#: browser, which AIDER_YES_ALWAYS accepts, and then waits 5 minutes for it.
NO_KEY = "No LLM model was specified and no API keys were provided"


# --- the chat history file ----------------------------------------------------------


def split_history(text):
    """``text`` (what one run added to the chat history) as blocks.

    Each block is ``(kind, lines)``: ``user`` (`#### ` lines: the message),
    ``quote`` (`> ` lines: aider's own output, not sent to the model again),
    ``text`` (the model's words), ``other`` (`# aider chat started` headers).
    """
    blocks = []
    for line in text.splitlines(keepends=True):
        if line.startswith("#### "):
            kind = "user"
        elif line.startswith(">"):
            kind = "quote"
        elif line.startswith("# "):
            kind = "other"
        elif not line.strip() and blocks:
            kind = blocks[-1][0]  # a blank line belongs to what it follows
        else:
            kind = "text"
        if blocks and blocks[-1][0] == kind:
            blocks[-1][1].append(line)
        else:
            blocks.append((kind, [line]))
    return blocks


def read_turn(history, start):
    """``(answer, error, cleaned)`` from what this run added to ``history``.

    The answer is the model's words after the last retry; ``error`` the error
    aider quoted last, when no words followed it (the turn failed, whatever
    came before it); ``cleaned`` the added text without the partial answers of
    retried calls (what the file should hold).
    """
    try:
        with open(history, encoding="utf-8", errors="replace") as fh:
            fh.seek(start)
            text = fh.read()
    except OSError:
        return "", "", ""
    blocks = split_history(text)
    users = [i for i, (kind, _) in enumerate(blocks) if kind == "user"]
    first = users[-1] + 1 if users else 0
    answer = []
    error = ""
    dropped = set()
    for index in range(first, len(blocks)):
        kind, lines = blocks[index]
        if kind == "text":
            answer.append(index)
            error = ""
        elif kind == "quote":
            quoted = [ln[1:].strip() for ln in lines]
            if any(RETRY.match(q) for q in quoted):
                dropped.update(answer)  # a retry starts the answer over
                answer, error = [], ""
                continue
            found = next((q for q in quoted if ERROR.search(q)), "")
            if found:
                hint = next((q for q in quoted if ERROR_HINT.match(q)), "")
                error = plain_error(found) + (f" ({hint})" if hint else "")
    words = "".join("".join(blocks[i][1]) for i in answer).strip()
    cleaned = "".join("".join(lines) for i, (_, lines) in enumerate(blocks) if i not in dropped)
    return words, error, cleaned


def plain_error(text):
    """An error line of aider without litellm's class names."""
    found = ERROR.search(text)
    return text[found.end() :].strip() if found else text.strip()


def restore(history, start, cleaned=None):
    """Put the history back as it was before this run (plus ``cleaned``)."""
    try:
        with open(history, "r+", encoding="utf-8") as fh:
            fh.seek(start)
            fh.truncate()
            if cleaned:
                fh.write(cleaned)
    except OSError:
        pass


# --- aider's stdout -------------------------------------------------------------------


class Reader:
    """Streams aider's answer lines; turns its errors and retries into notes."""

    def __init__(self):
        self.error = ""  # the error being reported, until a retry or the end
        self.hint = ""
        self.retries = 0
        self.said = False
        self.over = False

    def on_line(self, turn, line):
        if turn.error is not None:
            return  # stopped: the rest is not the answer
        if line.startswith(NO_KEY):
            turn.fail(
                "aider has no model and no API key: set AIDER_MODEL (or AIDER_ARGS=--model "
                "...) and the key of its provider (OPENAI_API_KEY, ANTHROPIC_API_KEY, ...) "
                "where the bridge runs; see the aider profile's README"
            )
            stop(turn)
            return
        found = ERROR.search(line)
        if found:
            self.answer(turn, line[: found.start()], newline=False)
            self.error, self.hint = line[found.end() :].strip(), ""
            return
        if self.error and ERROR_HINT.match(line):
            self.hint = line.strip()
            return
        retry = RETRY.match(line.strip())
        if retry:
            self.retried(turn, float(retry.group(1)))
            return
        if self.error and line.strip() and not STATUS.match(line):
            self.error += " " + line.strip()  # a long error, wrapped
            return
        if STATUS.match(line):
            # After the token count the model's answer is over: what follows
            # is aider at work (the files it edits, its commits).
            self.over = self.over or line.startswith("Tokens:")
            return
        if not self.over:
            self.answer(turn, line)

    def answer(self, turn, text, newline=True):
        if not text.strip() and not self.said:
            return
        self.said = True
        turn.delta(text + ("\n" if newline else ""))

    def retried(self, turn, delay):
        self.retries += 1
        cause = self.error or "an error"
        self.error, self.hint = "", ""
        if self.retries > MAX_RETRIES:
            turn.fail(
                f"the model server failed {self.retries} times in a row ({cause}); the turn "
                f"was stopped after {MAX_RETRIES} retries instead of aider's minute of them"
            )
            stop(turn)
            return
        wait = f", in {delay:.0f} s" if delay >= 1 else ""
        turn.status(
            f"retrying: the model server answered: {cause}, attempt {self.retries + 1} "
            f"of at most {MAX_RETRIES + 1}{wait}"
        )
        self.said = False


# --- one turn -------------------------------------------------------------------------


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
    # aider opens a browser for any URL in an error when it answers yes to
    # everything; `true` is the browser here. Wide lines keep its errors whole.
    os.environ["BROWSER"] = "true"
    os.environ["COLUMNS"] = "10000"
    argv = [executable, "--no-pretty", "--stream" if ctx.streaming else "--no-stream"]
    argv += [f"--chat-history-file={history}", "--restore-chat-history"]
    argv += [f"--input-history-file={os.path.join(folder, session + '.input')}"]
    argv += [f"--read={f.path}" for f in turn.files()]
    argv += [*AIDER.extra_args(), f"--message-file={message}"]
    reader = Reader()

    def on_exit(turn, code):
        answer, error, cleaned = read_turn(history, start)
        if turn.error is not None or code != 0 or error or not answer:
            restore(history, start)  # the next turn does not see a failed one
        else:
            restore(history, start, cleaned)
        if turn.error is not None or code != 0:
            return
        if error:
            turn.fail(f"the model server answered: {error}")
        elif answer:
            turn.final(answer)
        elif reader.error:
            hint = f" ({reader.hint})" if reader.hint else ""
            turn.fail(f"the model server answered: {reader.error}{hint}")
        else:
            lines = turn.reply().strip().splitlines()[-3:]
            turn.fail("aider gave no answer" + (": " + " | ".join(lines) if lines else ""))

    return turn.run(argv, reader.on_line, json_lines=False, on_exit=on_exit)


create_profile(handle)
