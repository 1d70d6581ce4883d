"""What the wheel ships, and where the bundled profiles are found.

The bundled profiles live in the top-level profiles/ folder of the source
tree and ship as package data of "bridge.profiles" (site-packages/bridge/
profiles/ once installed). pyproject.toml lists the packages by hand for that
mapping, so these tests say when a new package is missing from the list, and
build a real wheel to check what it holds and that its profiles are found by
name.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from helpers import check_stderr

from bridge.turn.bundled import BUNDLED_DIR, bundled_names

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
#: What a build reads; the rest of the checkout stays out of the copy.
SOURCES = ("pyproject.toml", "README.md", "agentproc", "bridge", "profiles")


def packages_on_disk() -> set[str]:
    found = set()
    for top in ("agentproc", "bridge"):
        for init in (ROOT / top).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(ROOT).parts))
    return found


def test_every_package_is_listed_for_the_wheel() -> None:
    listed = set(SETUPTOOLS["packages"])
    missing = packages_on_disk() - listed
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"
    assert listed - packages_on_disk() == {"bridge.profiles"}


def test_the_bundled_profiles_ship_from_the_top_level_folder() -> None:
    assert SETUPTOOLS["package-dir"] == {"bridge.profiles": "profiles"}
    assert SETUPTOOLS["package-data"]["bridge.profiles"] == ["*/*"]


def test_a_checkout_finds_its_profiles_folder() -> None:
    assert BUNDLED_DIR == ROOT / "profiles"
    assert "echo" in bundled_names()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the sources (a build writes build/ and
    *.egg-info next to pyproject.toml)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy(path, source / name)
    out = tmp / "dist"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0 and "No matching distribution found for setuptools" in proc.stderr:
        pytest.skip("no package index to fetch setuptools from for the build")
    assert proc.returncode == 0, proc.stderr
    (built,) = out.glob("agentproc-*.whl")
    return built


def test_the_wheel_holds_the_code_and_the_profiles(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for top in ("agentproc", "bridge"):
        for module in (ROOT / top).rglob("*.py"):
            assert module.relative_to(ROOT).as_posix() in names, module
    for name in bundled_names():
        for file in (BUNDLED_DIR / name).iterdir():
            if file.is_file():
                assert f"bridge/profiles/{name}/{file.name}" in names, file
    assert not any(n.startswith("profiles/") for n in names), "profiles/ is not a top-level name"
    assert "bridge/py.typed" in names and "agentproc/py.typed" in names


def test_an_installed_wheel_finds_its_profiles_by_name(wheel: Path, tmp_path: Path) -> None:
    """The wheel unpacked as site-packages would hold it, run from elsewhere:
    the profiles are found beside the package, not in this checkout (PYTHONPATH
    comes before the editable install's finder)."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "AGENTPROC_CACHE_DIR": str(tmp_path / "cache")}
    script = (
        "import sys\n"
        "from bridge.turn.bundled import BUNDLED_DIR\n"
        "print(BUNDLED_DIR, file=sys.stderr)\n"
        "from bridge.cli.console import main\n"
        "main()\n"
    )
    for arg in ("echo", "bundled:echo"):
        proc = subprocess.run(
            [sys.executable, "-c", script, "run", arg, "-m", "hi"],
            capture_output=True,
            text=True,
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )
        check_stderr(proc.stderr)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "You said: hi\n"
        assert proc.stderr.strip() == str(site / "bridge" / "profiles")
