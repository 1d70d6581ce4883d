"""Profiles that ship inside the package, found by name.

Each bundled profile is a folder holding a ``profile.yaml``, its agent and a
README; the folder's name is the profile's name (``claude-code``, ``codex``,
``echo``, ...). In the source tree they live in the top-level ``profiles/``
folder; the wheel ships them as package data at ``bridge/profiles/``, so an
installed copy has them on disk and ``agentproc run codex`` works without a
checkout or a network. :data:`BUNDLED_DIR` is whichever of the two holds them
(see :func:`_find_bundled_dir`).

:func:`resolve_profile_arg` is the one rule for a profile argument on the
command line: ``bundled:NAME`` is always the bundled profile NAME; otherwise an
existing path is a path; otherwise it is a bundled name; otherwise it is an
error that lists the names. :func:`~bridge.turn.profile.load_profile` itself stays
path-based.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, overload

from bridge.turn.profile_files import PROFILE_FILE_NAMES

from .errors import ProfileError, ProfileNotFoundError

if TYPE_CHECKING:
    from bridge.turn.profile import Profile
    from bridge.turn.profile_cache import ProfileView

__all__ = [
    "BUNDLED_DIR",
    "BUNDLED_PREFIX",
    "BundledProfile",
    "bundled_names",
    "copy_bundled",
    "find_bundled",
    "list_bundled",
    "resolve_profile_arg",
]


#: Names a bundled profile explicitly: ``bundled:codex`` is the bundled codex
#: even when a file or folder called ``codex`` is in the current directory.
BUNDLED_PREFIX = "bundled:"

#: Never copied out with a profile: caches a run may have left in the package.
#: What is not copied out of a bundled profile's folder.
_COPY_IGNORE_PATTERNS = ("__pycache__", "*.pyc", ".*")


@dataclass(frozen=True)
class BundledProfile:
    """One bundled profile: its name, folder, profile file and what it says about itself."""

    name: str
    folder: Path
    file: Path
    description: str
    tags: tuple[str, ...]

    def load(self) -> Profile:
        from bridge.turn.profile import load_profile

        return load_profile(self.file)


def _profile_file(folder: Path) -> Path | None:
    for file_name in PROFILE_FILE_NAMES:
        candidate = folder / file_name
        if candidate.is_file():
            return candidate
    return None


def _holds_profiles(folder: Path) -> bool:
    """Whether ``folder`` has at least one profile folder in it (not only,
    say, the ``__pycache__`` an older layout left behind)."""
    try:
        return any(entry.is_dir() and _profile_file(entry) for entry in folder.iterdir())
    except OSError:
        return False


def _find_bundled_dir() -> Path:
    """Where the bundled profile folders are: beside the installed package
    (``site-packages/bridge/profiles``, where the wheel puts them), else the
    top-level ``profiles/`` of the source checkout this package runs from (an
    editable install or a ``PYTHONPATH`` pointing at the checkout). A few
    ``stat`` calls, no ``importlib.resources``: this runs on the start-up path
    of ``agentproc run``."""
    package = Path(__file__).resolve().parent.parent
    beside = package / "profiles"
    for candidate in (beside, package.parent / "profiles"):
        if _holds_profiles(candidate):
            return candidate
    return beside


#: Where the bundled profile folders live (see :func:`_find_bundled_dir`).
BUNDLED_DIR = _find_bundled_dir()


def bundled_names() -> list[str]:
    """The names of the bundled profiles, sorted."""
    if not BUNDLED_DIR.is_dir():
        return []
    return sorted(
        entry.name
        for entry in BUNDLED_DIR.iterdir()
        if entry.is_dir() and _profile_file(entry) is not None
    )


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; a name the system cannot even look up (too
    long, say) does not."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def find_bundled(name: str) -> BundledProfile | None:
    """The bundled profile called ``name`` (or ``bundled:name``), or None.
    Names are folder names, exactly."""
    name = name.removeprefix(BUNDLED_PREFIX)
    if name not in bundled_names():
        return None
    folder = BUNDLED_DIR / name
    file = _profile_file(folder)
    assert file is not None
    from bridge.turn.profile import load_profile

    profile = load_profile(file)
    return BundledProfile(name, folder, file, profile.description, tuple(profile.tags))


def list_bundled() -> list[BundledProfile]:
    """Every bundled profile, by name. Raises ProfileError if one is broken (a packaging bug)."""
    found = [find_bundled(name) for name in bundled_names()]
    return [b for b in found if b is not None]


def _not_found(arg: str) -> ProfileNotFoundError:
    explicit = arg.startswith(BUNDLED_PREFIX)
    name = arg.removeprefix(BUNDLED_PREFIX)
    names = bundled_names()
    import difflib

    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    guess = f"did you mean '{BUNDLED_PREFIX if explicit else ''}{close[0]}'? " if close else ""
    if explicit:
        message = f"profile not found: no bundled profile named {name!r}"
    else:
        looks_like_path = os.sep in arg or "/" in arg or arg.endswith((".yaml", ".yml"))
        what = "no such profile file or folder" if looks_like_path else "no bundled profile named"
        message = f"profile not found: {what} {arg!r}"
    return ProfileNotFoundError(
        message,
        path=arg,
        hint=f"{guess}pass a profile file or folder, or one of the bundled profiles: "
        f"{', '.join(names) or '(none)'} (see `agentproc profiles list`)",
    )


def shadowed_bundled_name(arg: str) -> str | None:
    """The bundled profile a path argument is named like (``codex``,
    ``./codex/``), or None."""
    if arg.startswith(BUNDLED_PREFIX) or not arg.strip():
        return None
    name = os.path.normpath(arg)
    if os.sep in name or "/" in name:
        return None
    return name if name in bundled_names() else None


def resolve_profile_arg(arg: str) -> tuple[Path, bool]:
    """What a profile argument names: ``(path, is_bundled)``.

    ``bundled:NAME`` is the bundled profile NAME, whatever the current
    directory holds. Otherwise an existing file or folder wins, so a folder
    called ``codex`` in the current directory is used rather than the bundled
    ``codex``. Otherwise a bundled name gives that profile's file. Otherwise
    ProfileNotFoundError, with the bundled names and a "did you mean".
    """
    if arg.startswith(BUNDLED_PREFIX):
        name = arg.removeprefix(BUNDLED_PREFIX)
        if name not in bundled_names():
            raise _not_found(arg)
        file = _profile_file(BUNDLED_DIR / name)
        assert file is not None
        return file, True
    given = Path(arg)
    if _exists(given):
        return given, False
    if arg in bundled_names():
        file = _profile_file(BUNDLED_DIR / arg)
        assert file is not None
        return file, True
    raise _not_found(arg)


@overload
def load_profile_arg(
    arg: str, cwd: str | None = None, *, cached: Literal[False] = False
) -> tuple[Profile, str | None]: ...
@overload
def load_profile_arg(
    arg: str, cwd: str | None = None, *, cached: bool
) -> tuple[Profile | ProfileView, str | None]: ...
def load_profile_arg(
    arg: str, cwd: str | None = None, *, cached: bool = False
) -> tuple[Profile | ProfileView, str | None]:
    """Load the profile ``arg`` names (a path, a bundled profile's name, or
    ``bundled:NAME``) and give the working directory to run its turns in:
    ``cwd`` when given, else the caller's current directory for a bundled
    profile (its own folder is inside the installed package), else None (the
    profile decides).

    When a local file or folder named like a bundled profile fails to load,
    the error's hint says that the bundled one exists and how to name it.
    ``cached`` reads an unchanged profile from the cache of validated
    profiles (:mod:`bridge.turn.profile_cache`), for one-shot commands.
    """
    path, bundled = resolve_profile_arg(arg)
    profile: Profile | ProfileView
    try:
        if cached:
            from bridge.turn.profile_cache import load_profile_cached

            profile = load_profile_cached(path)
        else:
            from bridge.turn.profile import load_profile

            profile = load_profile(path)
    except ProfileError as exc:
        name = None if bundled else shadowed_bundled_name(arg)
        if name is not None:
            note = (
                f"'{arg}' is the local {'folder' if path.is_dir() else 'file'} {path.resolve()}; "
                f"a bundled profile named {name!r} exists too: to run it, "
                f"write {BUNDLED_PREFIX}{name}"
            )
            exc.hint = f"{note}; {exc.hint}" if exc.hint else note
        raise
    if bundled and cwd is None:
        cwd = os.getcwd()
    return profile, cwd


def copy_bundled(name: str, dest: str | os.PathLike[str] | None = None) -> Path:
    """Copy the bundled profile ``name`` to ``dest`` (default ``./NAME``) for editing.

    ``dest`` must not exist, or be an empty folder. Returns the new folder.
    ``name`` may be written ``bundled:NAME``.
    """
    name = name.removeprefix(BUNDLED_PREFIX)
    if name not in bundled_names():
        raise _not_found(name)
    target = Path(dest) if dest is not None else Path(name)
    try:
        occupied = target.exists() and (not target.is_dir() or any(target.iterdir()))
    except (OSError, ValueError) as exc:
        raise ProfileError(
            f"cannot copy the profile to {target}: {getattr(exc, 'strerror', None) or exc}",
            path=str(target),
            hint="name another folder: agentproc profiles init NAME DIR",
        ) from exc
    if occupied:
        raise ProfileError(
            f"cannot copy the profile to {target}: it already exists and is not an empty folder",
            path=str(target),
            hint="name a new folder: agentproc profiles init NAME DIR",
        )
    import shutil

    try:
        shutil.copytree(
            BUNDLED_DIR / name,
            target,
            ignore=shutil.ignore_patterns(*_COPY_IGNORE_PATTERNS),
            dirs_exist_ok=True,
        )
    except OSError as exc:
        raise ProfileError(
            f"cannot copy the profile to {target}: {exc.strerror or exc}",
            path=str(target),
            hint="check that the folder is writable",
        ) from exc
    return target
