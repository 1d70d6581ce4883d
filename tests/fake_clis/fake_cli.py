"""A stand-in for an agent CLI: replays a recorded stream and logs how it was called.

Tests put a small launcher named like the real CLI (``claude``, ``codex``, ...)
on PATH; it calls :func:`main` with the CLI's name. The fake then

- appends one JSON line to ``$FAKE_CLI_LOG`` with its argv, working directory
  and what it read on stdin;
- replays ``<cli>/<scenario>.jsonl`` from this folder (``$FAKE_CLI_SCENARIO``,
  default ``first``) to stdout, line by line, flushing each.

A replayed line that is a JSON object with a ``"fake"`` key is a directive
instead of output: ``{"fake": "stderr", "text": ...}`` writes to stderr,
``{"fake": "stdout", "text": ...}`` writes raw text to stdout (for CLIs without
JSON output), ``{"fake": "history", "text": ...}`` appends to the file named by
``--chat-history-file`` (aider), ``{"fake": "exit", "code": N}`` exits.

The ``stderr`` scenario replays ``first`` while writing several MiB to stderr;
``missing`` is never replayed (the test leaves the CLI off PATH).
"""

from __future__ import annotations

import json
import os
import select
import sys
from pathlib import Path

HERE = Path(__file__).parent
#: How much the ``stderr`` scenario writes: well over any pipe buffer.
STDERR_FLOOD_BYTES = 4 * 1024 * 1024
#: How long the fake Claude waits for stdin to be closed after its result.
STDIN_EOF_WAIT_SECS = 5.0


def log(entry: dict[str, object]) -> None:
    path = os.environ.get("FAKE_CLI_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")


def option(argv: list[str], name: str) -> str | None:
    """The value of ``--name=value`` or ``--name value`` in argv."""
    for i, arg in enumerate(argv):
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
    return None


def out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def flood_stderr() -> None:
    line = ("x" * 1023 + "\n").encode()
    for _ in range(STDERR_FLOOD_BYTES // len(line)):
        sys.stderr.buffer.write(line)
    sys.stderr.buffer.flush()


def read_claude_stdin(entry: dict[str, object]) -> None:
    """Answer the initialize request, read the user message."""
    received: list[object] = []
    entry["stdin_lines"] = received
    for raw in sys.stdin:
        message = json.loads(raw)
        received.append(message)
        if message.get("type") == "control_request":
            reply = {
                "type": "control_response",
                "response": {
                    "subtype": "success",
                    "request_id": message.get("request_id"),
                    "response": {},
                },
            }
            out(json.dumps(reply) + "\n")
        if message.get("type") == "user":
            return


def replay(cli: str, scenario: str, entry: dict[str, object]) -> int:
    name = "first" if scenario == "stderr" else scenario
    lines = (HERE / cli / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    argv: list[str] = entry["argv"]  # type: ignore[assignment]
    responses: list[object] = []
    entry["responses"] = responses
    for index, line in enumerate(lines):
        if scenario == "stderr" and index == 1:
            flood_stderr()
        if not line.strip():
            continue
        data = json.loads(line)
        directive = data.get("fake") if isinstance(data, dict) else None
        if directive == "stderr":
            sys.stderr.write(data["text"])
            sys.stderr.flush()
        elif directive == "stdout":
            out(data["text"])
        elif directive == "history":
            history = option(argv, "--chat-history-file")
            assert history, "no --chat-history-file"
            with open(history, "a", encoding="utf-8") as fh:
                fh.write(data["text"])
        elif directive == "exit":
            return int(data["code"])
        elif data.get("type") == "stream_event" and "--include-partial-messages" not in argv:
            continue  # Claude Code sends token events only when asked to
        else:
            out(line + "\n")
            if data.get("type") == "result":
                entry["result_sent"] = True
            if data.get("type") == "control_request":
                # The CLI waits for the answer before it goes on.
                responses.append(json.loads(sys.stdin.readline() or "null"))
    if scenario == "stderr":
        flood_stderr()
    return 0


def main(cli: str) -> None:
    scenario = os.environ.get("FAKE_CLI_SCENARIO", "first")
    argv = sys.argv[1:]
    entry: dict[str, object] = {"cli": cli, "argv": argv, "cwd": os.getcwd()}
    try:
        if cli == "claude":
            read_claude_stdin(entry)
        elif not sys.stdin.isatty():
            entry["stdin"] = sys.stdin.read()
        message_file = option(argv, "--message-file")
        if message_file:
            entry["message_file"] = Path(message_file).read_text(encoding="utf-8")
        code = replay(cli, scenario, entry)
        if cli == "claude" and code == 0 and entry.get("result_sent"):
            # Like the real CLI in stream-json input mode: after a result it
            # waits for more input, and exits only when stdin is closed.
            ready, _, _ = select.select([sys.stdin], [], [], STDIN_EOF_WAIT_SECS)
            if not ready or sys.stdin.read():
                sys.stderr.write("fake claude: stdin was not closed after the result\n")
                code = 9
    finally:
        log(entry)
    sys.exit(code)
