"""What the end-to-end suites of the bundled profiles share.

A :class:`Suite` runs one bundled profile with this checkout's ``agentproc``
and checks what a person reads; its ``check_...`` methods are the tests every
CLI's suite runs the same way, with that CLI's data.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.fakemodel import FakeModel, Recorded, Reply, ToolUse

from .conftest import Run, agentproc

#: A session (or thread) id as Claude Code, Codex and Gemini CLI make them.
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class Suite:
    """One bundled profile, as its end-to-end tests run it."""

    profile: str
    #: The program the profile runs, the variable that names another one, and
    #: how to install it (none for a profile that wraps no CLI).
    cli: str = ""
    bin_var: str = ""
    install: str = ""
    #: What else must never reach a person, beyond terminal escapes, tracebacks
    #: and JSON.
    leaks: tuple[str, ...] = ()
    #: Whether :meth:`run_json` also checks that stderr reads plainly.
    plain_stderr: bool = False
    #: Where a model request of the CLI's API carries the conversation.
    conversation_key: str = "messages"

    def run_json(self, env: dict[str, str], cwd: Path, message: str, *more: str) -> dict[str, Any]:
        """``agentproc run PROFILE --json -m MESSAGE MORE...``: the turn's result, whose
        exit code is the command's."""
        result = agentproc("run", self.profile, "--json", "-m", message, *more, env=env, cwd=cwd)
        data = result.json
        assert result.code == data["exit_code"], result
        if self.plain_stderr:
            self.assert_plain(result.err)
        return data

    def assert_plain(self, text: str) -> None:
        """What a person reads: no terminal escapes, no traceback, no JSON blob."""
        for unwanted in ("\x1b", "Traceback", '{"', "{'", *self.leaks):
            assert unwanted not in text, text

    def conversation(self, request: Recorded) -> str:
        """The conversation a model call carried, as one string to search."""
        return json.dumps(request.json.get(self.conversation_key), ensure_ascii=False)

    def check_chat_carries_the_first_turn(
        self, model: FakeModel, env: dict[str, str], cwd: Path
    ) -> Run:
        """``agentproc chat`` with two messages: the second model call carries the first turn."""
        model.script(Reply("First answer about apples."), Reply("Second answer about pears."))
        result = agentproc(
            "chat", self.profile, env=env, cwd=cwd, input=b"tell me about apples\nand pears?\n"
        )
        assert result.code == 0, result
        assert "First answer about apples." in result.out
        assert "Second answer about pears." in result.out
        assert len(model.model_calls) == 2
        second = self.conversation(model.model_calls[1])
        assert "tell me about apples" in second and "First answer about apples." in second
        self.assert_plain(result.err)
        return result

    def check_an_allowed_tool_runs(
        self, model: FakeModel, env: dict[str, str], cwd: Path, tool: ToolUse
    ) -> None:
        """A tool that ``tool`` calls, and ``env`` lets the CLI run, makes
        ``created.txt``; the turn ends with the answer."""
        model.script(tool, Reply("Done."))
        data = self.run_json(env, cwd, "make a file")
        assert data["error"] is None, data
        assert data["reply"] == "Done."
        assert (cwd / "created.txt").exists()

    def check_missing_cli(self, env: dict[str, str], cwd: Path, message: str = "hi") -> Run:
        """Without its CLI on PATH the profile says how to install it: it names the
        CLI (requires), so the bridge says it before starting anything."""
        result = agentproc("run", self.profile, "-m", message, env=env, cwd=cwd)
        assert result.code == 127, result
        assert f"needs {self.cli}" in result.err and "not installed" in result.err
        assert self.install in result.err
        assert self.bin_var in result.err
        self.assert_plain(result.err)
        return result


def folders(parent: Path, *names: str) -> list[Path]:
    """New folders in ``parent`` (sessions belong to the folder they started in)."""
    made = [parent / name for name in names]
    for folder in made:
        folder.mkdir()
    return made


def notes(partials: list[str]) -> list[str]:
    """The notes a wrapper streamed (retries, refusals: the pieces in parentheses)."""
    return [p.strip() for p in partials if p.strip().startswith("(")]
