"""Profiles: how to start an agent, as a validated model loaded from YAML.

A profile is written by a person, usually by hand, and a mistake in it should
cost one glance at the error: every problem found names the file, the line and
the field, and all of them are reported together. A misspelt field is an error
with a suggestion, never silently ignored, and no value is quietly replaced by
a default.

Loading goes through three stages, each converting its library's errors at
the boundary into :class:`~bridge.errors.ProfileError`:

1. read the file (``OSError``, UTF-8 decoding);
2. compose the YAML node tree with ``yaml.SafeLoader`` (``yaml.YAMLError``),
   remembering the line of each key and value and spotting duplicate keys,
   which PyYAML would otherwise let the last one win without a word;
3. validate with the pydantic model (``ValidationError``), and point each error
   at the line recorded in stage 2.

The text of ``command``, ``args``, ``cwd`` and ``env`` values is a template:
``{{MESSAGE}}``, ``{{SESSION_ID}}``, ``{{SESSION_NAME}}``, ``{{PROFILE_DIR}}`` and
``{{PYTHON}}``
are replaced per turn, ``${VAR}`` reads the bridge's environment (filtered by
``env_allowlist``) and ``$$`` is a literal ``$``. This module only checks that
templates are well formed; :mod:`bridge.launch` expands them.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from agentproc import wire
from bridge.errors import ProfileError
from bridge.profile_files import (
    ENV_NAME_RE,
    MAX_PROFILE_BYTES,
    PROFILE_FILE_NAMES,
    TOKEN_RE,
    ProfileProperties,
    read_profile_bytes,
    resolve_profile_path,
)

__all__ = [
    "ENV_NAME_RE",
    "MAX_PROFILE_BYTES",
    "PLACEHOLDERS",
    "PROFILE_FILE_NAMES",
    "TOKEN_RE",
    "Profile",
    "load_profile",
    "load_profile_text",
    "native_profile_text",
    "resolve_profile_path",
    "template_problems",
]

# --- templates ----------------------------------------------------------------

#: Placeholder names a profile may use as ``{{NAME}}``, replaced per turn.
PLACEHOLDERS = ("MESSAGE", "SESSION_ID", "SESSION_NAME", "PROFILE_DIR", "PYTHON")

#: ``${AGENT_...}`` would read the *bridge's* environment, which is never what
#: the author meant: the turn's values are placeholders.
_TURN_VAR_PLACEHOLDER = {
    wire.ENV_MESSAGE: "{{MESSAGE}}",
    wire.ENV_SESSION_ID: "{{SESSION_ID}}",
    wire.ENV_SESSION_NAME: "{{SESSION_NAME}}",
}


def _known_placeholders() -> str:
    return ", ".join(f"{{{{{name}}}}}" for name in PLACEHOLDERS)


def template_problems(text: str) -> list[str]:
    """Every problem with one template string, as readable sentences."""
    problems: list[str] = []
    if "\0" in text:
        problems.append("contains a NUL character, which cannot be passed to a process")
    for match in TOKEN_RE.finditer(text):
        name = match.group("placeholder")
        if name is not None and name not in PLACEHOLDERS:
            close = difflib.get_close_matches(name.upper(), PLACEHOLDERS, n=1, cutoff=0.6)
            guess = f"did you mean {{{{{close[0]}}}}}? " if close else ""
            problems.append(
                f"unknown placeholder {match.group(0)}; {guess}known placeholders: "
                f"{_known_placeholders()}"
            )
        var = match.group("var")
        if var is not None and var in wire.TURN_ENV_VARS:
            instead = _TURN_VAR_PLACEHOLDER.get(var)
            use = f"use {instead}" if instead else "the agent gets it in its own environment"
            problems.append(
                f"${{{var}}} would read the bridge's own environment, not this turn's; {use}"
            )
        if match.group("bad") is not None:
            problems.append(
                f"malformed '${{' at character {match.start() + 1}: write ${{NAME}} for a "
                "variable or $$ for a literal '$'"
            )
    return problems


def _check_template(text: str) -> str:
    problems = template_problems(text)
    if problems:
        raise ValueError("; ".join(problems))
    return text


def _check_command(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty: name the program to run, like ./agent.py")
    return _check_template(text)


def _check_cwd(text: str) -> str:
    if not text:
        raise ValueError("must not be empty; leave it out to run in the profile's folder")
    return _check_template(text)


def _check_env_name(name: str) -> str:
    if not ENV_NAME_RE.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a valid environment variable name "
            "(letters, digits and '_', not starting with a digit)"
        )
    if name in wire.TURN_ENV_VARS:
        raise ValueError(f"{name} is set by the bridge for every turn and cannot be set here")
    return name


def _env_value_to_text(value: object) -> object:
    """Accept numbers as text, refuse what YAML turned into something else.

    An unquoted ``yes`` or ``off`` is a boolean to YAML, and ``str(True)`` would
    hand the agent ``True``, which is not what the author typed; refusing with
    a hint to quote is kinder than guessing.
    """
    if isinstance(value, bool):
        raise ValueError(
            "is a boolean (YAML reads unquoted true/false/yes/no/on/off that way); "
            'quote it to pass text, like "true"'
        )
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        raise ValueError("is empty (null); write '' for an empty string")
    return value


def _check_allow_pattern(pattern: str) -> str:
    if not pattern or any(c.isspace() or c in "=\0" for c in pattern):
        raise ValueError(
            f"{pattern!r} is not a variable name or glob (like OPENAI_API_KEY or OPENAI_*)"
        )
    return pattern


def _number_check(kind: str) -> Any:
    """A check that refuses what YAML made a boolean or text where a number belongs."""

    def check(value: object) -> object:
        if isinstance(value, bool):
            raise ValueError(
                f"must be {kind}, not a boolean (got {_show_value(value)}); "
                "true and false are not numbers"
            )
        if isinstance(value, str):
            raise ValueError(
                f"must be {kind}, not text (got {_show_value(value)}); "
                "write the number without quotes"
            )
        return value

    return check


def _bool_check(value: object) -> object:
    """Refuse text and numbers where a boolean belongs: ``"yes"`` is not ``true``."""
    if isinstance(value, str):
        raise ValueError(
            f"must be true or false, not text (got {_show_value(value)}); "
            "write true or false without quotes"
        )
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"must be true or false, not a number (got {_show_value(value)})")
    return value


def _inherit_alias(value: object) -> object:
    # The reference implementation of the wire calls the infra set "minimal".
    return "infra" if value == "minimal" else value


Template = Annotated[str, AfterValidator(_check_template)]
#: Numbers and booleans are strict: YAML's ``true`` is not 1 and ``"yes"`` is not true.
Seconds = Annotated[StrictFloat, BeforeValidator(_number_check("a number of seconds"))]
OptionalSeconds = Annotated[
    StrictFloat | None, BeforeValidator(_number_check("a number of seconds or null"))
]
Count = Annotated[StrictInt, BeforeValidator(_number_check("a whole number"))]
OptionalCount = Annotated[
    StrictInt | None, BeforeValidator(_number_check("a whole number or null"))
]
Flag = Annotated[StrictBool, BeforeValidator(_bool_check)]
EnvName = Annotated[str, AfterValidator(_check_env_name)]
EnvValue = Annotated[str, BeforeValidator(_env_value_to_text), AfterValidator(_check_template)]
AllowPattern = Annotated[str, AfterValidator(_check_allow_pattern)]


# --- the model -----------------------------------------------------------------


class Profile(ProfileProperties, BaseModel):
    """How to start an agent for one chat turn.

    The agent is started once per turn, without a shell, as ``[command, *args]``
    in ``cwd``, and gets the turn in ``AGENT_*`` environment variables.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, title="agentproc profile")

    name: str | None = Field(
        default=None, description="Display name; defaults to the profile's folder or file name."
    )
    description: str = Field(default="", description="What this agent does, for people.")
    tags: list[str] = Field(default=[], description="Free-form labels for listing and search.")
    command: Annotated[str, AfterValidator(_check_command)] = Field(
        description=(
            "The program to run, resolved on PATH or, when it contains '/', against cwd. "
            "When args is absent, a command with spaces is split on whitespace, so "
            "'python3 ./agent.py' works; give args (even []) to keep it whole. "
            "Placeholders {{MESSAGE}}, {{SESSION_ID}}, {{SESSION_NAME}}, {{PROFILE_DIR}}, "
            "{{PYTHON}} (the bridge's own Python, which has the agentproc SDK) "
            "and ${VAR} are expanded; $$ is a literal $."
        )
    )
    args: list[Template] | None = Field(
        default=None,
        description="Arguments after the command, one list item per argument; no shell. "
        "Placeholders and ${VAR} are expanded in each item.",
    )
    cwd: Annotated[str, AfterValidator(_check_cwd)] | None = Field(
        default=None,
        description="Working directory of the agent; relative to the profile's folder, "
        "which is also the default. Placeholders and ${VAR} are expanded.",
    )
    env: dict[EnvName, EnvValue] = Field(
        default={},
        description="Extra environment variables for the agent. Values are text (numbers "
        "are accepted; quote booleans). Placeholders and ${VAR} are expanded. AGENT_* "
        "variables of the protocol cannot be set here.",
    )
    env_allowlist: list[AllowPattern] = Field(
        default=[],
        description="Names or globs (like 'OPENAI_*') of the bridge's environment variables "
        "that are passed to the agent when set and that ${VAR} may read.",
    )
    env_inherit: Annotated[Literal["infra", "all"], BeforeValidator(_inherit_alias)] = Field(
        default="infra",
        description="'infra': the agent inherits only PATH, HOME, USER, LOGNAME, SHELL, LANG, "
        "LC_*, TERM, TMPDIR, TZ and PWD (plus env_allowlist and AGENTPROC_DEBUG); 'all': the "
        "bridge's whole environment. 'minimal' (the reference implementation's name) means "
        "'infra'.",
    )
    timeout_secs: Seconds = Field(
        default=300,
        gt=0,
        allow_inf_nan=False,
        description="Seconds a turn may take in total before the agent is stopped (exit 124).",
    )
    kill_grace_secs: Seconds = Field(
        default=5,
        ge=0,
        allow_inf_nan=False,
        description="Seconds between SIGTERM and SIGKILL when stopping the agent.",
    )
    max_reply_chars: Count = Field(
        default=1_000_000, ge=1, description="Cap on the reply text the user sees."
    )
    truncation_suffix: str = Field(
        default="\n\n…(truncated)",
        description="Appended once when max_reply_chars cuts the reply; '' disables it.",
    )
    max_line_bytes: Count = Field(
        default=wire.DEFAULT_MAX_LINE_BYTES,
        ge=64,
        description="Longest stdout line kept, in bytes; longer lines are cut with a warning.",
    )
    max_stderr_bytes: Count = Field(
        default=65536,
        ge=0,
        description="How many bytes of the end of stderr are kept for error messages.",
    )
    include_stderr_in_reply: Flag = Field(
        default=False,
        description="Add the kept tail of stderr to the reply of a turn that succeeded, after "
        "a '--- stderr ---' line (a field of the reference implementation of the wire).",
    )
    streaming: Flag = Field(
        default=True,
        description="Whether AGENT_PARTIAL lines are streamed (AGENT_STREAMING=1); when "
        "false, partial lines are ignored.",
    )
    stdin: Literal["none", "message"] = Field(
        default="none",
        description="'none': stdin is closed at once; 'message': the message is written to "
        "stdin, then it is closed (for messages too large for the environment).",
    )
    permission: Flag = Field(
        default=False,
        description="Turn on the permission channel: the agent may print "
        "AGENT_PERMISSION_REQUEST lines and reads answers on stdin (AGENT_PERMISSION=1).",
    )
    permission_timeout_secs: OptionalSeconds = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="Seconds to wait for an answer to one permission request before denying "
        "it; null waits until the turn's deadline.",
    )
    busy_policy: Literal["queue", "reject", "interrupt", "collect"] | None = Field(
        default=None,
        description="What the bridge does with a message that arrives while this "
        "conversation's turn is running: 'queue' runs it afterwards (up to queue_limit "
        "waiting); 'reject' refuses it as busy; 'interrupt' cancels the running turn and "
        "runs the new message in the same session; 'collect' merges everything that arrives "
        "meanwhile into one turn that runs afterwards. null uses the bridge's default.",
    )
    queue_limit: OptionalCount = Field(
        default=None,
        ge=1,
        description="How many messages of one conversation may wait while a turn runs "
        "(queued turns, or messages merged by 'collect' and 'interrupt'); one more is "
        "refused. null uses the bridge's default (5).",
    )
    session_idle_secs: OptionalSeconds = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="Start a fresh agent session when the conversation has been idle for "
        "longer than this many seconds; null uses the bridge's default (by default, "
        "sessions never expire).",
    )

    _source: Path | None = PrivateAttr(default=None)
    _load_warnings: tuple[str, ...] = PrivateAttr(default=())
    _caller_cwd: bool = PrivateAttr(default=False)
    _reference: bool = PrivateAttr(default=False)

    @field_validator("permission")
    @classmethod
    def _permission_needs_stdin(cls, value: bool, info: ValidationInfo) -> bool:
        # Checked on `permission` (after `stdin` in field order) so the error
        # points at a field and its line rather than at the whole profile.
        if value and info.data.get("stdin") == "message":
            raise ValueError(
                "cannot be true with `stdin: message`: the permission channel uses stdin "
                "for its answers; remove one of them"
            )
        return value


