"""Reference-format profiles: files written for the reference implementation of the wire.

Such a file wraps the profile's fields in an ``agentproc:`` block next to
metadata for people and tools (name, description, version, the CLI to install,
...). It is read as it is: the block holds the fields, ``name``,
``description`` and ``tags`` come from the top level, other top-level keys are
reported as ignored, and a field left out means what it means in the reference
(``timeout_secs`` is 1800, no ``cwd`` runs the agent in the bridge's current
directory, no ``env_allowlist`` lets ``${VAR}`` read the variables the file
names). The reference's own fields are understood too: ``env_inherit:
minimal`` means ``infra``, and ``executor`` and ``send_error_reply`` are noted
as ignored or refused with a reason.

:func:`from_reference` turns the parsed file into native fields for
:class:`~bridge.turn.profile.Profile` (which :func:`~bridge.turn.profile.load_profile_text`
validates as usual), and :func:`native_profile_text` writes a loaded
reference-format profile back as a native profile file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from agentproc import wire
from bridge.turn.profile_files import TOKEN_RE
from bridge.turn.profile_yaml import Lines, Loc, show_value

if TYPE_CHECKING:
    from bridge.turn.profile import Profile

#: The key that marks a reference-format file.
REFERENCE_KEY = "agentproc"

#: The reference's timeout when ``timeout_secs`` is left out.
REFERENCE_TIMEOUT_SECS = 1800

#: Top-level keys of a reference file that are profile fields here too.
_REFERENCE_METADATA_FIELDS = ("name", "description", "tags")


def inherit_alias(value: object) -> object:
    """``env_inherit``'s value with the reference's names read as this bridge's."""
    # The reference implementation of the wire calls the infra set "minimal".
    return "infra" if value == "minimal" else value


@dataclass
class ReferenceFile:
    """A reference-format file turned into native fields."""

    #: The fields for :class:`Profile`, or None when the block is unusable.
    fields: dict[str, Any] | None
    lines: Lines
    problems: list[tuple[int, str]] = field(default_factory=list)
    #: What was ignored, for the profile's load warnings.
    notes: list[tuple[int, str]] = field(default_factory=list)
    caller_cwd: bool = False
    #: Fields whose validation error would repeat a problem already reported.
    explained: set[Loc] = field(default_factory=set)


def from_reference(
    data: dict[Any, Any], outer: Lines, profile_fields: Collection[str]
) -> ReferenceFile:
    """The native fields of the reference-format file ``data`` (whose lines are
    ``outer``); ``profile_fields`` are the names of the profile model's fields."""
    block_line = outer.keys.get((REFERENCE_KEY,), outer.top)
    block = data[REFERENCE_KEY]
    inner = outer.nested
    if not isinstance(block, dict) or inner is None:
        return ReferenceFile(
            None,
            outer,
            [
                (
                    block_line,
                    f"field '{REFERENCE_KEY}': must be a mapping of profile fields "
                    f"(like `command: ./agent`), not {_kind(block)}",
                )
            ],
        )
    fields: dict[str, Any] = dict(block)
    out = ReferenceFile(fields, inner)

    ignored: list[tuple[int, str]] = []
    for key, value in data.items():
        if key == REFERENCE_KEY:
            continue
        line = outer.keys.get((key,), outer.top)
        if key in _REFERENCE_METADATA_FIELDS:
            if key in fields:
                ignored.append((line, f"{key} (also set inside `{REFERENCE_KEY}:`)"))
                continue
            fields[key] = value
            inner.unprefixed.add(key)
            for loc, at in outer.keys.items():
                if loc[0] == key:
                    inner.keys[loc] = at
            for loc, at in outer.values.items():
                if loc[0] == key:
                    inner.values[loc] = at
        elif key in profile_fields:
            out.problems.append(
                (
                    line,
                    f"field '{key}': is a profile field at the top level of a file that has an "
                    f"`{REFERENCE_KEY}:` section; move it inside `{REFERENCE_KEY}:`",
                )
            )
        else:
            ignored.append((line, str(key)))
    if ignored:
        names = ", ".join(f"{name} (line {line})" for line, name in ignored)
        out.notes.append(
            (ignored[0][0], f"ignored top-level keys this bridge does not use: {names}")
        )

    _reference_only_fields(fields, out)

    # A field left out means what it means in the reference.
    if "timeout_secs" not in fields:
        fields["timeout_secs"] = REFERENCE_TIMEOUT_SECS
    cwd = fields.get("cwd")
    if "cwd" not in fields or cwd is None:
        out.caller_cwd = True
    elif isinstance(cwd, str) and (cwd == "~" or cwd.startswith("~/")):
        fields["cwd"] = "${HOME}" + cwd[1:]  # the reference expands ~; this bridge has ${HOME}
    if "env_allowlist" not in fields:
        # Without an allowlist the reference lets ${VAR} read any variable; the
        # ones the author's own text names are what it needs.
        named = _variables_named(fields)
        if named:
            fields["env_allowlist"] = named
    return out


