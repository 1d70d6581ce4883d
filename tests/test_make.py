"""The Makefile, run for real in a temporary copy of the files it reads.

Installing the project is what makes `make run` slow, so these tests give the
copy a ready .venv (links to the one running the tests) with fresh stamps, and
look at what make does around it: the message it passes, the venv it keeps or
rebuilds, and what it would install for which target.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import AGENTPROC

ROOT = Path(__file__).resolve().parent.parent
MAKE = shutil.which("make")

pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def make(
    folder: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    assert MAKE is not None
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    environ.pop("MESSAGE", None)
    environ.update(env or {})
    return subprocess.run(
        [MAKE, "--no-print-directory", *args],
        cwd=folder,
        env=environ,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def project_copy(tmp_path: Path, *, venv: bool) -> Path:
    """The Makefile and pyproject.toml in a fresh folder; with ``venv``, a .venv
    whose python and agentproc are this test run's, and up-to-date stamps."""
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(ROOT / "Makefile", folder)
    shutil.copy(ROOT / "pyproject.toml", folder)
    if venv:
        bin_dir = folder / ".venv" / "bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / "python").symlink_to(sys.executable)
        (bin_dir / "agentproc").symlink_to(AGENTPROC)
        stamp_up_to_date(folder)
    return folder


def stamp_up_to_date(folder: Path) -> None:
    later = (folder / "pyproject.toml").stat().st_mtime + 10
    for name in (".installed", ".installed-run", ".installed-dev"):
        stamp = folder / ".venv" / name
        stamp.touch()
        os.utime(stamp, (later, later))


def old_python(tmp_path: Path) -> Path:
    """A Python older than 3.11: a real one when the machine has one, else a
    stand-in that answers the version questions the way an old one would."""
    candidates = [shutil.which(f"python3.{minor}") for minor in (10, 9, 8)]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[0]*/bin/python3")))
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.[89]*/bin/python3")))
    for found in candidates:
        if found and subprocess.run([found, "-c", "pass"], capture_output=True).returncode == 0:
            return Path(found)
    stand_in = tmp_path / "python3.9"
    stand_in.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        '  -V|--version) echo "Python 3.9.18" ;;\n'
        "  *print*) echo False ;;\n"
        "  *) exit 1 ;;\n"
        "esac\n"
    )
    stand_in.chmod(0o755)
    return stand_in


# --- make run MESSAGE=... ------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    ["$HOME", "costs $$5, $(id) and `id`", "\"double\" 'single' \\back", "-starts with a dash"],
)
def test_make_run_passes_the_message_as_typed(tmp_path: Path, message: str) -> None:
    folder = project_copy(tmp_path, venv=True)
    proc = make(folder, "run", f"MESSAGE={message}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"You said: {message}\n"
    assert "pip install" not in proc.stdout + proc.stderr


def test_make_run_takes_the_message_from_the_environment_too(tmp_path: Path) -> None:
    folder = project_copy(tmp_path, venv=True)
    proc = make(folder, "run", env={"MESSAGE": "$HOME stays"})
    assert (proc.returncode, proc.stdout) == (0, "You said: $HOME stays\n")


# --- what gets installed for what ------------------------------------------------------------


def test_make_run_installs_only_what_running_needs(tmp_path: Path) -> None:
    folder = project_copy(tmp_path, venv=False)
    planned = make(folder, "-n", "run").stdout
    assert "pip install --quiet -e .\n" in planned
    assert "[dev]" not in planned
    planned = make(folder, "-n", "pytest").stdout
    assert "pip install --quiet -e .\n" in planned and "-e '.[dev]'" in planned


def test_an_up_to_date_venv_is_left_alone(tmp_path: Path) -> None:
    folder = project_copy(tmp_path, venv=True)
    planned = make(folder, "-n", "run").stdout
    assert "pip install" not in planned and "venv" not in planned.replace(".venv/bin", "")


# --- a .venv made by a Python that is too old ------------------------------------------------


def test_a_venv_made_by_an_old_python_is_rebuilt(tmp_path: Path) -> None:
    folder = project_copy(tmp_path, venv=False)
    old = old_python(tmp_path)
    bin_dir = folder / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(old)
    stamp_up_to_date(folder)

    # The stamps are fresh, yet make plans the install again ...
    planned = make(folder, "-n", "run").stdout
    assert "pip install --quiet -e ." in planned

    # ... after making the venv anew with a Python that is recent enough.
    proc = make(folder, "venv", f"PY={sys.executable}")
    assert proc.returncode == 0, proc.stderr
    assert "older than 3.11" in proc.stdout
    version = subprocess.run(
        [str(bin_dir / "python"), "-c", "import sys; print(sys.version_info >= (3, 11))"],
        capture_output=True,
        text=True,
    )
    assert version.stdout.strip() == "True"


def test_a_python_too_old_to_make_the_venv_is_named(tmp_path: Path) -> None:
    folder = project_copy(tmp_path, venv=False)
    proc = make(folder, "venv", f"PY={old_python(tmp_path)}")
    assert proc.returncode != 0
    assert "needs Python 3.11 or newer" in proc.stderr and "PY=" in proc.stderr
    assert not (folder / ".venv").exists()