# --- loading --------------------------------------------------------------------

#: Shown with every invalid-profile error.
_SCHEMA_HINT = "check the fields with `agentproc schema`"

_YAML_TAG = "tag:yaml.org,2002:"
#: Scalars whose author-written text is kept for text fields (env values, args):
#: YAML would turn ``1.10`` into ``1.1`` and ``2024-01-01`` into a date.
_TEXT_LIKE_TAGS = frozenset(_YAML_TAG + t for t in ("int", "float", "timestamp"))
_NULL_TAG = _YAML_TAG + "null"

Loc = tuple[str | int, ...]


@dataclass
class _Lines:
    """Where things are in the YAML file (1-based lines), by key path."""

    top: int = 1
    keys: dict[Loc, int] = field(default_factory=dict)
    values: dict[Loc, int] = field(default_factory=dict)
    raw_text: dict[Loc, str] = field(default_factory=dict)
    problems: list[tuple[int, str]] = field(default_factory=list)
    #: Put in front of field names in messages (``agentproc.`` inside a reference file).
    prefix: str = ""
    #: Top-level fields that keep no prefix (metadata moved in from outside the block).
    unprefixed: set[str] = field(default_factory=set)
    #: The lines of the ``agentproc:`` block of a reference-format file.
    nested: _Lines | None = None

    def label(self, loc: Loc) -> str:
        if self.prefix and loc and loc[0] not in self.unprefixed:
            return self.prefix + _label(loc)
        return _label(loc)


