"""What `agentproc` loads to start: the guards behind the start-up bench ratios.

Speed itself is measured in bench/ (start-version, start-run); these tests
pin what makes it fast, so a stray top-level import cannot undo it unseen.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from helpers import AGENTPROC, check_stderr


def imported(args: list[str], env: dict[str, str]) -> set[str]:
    """The modules `agentproc ARGS` imports (python -X importtime)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", AGENTPROC, *args],
        capture_output=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    err = proc.stderr.decode()
    check_stderr(err)
    assert proc.returncode == 0, err
    names = set()
    for line in err.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def test_version_imports_no_command_line_library(tmp_path: Path) -> None:
    env = {**os.environ, "AGENTPROC_CACHE_DIR": str(tmp_path)}
    names = imported(["--version"], env)
    assert "click" not in names and "bridge.cli.main" not in names
    assert "prompt_toolkit" not in names
    out = subprocess.run([AGENTPROC, "--version"], capture_output=True, check=True, timeout=30)
    assert out.stdout.decode().startswith("agentproc, version ")


def test_a_plain_run_needs_no_event_loop_and_no_model_once_cached(
    make_profile: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_profile('command: /bin/sh\nargs: ["-c", "echo hi"]\n')
    env = {**os.environ, "AGENTPROC_CACHE_DIR": str(tmp_path / "cache")}
    first = imported(["run", str(path), "-m", "x"], env)
    assert "pydantic" in first  # the first run validates the file with the model
    assert "prompt_toolkit" not in first  # only an interactive chat uses it
    again = imported(["run", str(path), "-m", "x"], env)
    for heavy in ("anyio", "asyncio", "pydantic", "yaml", "prompt_toolkit"):
        assert heavy not in again, heavy


def test_a_permission_profile_still_runs_on_the_event_loop(
    make_profile: Callable[..., Path], tmp_path: Path
) -> None:
    path = make_profile('command: /bin/sh\nargs: ["-c", "echo hi"]\npermission: true\n')
    env = {**os.environ, "AGENTPROC_CACHE_DIR": str(tmp_path / "cache")}
    imported(["run", str(path), "-m", "x"], env)
    assert "anyio" in imported(["run", str(path), "-m", "x"], env)
