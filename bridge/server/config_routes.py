"""A route of ``bridge.yaml`` made real: its profile found and loaded, and the
folder its agent runs in.

A route's ``profile`` is read by the command line's rule
(:func:`bridge.turn.bundled.resolve_profile_arg`), except that a relative path
starts at the config's folder rather than the current directory; the route
becomes the same :class:`~bridge.store.records.Route` that ``agentproc chat``
would make for it (:func:`bridge.channels.chat.route_for`): ``bundled:NAME`` or
the absolute path of the profile, and the real path of the folder its turns
run in.

The functions raise ValueError with the message for the field they check;
:class:`bridge.server.config_check.Check` records it at that field's line.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from bridge.store.records import Route
from bridge.turn.bundled import BUNDLED_DIR, BUNDLED_PREFIX, bundled_names
from bridge.turn.errors import LaunchError, ProfileError
from bridge.turn.launch import build_plan
from bridge.turn.profile import Profile, load_profile
from bridge.turn.profile_yaml import did_you_mean
from bridge.turn.request import TurnRequest

__all__ = [
    "expand_path",
    "find_profile",
    "load_route_profile",
    "path_is",
    "route_folder",
    "settle_route",
]


def expand_path(text: str, folder: Path) -> Path:
    """``text`` as a path: ``~`` expanded, relative to ``folder``."""
    path = Path(text)
    with contextlib.suppress(RuntimeError):  # ~someone with no home here: taken as written
        path = path.expanduser()
    return folder / path


def path_is(path: Path, what: Literal["exists", "is_dir"]) -> bool:
    """``path.exists()`` or ``path.is_dir()``; False for a name the system cannot
    even look up (too long, say)."""
    try:
        return path.exists() if what == "exists" else path.is_dir()
    except (OSError, ValueError):
        return False


def find_profile(text: str, folder: Path) -> tuple[Path, str, bool]:
    """What a route's ``profile`` names: ``(path to load, route ref, is bundled)``.

    ``bundled:NAME`` is the bundled profile NAME; else an existing file or
    folder (relative to ``folder``) wins; else a bundled profile's name.
    """
    names = bundled_names()

    def guess(name: str) -> str:
        listed = f"; the bundled profiles are: {', '.join(names) or '(none)'}"
        return did_you_mean(name, names) or listed

    if text.startswith(BUNDLED_PREFIX):
        name = text.removeprefix(BUNDLED_PREFIX)
        if name in names:
            return BUNDLED_DIR / name, text, True
        raise ValueError(f"no bundled profile named {name!r}{guess(name)}")
    given = expand_path(text, folder)
    if path_is(given, "exists"):
        return given, str(given.resolve()), False
    if text in names:
        return BUNDLED_DIR / text, BUNDLED_PREFIX + text, True
    if "/" in text or os.sep in text or text.startswith("~") or text.endswith((".yaml", ".yml")):
        raise ValueError(
            f"no profile file or folder {given}; relative paths start at the config's folder"
        )
    raise ValueError(
        f"no bundled profile named {text!r} and no file or folder {given}{guess(text)}"
    )


def load_route_profile(path: Path) -> Profile:
    """The profile at ``path``; ValueError with the profile's own problems, one
    per line below the first, when it does not load."""
    try:
        return load_profile(path)
    except ProfileError as exc:
        text = f"the profile does not load: {exc.message}"
        if exc.hint:
            text += f" ({exc.hint})"
        raise ValueError("\n".join((text, *(f"    {p}" for p in exc.problems)))) from exc


def route_folder(text: str, folder: Path) -> Path:
    """A route's ``cwd``: an existing folder, relative to ``folder``."""
    path = expand_path(text, folder)
    if not path_is(path, "exists"):
        raise ValueError(f"the folder {path} does not exist; create it, or name another")
    if not path_is(path, "is_dir"):
        raise ValueError(f"{path} is a file; cwd must be a folder")
    return path.resolve()


def settle_route(
    name: str,
    ref: str,
    profile: Profile,
    run_in: Path | None,
    fallback: Path,
    env: Mapping[str, str],
) -> tuple[Route, Profile]:
    """The store's :class:`Route` for the route ``name`` and the profile it runs.

    ``run_in`` is the folder the route puts its agent in (its ``cwd``, or the
    config's folder for a bundled profile); the profile gets it as its own
    ``cwd``, so every turn runs there. None leaves the folder to the profile
    (its ``cwd``, else its own folder). The route's folder is computed the way a
    turn computes it; a profile that cannot build a turn at all (its turns will
    say why) is placed in ``fallback``.
    """
    if run_in is not None:
        # Profile cwd is a template: a literal $ is written $$.
        profile = profile.model_copy(update={"cwd": str(run_in).replace("$", "$$")})
    try:
        folder = build_plan(
            profile, TurnRequest("(route)", session_name="default"), environ=env
        ).cwd
    except LaunchError:
        folder = str(run_in or fallback)
    return Route(ref, os.path.realpath(folder), name), profile