def load_profile(path: str | os.PathLike[str]) -> Profile:
    """Load and validate a profile from a YAML file or a folder holding ``profile.yaml``.

    Raises :class:`ProfileNotFoundError` when the path does not exist and
    :class:`ProfileError` for anything else wrong, listing every problem found
    as ``FILE:LINE: ...``.
    """
    file = resolve_profile_path(path)
    return load_profile_bytes(read_profile_bytes(file), file)


def load_profile_bytes(raw: bytes, file: Path) -> Profile:
    """Validate the bytes of the profile file ``file`` (see :func:`load_profile`)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise _invalid(
            str(file), [(line, f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save it as UTF-8")]
        ) from exc
    return load_profile_text(text, source=file)


def load_profile_text(text: str, source: str | os.PathLike[str] | None = None) -> Profile:
    """Validate a profile from YAML text.

    ``source`` is the file the text came from: it names the file in error
    messages and sets :attr:`Profile.source` and :attr:`Profile.profile_dir`.
    Without it, errors say ``<string>`` and the profile's folder is the
    current directory.
    """
    label = os.fspath(source) if source is not None else "<string>"
    data, lines = _parse_yaml(text, label)
    problems = list(lines.problems)
    reference: _Reference | None = None
    fields: dict[Any, Any] | None = data
    if REFERENCE_KEY in data:
        reference = _from_reference(data, lines)
        fields = reference.fields
        problems.extend(reference.problems)
        lines = reference.lines
    profile: Profile | None = None
    if fields is not None:
        try:
            profile = Profile.model_validate(fields)
        except ValidationError as exc:
            problems.extend(
                _pydantic_problem(err, lines)
                for err in exc.errors()
                if reference is None or tuple(err["loc"]) not in reference.explained
            )
    if problems or profile is None:
        raise _invalid(label, problems)
    if source is not None:
        profile._source = Path(source).resolve()
    if reference is not None:
        profile._reference = True
        profile._caller_cwd = reference.caller_cwd
        profile._load_warnings = tuple(
            f"{label}:{line}: {text}" for line, text in sorted(reference.notes)
        )
    return profile


# --- the reference format --------------------------------------------------------
#
# Profiles written for the reference implementation of this wire wrap the
# profile's fields in an ``agentproc:`` block next to metadata for people and
# tools (name, description, version, the CLI to install, ...). Such a file is
# read as it is: the block holds the fields, ``name``, ``description`` and
# ``tags`` come from the top level, other top-level keys are reported as
# ignored, and a field left out means what it means in the reference.

#: The key that marks a reference-format file.
REFERENCE_KEY = "agentproc"

#: The reference's timeout when ``timeout_secs`` is left out.
REFERENCE_TIMEOUT_SECS = 1800

#: Top-level keys of a reference file that are profile fields here too.
_REFERENCE_METADATA_FIELDS = ("name", "description", "tags")


@dataclass
class _Reference:
    """A reference-format file turned into native fields."""

    #: The fields for :class:`Profile`, or None when the block is unusable.
    fields: dict[str, Any] | None
    lines: _Lines
    problems: list[tuple[int, str]] = field(default_factory=list)
    #: What was ignored, for the profile's load warnings.
    notes: list[tuple[int, str]] = field(default_factory=list)
    caller_cwd: bool = False
    #: Fields whose validation error would repeat a problem already reported.
    explained: set[Loc] = field(default_factory=set)


def _from_reference(data: dict[Any, Any], outer: _Lines) -> _Reference:
    block_line = outer.keys.get((REFERENCE_KEY,), outer.top)
    block = data[REFERENCE_KEY]
    inner = outer.nested
    if not isinstance(block, dict) or inner is None:
        return _Reference(
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
    out = _Reference(fields, inner)

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
        elif key in Profile.model_fields:
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


def _reference_only_fields(fields: dict[str, Any], out: _Reference) -> None:
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
                    f"field '{REFERENCE_KEY}.executor': {_show_value(executor) or 'it'} names an "
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
                    f"(got {_show_value(value) or _kind(value)})",
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
    import yaml as yaml_module

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
    body = yaml_module.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
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


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "empty (null)"
    return "a single value"


def _invalid(label: str, problems: list[tuple[int, str]]) -> ProfileError:
    problems = sorted(problems, key=lambda p: p[0])
    count = len(problems)
    return ProfileError(
        f"invalid profile {label}: {count} problem{'s' if count != 1 else ''}",
        problems=tuple(f"{label}:{line}: {text}" for line, text in problems),
        path=label,
        hint=_SCHEMA_HINT,
    )


def _parse_yaml(text: str, label: str) -> tuple[dict[Any, Any], _Lines]:
    """Compose and construct the YAML document; return the data and its lines."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG):
                raise _invalid(
                    label, [(1, "the profile is empty; it needs at least `command: ./agent`")]
                )
            if not isinstance(node, yaml.MappingNode):
                kind = "a list" if isinstance(node, yaml.SequenceNode) else "a single value"
                raise _invalid(
                    label,
                    [
                        (
                            node.start_mark.line + 1,
                            f"the top level must be a mapping of fields "
                            f"(like `command: ./agent`), not {kind}",
                        )
                    ],
                )
            lines = _walk(node)
            # Construct after walking: constructing a mapping with merge keys
            # (<<) rewrites the node tree in place.
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text, label) from exc
    except RecursionError as exc:
        raise _invalid(label, [(1, "invalid YAML: nested too deeply")]) from exc
    assert isinstance(data, dict)
    for loc, raw in lines.raw_text.items():
        _replace_at(data, loc, raw)
    block = data.get(REFERENCE_KEY)
    if lines.nested is not None and isinstance(block, dict):
        for loc, raw in lines.nested.raw_text.items():
            _replace_at(block, loc, raw)
    return data, lines


