"""Shared set-up for the end-to-end suite.

Every test gets a private home folder (so no CLI reads or writes the real
``~/.claude``, ``~/.codex``, ``~/.gemini``, ...), a fake model server on
loopback, and runs the real ``agentproc`` command of this checkout. ``make
e2e`` runs the suite in a network namespace of its own with only loopback up,
so a request that would leave the machine fails instead of leaving.

Set ``E2E_CAPTURE=1`` to have the tests that name a scenario record the real
CLI's run into ``tests/fake_clis/<cli>/<scenario>.jsonl`` (recording.py): the
recorded streams the fast suite replays are captured from the real programs
this way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from e2e.fakemodel import FakeModel

ROOT = Path(__file__).resolve().parents[2]
E2E = ROOT / "e2e"
#: Where `make e2e` installs the pinned CLIs.
NODE_BIN = E2E / "node_modules" / ".bin"
AIDER_BIN = E2E / ".venv-aider" / "bin"
FAKE_CLIS = ROOT / "tests" / "fake_clis"
AGENTPROC = str(Path(sys.executable).parent / "agentproc")
CAPTURE = os.environ.get("E2E_CAPTURE") == "1"


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> dict[str, object]:
        value = json.loads(self.out)
        assert isinstance(value, dict)
        return value


def agentproc(
    *args: str | Path,
    env: dict[str, str],
    cwd: Path,
    input: bytes | None = None,
    timeout: float = 90,
) -> Run:
    """Run this checkout's ``agentproc ARGS`` in ``cwd`` with exactly ``env``."""
    proc = subprocess.run(
        [AGENTPROC, *map(str, args)],
        env=env,
        cwd=cwd,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    run = Run(proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8"))
    assert "Traceback" not in run.err, run.err
    return run


@pytest.fixture
def model() -> Iterator[FakeModel]:
    with FakeModel() as fake:
        yield fake


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The folder the agent runs in (its "repository")."""
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def base_env(home: Path, *, with_clis: bool = True) -> dict[str, str]:
    """A clean environment: a private home, the pinned CLIs on PATH, no telemetry."""
    path = [str(NODE_BIN), str(AIDER_BIN)] if with_clis else []
    path += ["/usr/local/bin", "/usr/bin", "/bin"]
    return {
        "PATH": os.pathsep.join(path),
        "HOME": str(home),
        "USER": "e2e",
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "TMPDIR": str(home.parent),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "AGENTPROC_DATA_DIR": str(home / "agentproc-data"),
        # Off for every CLI that reads them; each test module adds its CLI's own.
        "DO_NOT_TRACK": "1",
        "CI": "1",
    }


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    return base_env(home)
