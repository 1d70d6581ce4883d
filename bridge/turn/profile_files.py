"""Profile files without the profile model: finding, reading, naming, template syntax.

Everything here is cheap to import (no YAML, no pydantic), so code that only
needs to find a profile file or read a validated profile from the cache
(:mod:`bridge.turn.profile_cache`) does not pay for the model.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ProfileError, ProfileNotFoundError

#: The one pattern both validation and expansion use, so they cannot disagree.
#: Alternatives, tried at each position from left to right:
#:
#: - ``{{ NAME }}``: a placeholder (spaces inside the braces are allowed, as in
#:   most template languages); text like ``{{.Name}}`` is not a NAME and stays
#:   literal, so Go-style templates passed to an agent CLI survive.
#: - ``${NAME}``: a variable from the bridge's environment.
#: - ``$$``: a literal ``$``.
#: - ``${`` followed by anything else: malformed, an error at load time.
#:
#: A ``$`` followed by anything else is literal (``$HOME`` is not expanded: no
#: shell is involved, and silently half-supporting shell syntax would mislead).
TOKEN_RE = re.compile(
    r"\{\{\s*(?P<placeholder>[A-Za-z_][A-Za-z0-9_]*)\s*\}\}"
    r"|\$(?:\{(?P<var>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<dollar>\$)|(?P<bad>\{))"
)

#: A POSIX-portable environment variable name.
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: File names looked for when a profile path is a folder, in this order.
PROFILE_FILE_NAMES = ("profile.yaml", "profile.yml")

#: A profile is a few dozen lines. A file this big is almost certainly the wrong
#: file, and refusing it keeps a mistake from reading a huge file into memory.
MAX_PROFILE_BYTES = 1024 * 1024


def resolve_profile_path(path: str | os.PathLike[str]) -> Path:
    """The profile file ``path`` names: the file itself, or ``profile.yaml``
    (or ``profile.yml``) in a folder. Raises ProfileNotFoundError."""
    given = Path(path)
    if given.is_dir():
        for name in PROFILE_FILE_NAMES:
            candidate = given / name
            if candidate.is_file():
                return candidate
        raise ProfileNotFoundError(
            f"no profile in folder {given}: expected {' or '.join(PROFILE_FILE_NAMES)}",
            path=str(given),
            hint="create profile.yaml there, or pass the path of a profile file",
        )
    if not given.exists():
        raise ProfileNotFoundError(
            f"profile not found: {given}",
            path=str(given),
            hint="pass a profile YAML file or a folder containing profile.yaml",
        )
    return given


def read_profile_bytes(file: Path) -> bytes:
    """The bytes of a profile file; ProfileError when unreadable or far too big."""
    try:
        with file.open("rb") as fh:
            raw = fh.read(MAX_PROFILE_BYTES + 1)
    except OSError as exc:
        raise ProfileError(
            f"cannot read profile {file}: {exc.strerror or exc}",
            path=str(file),
            hint="check that the file exists and is readable",
        ) from exc
    if len(raw) > MAX_PROFILE_BYTES:
        raise ProfileError(
            f"profile {file} is larger than {MAX_PROFILE_BYTES // 1024} KiB; "
            "is this the right file?",
            path=str(file),
        )
    return raw


def display_name(name: str | None, source: Path | None) -> str:
    """A profile's name for people: ``name``, else the folder of a ``profile.yaml``,
    else the file's stem."""
    if name:
        return name
    if source is None:
        return "profile"
    if source.name in PROFILE_FILE_NAMES:
        return source.parent.name or source.stem
    return source.stem


class ProfileProperties:
    """What a profile says about itself beyond its fields; shared by the model
    (:class:`bridge.turn.profile.Profile`) and a cached profile
    (:class:`bridge.turn.profile_cache.ProfileView`), so the two cannot disagree."""

    if TYPE_CHECKING:
        name: str | None
        cwd: str | None
        _source: Path | None
        _load_warnings: tuple[str, ...]
        _caller_cwd: bool
        _reference: bool

    @property
    def source(self) -> Path | None:
        """The file this profile was loaded from, or None."""
        return self._source

    @property
    def profile_dir(self) -> Path:
        """The folder relative paths are resolved against: the profile file's folder,
        or the current directory for a profile not loaded from a file."""
        if self._source is not None:
            return self._source.parent
        return Path.cwd()

    @property
    def load_warnings(self) -> tuple[str, ...]:
        """Notes from loading the file, each ``FILE:LINE: ...``: what a
        reference-format profile holds that this bridge does not use. Every
        launch plan built from the profile carries them among its warnings."""
        return self._load_warnings

    @property
    def is_reference_format(self) -> bool:
        """True when the file wraps its fields in ``agentproc:`` (the reference format)."""
        return self._reference

    @property
    def runs_in_caller_cwd(self) -> bool:
        """True for a reference-format profile without ``cwd``: the reference runs
        such an agent in the bridge's current directory, and so does this bridge."""
        return self._caller_cwd and self.cwd is None

    @property
    def display_name(self) -> str:
        """``name``, else the folder of a ``profile.yaml``, else the file's stem."""
        return display_name(self.name, self._source)