def _yaml_error(exc: yaml.YAMLError, text: str, label: str) -> ProfileError:
    """``FILE:LINE:COL: invalid YAML: <problem>``, with a hint for the usual causes."""
    line = column = 0
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "unreadable"
        if exc.problem and exc.context and not exc.context.startswith("while "):
            # "expected a single document in the stream, but found another document"
            problem = f"{exc.context}, {exc.problem}"
        if mark is not None:
            line, column = mark.line, mark.column
    elif isinstance(exc, yaml.reader.ReaderError):
        before = text[: exc.position]
        line = before.count("\n")
        column = len(before) - (before.rfind("\n") + 1)
        problem = f"character U+{exc.character:04X} is not allowed ({exc.reason})"
    else:
        problem = str(exc)
    source_lines = text.splitlines()
    bad_line = source_lines[line] if line < len(source_lines) else ""
    if "{{" in bad_line:
        hint = 'quote text with placeholders, like "{{MESSAGE}}": YAML reads { as a mapping'
    else:
        hint = (
            "fix the YAML at that line and column; quote text that contains ': ' or "
            "starts with a symbol like { [ * & ! | > ' \" % @ `"
        )
    return ProfileError(
        f"invalid profile {label}: 1 problem",
        problems=(f"{label}:{line + 1}:{column + 1}: invalid YAML: {problem}",),
        path=label,
        hint=hint,
    )


