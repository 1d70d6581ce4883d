"""Profiles: how to start an agent, as a validated model loaded from YAML.

A profile is written by a person, usually by hand, and a mistake in it should
cost one glance at the error: every problem found names the file, the line and
the field, and all of them are reported together. A misspelt field is an error
with a suggestion, never silently ignored, and no value is quietly replaced by
a default.

This module holds the native profile: the model (:class:`Profile`), the checks
of its fields and templates, and the loader. Loading goes through three
stages, each converting its library's errors at the boundary into
:class:`~bridge.turn.errors.ProfileError`:

1. read the file (``OSError``, UTF-8 decoding);
2. compose the YAML node tree (``yaml.YAMLError``), remembering the line of
   each key and value and spotting duplicate keys (:mod:`bridge.turn.profile_yaml`);
3. validate with the pydantic model (``ValidationError``), and point each error
   at the line recorded in stage 2.

A file that wraps its fields in an ``agentproc:`` block (the format of the
reference implementation of the wire) is turned into native fields between
stages 2 and 3 by :mod:`bridge.turn.profile_reference`.

The text of ``command``, ``args``, ``cwd`` and ``env`` values is a template:
``{{MESSAGE}}``, ``{{SESSION_ID}}``, ``{{SESSION_NAME}}``, ``{{PROFILE_DIR}}`` and
``{{PYTHON}}``
are replaced per turn, ``${VAR}`` reads the bridge's environment (filtered by
``env_allowlist``) and ``$$`` is a literal ``$``. This module only checks that
templates are well formed; :mod:`bridge.turn.launch` expands them.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Annotated, Any, Literal

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
from bridge.turn.profile_files import (
    ENV_NAME_RE,
    MAX_PROFILE_BYTES,
    PROFILE_FILE_NAMES,
    TOKEN_RE,
    ProfileProperties,
    read_profile_bytes,
    resolve_profile_path,
)
from bridge.turn.profile_reference import (
    REFERENCE_KEY,
    ReferenceFile,
    from_reference,
    inherit_alias,
    native_profile_text,
)
from bridge.turn.profile_yaml import invalid_profile, parse_yaml, pydantic_problem, show_value

__all__ = [
    "ENV_NAME_RE",
    "MAX_PROFILE_BYTES",
    "PLACEHOLDERS",
    "PROFILE_FILE_NAMES",
    "TOKEN_RE",
    "Profile",
    "Requirement",
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
                f"must be {kind}, not a boolean (got {show_value(value)}); "
                "true and false are not numbers"
            )
        if isinstance(value, str):
            raise ValueError(
                f"must be {kind}, not text (got {show_value(value)}); "
                "write the number without quotes"
            )
        return value

    return check


def _bool_check(value: object) -> object:
    """Refuse text and numbers where a boolean belongs: ``"yes"`` is not ``true``."""
    if isinstance(value, str):
        raise ValueError(
            f"must be true or false, not text (got {show_value(value)}); "
            "write true or false without quotes"
        )
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"must be true or false, not a number (got {show_value(value)})")
    return value


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


def _check_program(name: str) -> str:
    if not name.strip() or name != name.strip():
        raise ValueError("must be a program name or path, without blanks around it")
    if "\0" in name:
        raise ValueError("must not contain a NUL character")
    return name


class Requirement(BaseModel):
    """A program the agent needs at run time besides its own command (the CLI a
    wrapper drives): checked before the first turn, so a missing one is said up
    front with the command that installs it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    program: Annotated[str, AfterValidator(_check_program)] = Field(
        description="The program's name, looked up on the agent's PATH, or its path."
    )
    install: str = Field(default="", description="How to install it, shown when it is missing.")
    env: EnvName | None = Field(
        default=None,
        description="A variable that names the program to use instead (like CLAUDE_CODE_BIN); "
        "when the agent's environment sets it, that program is checked.",
    )


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
    env_inherit: Annotated[Literal["infra", "all"], BeforeValidator(inherit_alias)] = Field(
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
    requires: list[Requirement] = Field(
        default=[],
        description="Programs the agent needs besides its command (the CLI a wrapper runs), "
        "each {program, install, env}; a missing one fails the turn before it starts "
        "(exit 127) with the install command.",
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
        raise invalid_profile(
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
    data, lines = parse_yaml(text, label, nested_key=REFERENCE_KEY)
    problems = list(lines.problems)
    reference: ReferenceFile | None = None
    fields: dict[Any, Any] | None = data
    if REFERENCE_KEY in data:
        reference = from_reference(data, lines, Profile.model_fields)
        fields = reference.fields
        problems.extend(reference.problems)
        lines = reference.lines
    profile: Profile | None = None
    if fields is not None:
        try:
            profile = Profile.model_validate(fields)
        except ValidationError as exc:
            problems.extend(
                pydantic_problem(
                    err, lines, Profile.model_fields, {"requires": Requirement.model_fields}
                )
                for err in exc.errors()
                if reference is None or tuple(err["loc"]) not in reference.explained
            )
    if problems or profile is None:
        raise invalid_profile(label, problems)
    if source is not None:
        profile._source = Path(source).resolve()
    if reference is not None:
        profile._reference = True
        profile._caller_cwd = reference.caller_cwd
        profile._load_warnings = tuple(
            f"{label}:{line}: {text}" for line, text in sorted(reference.notes)
        )
    return profile
