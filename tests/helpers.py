"""Running the `agentproc` command in tests, as a user would."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

AGENTPROC = str(Path(sys.executable).parent / "agentproc")


@dataclass
class Run:
    code: int
    out: str
    err: str


def check_stderr(err: str) -> None:
    """No Python error reaches the user, whatever happened."""
    assert "Traceback" not in err, err
    assert "Exception ignored" not in err, err


def cli(*args: str | Path, input: bytes | None = None, **kwargs: object) -> Run:
    """Run ``agentproc ARGS`` to the end. stdin is /dev/null unless ``input`` is
    given, so a terminal running pytest never reaches the command."""
    kwargs.setdefault("timeout", 20)
    if input is None:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
    proc = subprocess.run(
        [AGENTPROC, *map(str, args)],
        input=input,
        capture_output=True,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    run = Run(proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8"))
    check_stderr(run.err)
    return run