def _reference_only_fields(fields: dict[str, Any], out: ReferenceFile) -> None:
    """Handle the fields of the reference's block that this bridge has no field for."""
    lines = out.lines
    if "executor" in fields:
        executor = fields.pop("executor")
        line = lines.keys.get(("executor",), lines.top)
        if "command" not in fields:
            out.explained.add(("command",))
            out.problems.append(
                (
                    line,
                    f"field '{REFERENCE_KEY}.executor': {show_value(executor) or 'it'} names an "
                    "in-process executor of the reference implementation, which this bridge does "
                    "not have; set `command` (and `args`) to run the agent as a program",
                )
            )
        else:
            out.notes.append(
                (
                    line,
                    f"ignored `{REFERENCE_KEY}.executor` (in-process executors are a feature of "
                    "the reference implementation); this bridge runs `command`",
                )
            )
    if "send_error_reply" in fields:
        value = fields.pop("send_error_reply")
        line = lines.keys.get(("send_error_reply",), lines.top)
        if not isinstance(value, bool):
            out.problems.append(
                (
                    line,
                    f"field '{REFERENCE_KEY}.send_error_reply': must be true or false "
                    f"(got {show_value(value) or _kind(value)})",
                )
            )
        elif not value:
            out.notes.append(
                (
                    line,
                    f"ignored `{REFERENCE_KEY}.send_error_reply: false`: this bridge always tells "
                    "the user that a turn failed (the error is part of the turn's result and "
                    "every channel shows it)",
                )
            )
        # true is what this bridge always does: nothing to note.


def _variables_named(fields: dict[str, Any]) -> list[str]:
    """The ``${VAR}`` names in the text of command, args, cwd and env values."""
    texts: list[object] = [fields.get("command"), fields.get("cwd")]
    args = fields.get("args")
    if isinstance(args, list):
        texts.extend(args)
    env = fields.get("env")
    if isinstance(env, dict):
        texts.extend(env.values())
    names: set[str] = set()
    for text in texts:
        if isinstance(text, str):
            for match in TOKEN_RE.finditer(text):
                var = match.group("var")
                if var is not None and var not in wire.TURN_ENV_VARS:
                    names.add(var)
    return sorted(names)


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "empty (null)"
    return "a single value"


# --- converting to the native format ---------------------------------------------


def native_profile_text(
    profile: Profile, dest_dir: str | os.PathLike[str]
) -> tuple[str, list[str]]:
    """A native profile file equal to ``profile`` (loaded from a reference-format
    file), to be saved in ``dest_dir``: ``(yaml_text, notes)``.

    The fields the reference file set are written as they are, plus the ones a
    left-out field implies (``timeout_secs``, ``env_allowlist``). When
    ``dest_dir`` is not the source's folder, ``{{PROFILE_DIR}}`` and a relative
    ``cwd`` are pointed at the source's folder, so the agent's files are still
    found. ``notes`` says what was ignored and what cannot be said natively.
    """
    source_dir = profile.profile_dir.resolve()
    dest = Path(dest_dir).resolve()
    data = profile.model_dump(mode="json", exclude_unset=True)
    for key, value in data.items():
        if isinstance(value, float) and value.is_integer():
            data[key] = int(value)
    if dest != source_dir:
        _relocate(data, source_dir)
    notes = list(profile.load_warnings)
    if profile.runs_in_caller_cwd:
        notes.append(
            "the file sets no cwd, so the reference runs the agent in the bridge's current "
            f"directory; a native profile runs it in its own folder ({dest}): give --cwd DIR "
            "when running it, or set cwd"
        )
    header = [f"# Converted by `agentproc profiles import` from {profile.source}."]
    header += [f"# note: {note}" for note in notes]
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return "\n".join(header) + "\n" + body, notes


def _relocate(data: dict[str, Any], source_dir: Path) -> None:
    """Point ``{{PROFILE_DIR}}`` and a relative ``cwd`` at ``source_dir``."""
    folder = str(source_dir).replace("$", "$$")

    def fix(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            return folder if match.group("placeholder") == "PROFILE_DIR" else match.group(0)

        return TOKEN_RE.sub(one, text)

    if isinstance(data.get("command"), str):
        data["command"] = fix(data["command"])
    if isinstance(data.get("args"), list):
        data["args"] = [fix(a) for a in data["args"]]
    if isinstance(data.get("env"), dict):
        data["env"] = {k: fix(v) for k, v in data["env"].items()}
    cwd = data.get("cwd")
    if isinstance(cwd, str):
        cwd = fix(cwd)
        if not cwd.startswith(("/", "${", "{{")):
            cwd = os.path.join(folder, cwd)
        data["cwd"] = os.path.normpath(cwd) if "{{" not in cwd and "$" not in cwd else cwd
