"""Shared fixtures: real profiles written to temporary folders."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

AGENTS = Path(__file__).parent / "agents"
PYTHON = sys.executable
ROOT = Path(__file__).resolve().parent.parent

# The commands and SDK agents the tests start import this checkout's code, also
# when the venv's editable install points at another checkout (a git worktree
# sharing one venv): PYTHONPATH comes before the editable install's finder.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
)


@pytest.fixture
def make_profile(tmp_path: Path) -> Callable[..., Path]:
    """Write a profile.yaml into a fresh folder and return its path.

    ``make_profile("command: sh -c 'echo hi'", timeout_secs=2)`` — the text is
    dedented; keyword fields are appended as YAML.
    """
    counter = iter(range(1_000_000))

    def make(text: str = "", **fields: object) -> Path:
        import yaml

        folder = tmp_path / f"profile{next(counter)}"
        folder.mkdir()
        body = textwrap.dedent(text).strip() + "\n"
        if fields:
            body += yaml.safe_dump(fields, allow_unicode=True)
        path = folder / "profile.yaml"
        path.write_text(body, encoding="utf-8")
        return path

    return make


@pytest.fixture
def py_agent(make_profile: Callable[..., Path]) -> Callable[..., Path]:
    """A profile running a Python script from tests/agents with this interpreter."""

    def make(script: str, **fields: object) -> Path:
        fields.setdefault("command", PYTHON)
        fields.setdefault("args", [str(AGENTS / script)])
        return make_profile("", **fields)

    return make