def _walk(top: yaml.MappingNode, prefix: str = "", top_line: int | None = None) -> _Lines:
    """Record lines of top-level fields and of their direct items.

    Only two levels are walked: that is all a profile has (``env`` items,
    ``args`` items), and it keeps a document built from nested aliases (the
    "billion laughs") from making this walk exponential. The ``agentproc:``
    block of a reference-format file is walked the same way, on its own.
    """
    lines = _Lines(top=top_line or top.start_mark.line + 1, prefix=prefix)
    for key_node, value_node in _mapping_items(top, (), lines):
        loc: Loc = (key_node.value,)
        if not prefix and loc == (REFERENCE_KEY,) and isinstance(value_node, yaml.MappingNode):
            lines.nested = _walk(value_node, REFERENCE_KEY + ".", key_node.start_mark.line + 1)
            lines.problems.extend(lines.nested.problems)
            continue
        if isinstance(value_node, yaml.MappingNode):
            for sub_key, sub_value in _mapping_items(value_node, loc, lines):
                if loc == ("env",) and _text_like(sub_value):
                    lines.raw_text[(*loc, sub_key.value)] = sub_value.value
        elif isinstance(value_node, yaml.SequenceNode):
            for index, item in enumerate(value_node.value):
                lines.values[(*loc, index)] = item.start_mark.line + 1
                if loc == ("args",) and _text_like(item):
                    lines.raw_text[(*loc, index)] = item.value
    return lines


