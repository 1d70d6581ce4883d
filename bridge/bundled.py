"""Profiles that ship inside the package, found by name.

Each bundled profile is a folder under ``bridge/profiles/`` holding a
``profile.yaml``, its agent and a README; the folder's name is the profile's
name (``claude-code``, ``codex``, ``echo``, ...). They are package data, so an
installed wheel has them on disk and ``agentproc run codex`` works without a
checkout or a network.

:func:`resolve_profile_arg` is the one rule for a profile argument on the
command line: an existing path is a path; otherwise it is a bundled name;
otherwise it is an error that lists the names. :func:`~bridge.profile.load_profile`
itself stays path-based.
"""

from __future__ import annotations

import difflib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from bridge.errors import ProfileError, ProfileNotFoundError
from bridge.profile import PROFILE_FILE_NAMES, Profile, load_profile

__all__ = [
    "BUNDLED_DIR",
    "BundledProfile",
    "bundled_names",
    "copy_bundled",
    "find_bundled",
    "list_bundled",
    "resolve_profile_arg",
]

#: Where the bundled profile folders live, inside the installed package.
BUNDLED_DIR = Path(__file__).resolve().parent / "profiles"

#: Never copied out with a profile: caches a run may have left in the package.
_COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


@dataclass(frozen=True)
class BundledProfile:
    """One bundled profile: its name, folder, profile file and what it says about itself."""

    name: str
    folder: Path
    file: Path
    description: str
    tags: tuple[str, ...]

    def load(self) -> Profile:
        return load_profile(self.file)


def _profile_file(folder: Path) -> Path | None:
    for file_name in PROFILE_FILE_NAMES:
        candidate = folder / file_name
        if candidate.is_file():
            return candidate
    return None


def bundled_names() -> list[str]:
    """The names of the bundled profiles, sorted."""
    if not BUNDLED_DIR.is_dir():
        return []
    return sorted(
        entry.name
        for entry in BUNDLED_DIR.iterdir()
        if entry.is_dir() and _profile_file(entry) is not None
    )


def find_bundled(name: str) -> BundledProfile | None:
    """The bundled profile called ``name``, or None. Names are folder names, exactly."""
    if name not in bundled_names():
        return None
    folder = BUNDLED_DIR / name
    file = _profile_file(folder)
    assert file is not None
    profile = load_profile(file)
    return BundledProfile(name, folder, file, profile.description, tuple(profile.tags))


def list_bundled() -> list[BundledProfile]:
    """Every bundled profile, by name. Raises ProfileError if one is broken (a packaging bug)."""
    found = [find_bundled(name) for name in bundled_names()]
    return [b for b in found if b is not None]


def _not_found(arg: str) -> ProfileNotFoundError:
    names = bundled_names()
    close = difflib.get_close_matches(arg, names, n=1, cutoff=0.6)
    guess = f"did you mean '{close[0]}'? " if close else ""
    looks_like_path = os.sep in arg or "/" in arg or arg.endswith((".yaml", ".yml"))
    what = "no such profile file or folder" if looks_like_path else "no bundled profile named"
    return ProfileNotFoundError(
        f"profile not found: {what} {arg!r}",
        path=arg,
        hint=f"{guess}pass a profile file or folder, or one of the bundled profiles: "
        f"{', '.join(names) or '(none)'} (see `agentproc profiles list`)",
    )


def resolve_profile_arg(arg: str) -> tuple[Path, bool]:
    """What a profile argument names: ``(path, is_bundled)``.

    An existing file or folder wins, so a folder called ``codex`` in the
    current directory is used rather than the bundled ``codex``. Otherwise a
    bundled name gives that profile's file. Otherwise ProfileNotFoundError,
    with the bundled names and a "did you mean".
    """
    given = Path(arg)
    if given.exists():
        return given, False
    bundled = BUNDLED_DIR / arg
    if arg in bundled_names():
        file = _profile_file(bundled)
        assert file is not None
        return file, True
    raise _not_found(arg)


def load_profile_arg(arg: str, cwd: str | None = None) -> tuple[Profile, str | None]:
    """Load the profile ``arg`` names (a path, or a bundled profile's name) and
    give the working directory to run its turns in: ``cwd`` when given, else
    the caller's current directory for a bundled profile (its own folder is
    inside the installed package), else None (the profile decides)."""
    path, bundled = resolve_profile_arg(arg)
    if bundled and cwd is None:
        cwd = os.getcwd()
    return load_profile(path), cwd


def copy_bundled(name: str, dest: str | os.PathLike[str] | None = None) -> Path:
    """Copy the bundled profile ``name`` to ``dest`` (default ``./NAME``) for editing.

    ``dest`` must not exist, or be an empty folder. Returns the new folder.
    """
    if name not in bundled_names():
        raise _not_found(name)
    target = Path(dest) if dest is not None else Path(name)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ProfileError(
            f"cannot copy the profile to {target}: it already exists and is not an empty folder",
            path=str(target),
            hint="name a new folder: agentproc profiles init NAME DIR",
        )
    try:
        shutil.copytree(BUNDLED_DIR / name, target, ignore=_COPY_IGNORE, dirs_exist_ok=True)
    except OSError as exc:
        raise ProfileError(
            f"cannot copy the profile to {target}: {exc.strerror or exc}",
            path=str(target),
            hint="check that the folder is writable",
        ) from exc
    return target