def _mapping_items(
    node: yaml.MappingNode, loc: Loc, lines: _Lines
) -> list[tuple[yaml.ScalarNode, yaml.Node]]:
    """The scalar-keyed items of a mapping, recording key/value lines and
    reporting duplicate keys (PyYAML silently keeps the last one)."""
    seen: dict[str, int] = {}
    items: list[tuple[yaml.ScalarNode, yaml.Node]] = []
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _YAML_TAG + "merge":
            continue
        key = key_node.value
        line = key_node.start_mark.line + 1
        if key in seen:
            lines.problems.append(
                (
                    line,
                    f"field '{lines.label((*loc, key))}': duplicate key; it is also set on line "
                    f"{seen[key]} (lines {seen[key]} and {line})",
                )
            )
        else:
            seen[key] = line
        lines.keys[(*loc, key)] = line
        lines.values[(*loc, key)] = value_node.start_mark.line + 1
        items.append((key_node, value_node))
    return items


def _text_like(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag in _TEXT_LIKE_TAGS


def _replace_at(data: dict[Any, Any], loc: Loc, raw: str) -> None:
    """Put the author's own spelling of a number or date back into a text field."""
    container: object = data.get(loc[0])
    key = loc[1]
    if isinstance(container, dict):
        if key in container:
            container[key] = raw
    elif isinstance(container, list) and isinstance(key, int) and key < len(container):
        container[key] = raw


def _label(loc: Loc) -> str:
    out = str(loc[0]) if loc else ""
    for part in loc[1:]:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _show_value(value: object) -> str | None:
    """A short YAML-like rendering of a scalar input, or None for containers."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    return None


def _pydantic_problem(err: Any, lines: _Lines) -> tuple[int, str]:
    """Turn one pydantic error into ``(line, "field 'x': what is wrong")``."""
    raw_loc: Loc = tuple(err["loc"])
    is_key = bool(raw_loc) and raw_loc[-1] == "[key]"
    loc: Loc = raw_loc[:-1] if is_key else raw_loc
    kind = err["type"]
    msg: str = err["msg"]

    if kind == "missing":
        line = lines.top
    elif kind == "extra_forbidden" or is_key:
        line = lines.keys.get(loc, lines.top)
    else:
        line = lines.top
        for end in range(len(loc), 0, -1):
            if loc[:end] in lines.values:
                line = lines.values[loc[:end]]
                break

    if not loc:
        return line, msg
    where = f"field '{lines.label(loc)}'"
    if kind == "missing":
        return line, f"{where}: is required but missing"
    if kind == "extra_forbidden":
        return line, f"{where}: {_unknown_field(loc)}"
    if kind == "invalid_key":
        return line, f"{where}: field names must be text"
    if kind == "value_error":
        return line, f"{where}: {msg.removeprefix('Value error, ')}"
    text = re.sub(r"^Input should be", "must be", msg)
    shown = _show_value(err.get("input"))
    if shown is not None:
        text += f" (got {shown})"
    return line, f"{where}: {text}"


def _unknown_field(loc: Loc) -> str:
    text = "not a profile field"
    if len(loc) == 1 and isinstance(loc[0], str):
        close = difflib.get_close_matches(loc[0], list(Profile.model_fields), n=1, cutoff=0.6)
        if close:
            text += f"; did you mean '{close[0]}'?"
    return text
