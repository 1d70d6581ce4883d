"""Profile model and YAML loading: defaults, every validation error with its
file, line and field, and the loader's handling of broken files."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agentproc import wire
from bridge.turn.errors import ProfileError, ProfileNotFoundError
from bridge.turn.profile import MAX_PROFILE_BYTES, Profile, load_profile, load_profile_text


def write(folder: Path, text: str, name: str = "profile.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(path: Path) -> tuple[str, ...]:
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    return info.value.problems


# --- defaults ---------------------------------------------------------------------

DEFAULTS = [
    ("name", None),
    ("description", ""),
    ("tags", []),
    ("args", None),
    ("cwd", None),
    ("env", {}),
    ("env_allowlist", []),
    ("env_inherit", "infra"),
    ("timeout_secs", 300),
    ("kill_grace_secs", 5),
    ("max_reply_chars", 1_000_000),
    ("truncation_suffix", "\n\n…(truncated)"),
    ("max_line_bytes", wire.DEFAULT_MAX_LINE_BYTES),
    ("max_stderr_bytes", 65536),
    ("include_stderr_in_reply", False),
    ("streaming", True),
    ("stdin", "none"),
    ("permission", False),
    ("permission_timeout_secs", None),
    ("busy_policy", None),
    ("queue_limit", None),
    ("session_idle_secs", None),
    ("requires", []),
]


@pytest.mark.parametrize(("field", "default"), DEFAULTS)
def test_default(tmp_path: Path, field: str, default: object) -> None:
    profile = load_profile(write(tmp_path, "command: ./agent\n"))
    assert getattr(profile, field) == default
    assert getattr(Profile(command="./agent"), field) == default


def test_defaults_cover_every_optional_field() -> None:
    assert {f for f, _ in DEFAULTS} | {"command"} == set(Profile.model_fields)


def test_source_and_profile_dir_from_file(tmp_path: Path) -> None:
    path = write(tmp_path, "command: ./agent\n")
    profile = load_profile(path)
    assert profile.source == path.resolve()
    assert profile.profile_dir == tmp_path.resolve()
    assert profile.display_name == tmp_path.name


def test_profile_dir_without_file_is_the_current_directory() -> None:
    profile = load_profile_text("command: x\n")
    assert profile.source is None
    assert profile.profile_dir == Path.cwd()
    assert Profile(command="x").profile_dir == Path.cwd()


def test_display_name(tmp_path: Path) -> None:
    assert load_profile(write(tmp_path, "command: x\nname: Echo\n")).display_name == "Echo"
    assert load_profile(write(tmp_path, "command: x\n", "claude.yaml")).display_name == "claude"


def test_profile_is_frozen() -> None:
    profile = Profile(command="x")
    with pytest.raises(ValidationError):
        profile.command = "y"  # type: ignore[misc]


# --- loading paths ------------------------------------------------------------------


def test_folder_with_profile_yaml(tmp_path: Path) -> None:
    write(tmp_path, "command: ./agent\n")
    assert load_profile(tmp_path).command == "./agent"
    assert load_profile(str(tmp_path)).source == (tmp_path / "profile.yaml").resolve()


def test_folder_with_profile_yml(tmp_path: Path) -> None:
    write(tmp_path, "command: ./agent\n", "profile.yml")
    assert load_profile(tmp_path).source == (tmp_path / "profile.yml").resolve()


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ProfileNotFoundError) as info:
        load_profile(missing)
    assert str(missing) in str(info.value)
    assert info.value.exit_code == 2
    assert info.value.path == str(missing)


def test_folder_without_profile(tmp_path: Path) -> None:
    with pytest.raises(ProfileNotFoundError) as info:
        load_profile(tmp_path)
    assert "profile.yaml" in info.value.message
    assert str(tmp_path) in info.value.message


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "profile.yaml"
    path.write_bytes(b"command: ./agent\ndescription: caf\xe9\n")
    problems = problems_of(path)
    assert problems == (f"{path}:2: not UTF-8 text (byte 0xe9); save it as UTF-8",)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads anything")
def test_unreadable(tmp_path: Path) -> None:
    path = write(tmp_path, "command: x\n")
    path.chmod(0)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert "cannot read profile" in info.value.message


def test_too_large(tmp_path: Path) -> None:
    path = tmp_path / "profile.yaml"
    path.write_bytes(b"command: x\n" + b"#" * MAX_PROFILE_BYTES)
    with pytest.raises(ProfileError, match="larger than"):
        load_profile(path)


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "profile.yaml"
    path.write_bytes(b"\xef\xbb\xbfcommand: ./agent\n")
    assert load_profile(path).command == "./agent"


# --- YAML-level problems ------------------------------------------------------------


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "command: ./agent\nargs: [a, b\ntimeout_secs: 3\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:3:13: invalid YAML: ")
    assert "expected ','" in problem


def test_yaml_error_for_bad_indentation(tmp_path: Path) -> None:
    path = write(tmp_path, "command: ./agent\n  args: x\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:2:")
    assert "invalid YAML" in problem


def test_yaml_python_tags_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "command: !!python/object/apply:os.system [echo]\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:1:10: invalid YAML: ")


def test_unquoted_placeholder_gets_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "command: ./agent\nargs: [{{MESSAGE}}]\n")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert info.value.problems[0].startswith(f"{path}:2:")
    assert 'quote text with placeholders, like "{{MESSAGE}}"' in info.value.hint


def test_control_character_is_reported_with_position(tmp_path: Path) -> None:
    path = write(tmp_path, "command: ./agent\ndescription: a\x07b\n")
    assert problems_of(path) == (
        f"{path}:2:15: invalid YAML: character U+0007 is not allowed "
        "(special characters are not allowed)",
    )


def test_two_documents(tmp_path: Path) -> None:
    path = write(tmp_path, "command: a\n---\ncommand: b\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:2:1: invalid YAML: expected a single document")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert info.value.problems == (
        f"{path}:1: the profile is empty; it needs at least `command: ./agent`",
    )
    assert info.value.message == f"invalid profile {path}: 1 problem"


@pytest.mark.parametrize(
    ("text", "kind"), [("- command: x\n", "a list"), ("just text\n", "a single value")]
)
def test_top_level_not_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    path = write(tmp_path, text)
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:1: the top level must be a mapping")
    assert problem.endswith(f"not {kind}")


def test_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "command: a\ntimeout_secs: 3\ncommand: b\n")
    assert problems_of(path) == (
        f"{path}:3: field 'command': duplicate key; it is also set on line 1 (lines 1 and 3)",
    )


def test_duplicate_env_key(tmp_path: Path) -> None:
    path = write(tmp_path, "command: a\nenv:\n  FOO: 1\n  BAR: 2\n  FOO: 3\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:5: field 'env.FOO': duplicate key")
    assert "line 3" in problem


def test_merge_keys_work(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        base: &base
          A: "1"
        """,
    )
    # `base` is not a field: anchors must live in a field; use env itself.
    assert problems_of(path)
    path = write(
        tmp_path,
        """
        command: x
        env:
          <<: {A: "1", B: "2"}
          B: "3"
        """,
    )
    assert load_profile(path).env == {"A": "1", "B": "3"}


# --- field validation: one case per rule ----------------------------------------------

# (yaml after `command: ./agent` unless it sets command, line, field, words in the message)
INVALID = [
    ("# no command\ndescription: x\n", 2, "command", "is required but missing"),
    ('command: ""\n', 1, "command", "must not be empty"),
    ("command: '   '\n", 1, "command", "must not be empty"),
    ("command: [a, b]\n", 1, "command", "must be a valid string"),
    ('command: "a\\0b"\n', 1, "command", "NUL"),
    ("command: ./agent {{MSG}}\n", 1, "command", "unknown placeholder {{MSG}}"),
    ("name: [1]\n", 2, "name", "must be a valid string"),
    ("description: {a: 1}\n", 2, "description", "must be a valid string"),
    ("tags: one\n", 2, "tags", "must be a valid list"),
    ("tags:\n  - ok\n  - [x]\n", 4, "tags[1]", "must be a valid string"),
    ("args: --flag\n", 2, "args", "must be a valid list"),
    ("args:\n  - ok\n  - '{{SESSION}}'\n", 4, "args[1]", "did you mean {{SESSION_ID}}?"),
    ("args: ['{{message}}']\n", 2, "args[0]", "did you mean {{MESSAGE}}?"),
    ("args: ['${HOME']\n", 2, "args[0]", "malformed '${'"),
    ("args: ['${AGENT_MESSAGE}']\n", 2, "args[0]", "use {{MESSAGE}}"),
    ("args: [true]\n", 2, "args[0]", "must be a valid string"),
    ('cwd: ""\n', 2, "cwd", "must not be empty"),
    ("cwd: '{{HOME}}'\n", 2, "cwd", "unknown placeholder {{HOME}}"),
    ("env: [A]\n", 2, "env", "must be a valid dictionary"),
    ("env:\n  bad-name: x\n", 3, "env.bad-name", "not a valid environment variable name"),
    ("env:\n  1X: x\n", 3, "env.1X", "not a valid environment variable name"),
    ("env:\n  AGENT_SESSION_ID: x\n", 3, "env.AGENT_SESSION_ID", "set by the bridge"),
    ("env:\n  FLAG: yes\n", 3, "env.FLAG", "is a boolean"),
    ("env:\n  FLAG: false\n", 3, "env.FLAG", 'quote it to pass text, like "true"'),
    ("env:\n  EMPTY:\n", 3, "env.EMPTY", "write '' for an empty string"),
    ("env:\n  L: [1]\n", 3, "env.L", "must be a valid string"),
    ('env:\n  Z: "a\\0"\n', 3, "env.Z", "NUL"),
    ("env:\n  P: '{{NOPE}}'\n", 3, "env.P", "unknown placeholder {{NOPE}}"),
    ("env_allowlist: ['']\n", 2, "env_allowlist[0]", "not a variable name or glob"),
    ("env_allowlist: ['A B']\n", 2, "env_allowlist[0]", "not a variable name or glob"),
    ("env_inherit: none\n", 2, "env_inherit", "must be 'infra' or 'all' (got 'none')"),
    ("timeout_secs: 0\n", 2, "timeout_secs", "must be greater than 0 (got 0)"),
    ("timeout_secs: -1.5\n", 2, "timeout_secs", "greater than 0 (got -1.5)"),
    ("timeout_secs: soon\n", 2, "timeout_secs", "must be a number of seconds, not text"),
    ("timeout_secs: .inf\n", 2, "timeout_secs", "finite number"),
    ("kill_grace_secs: -1\n", 2, "kill_grace_secs", "greater than or equal to 0"),
    ("max_reply_chars: 0\n", 2, "max_reply_chars", "greater than or equal to 1"),
    ("max_reply_chars: 1.5\n", 2, "max_reply_chars", "must be a valid integer"),
    ("truncation_suffix: [x]\n", 2, "truncation_suffix", "must be a valid string"),
    ("max_line_bytes: 63\n", 2, "max_line_bytes", "greater than or equal to 64"),
    ("max_stderr_bytes: -1\n", 2, "max_stderr_bytes", "greater than or equal to 0"),
    ("streaming: maybe\n", 2, "streaming", "must be true or false, not text (got 'maybe')"),
    ("stdin: file\n", 2, "stdin", "must be 'none' or 'message'"),
    ("permission: sometimes\n", 2, "permission", "must be true or false, not text"),
    ("permission_timeout_secs: 0\n", 2, "permission_timeout_secs", "greater than 0"),
    ("busy_policy: wait\n", 2, "busy_policy", "must be 'queue', 'reject', 'interrupt' or"),
    ("queue_limit: 0\n", 2, "queue_limit", "greater than or equal to 1"),
    ("queue_limit: 2.5\n", 2, "queue_limit", "must be a valid integer"),
    ("session_idle_secs: 0\n", 2, "session_idle_secs", "greater than 0"),
    ("session_idle_secs: .inf\n", 2, "session_idle_secs", "finite number"),
    # Booleans are not numbers, text is not a number or a boolean.
    ("timeout_secs: true\n", 2, "timeout_secs", "not a boolean (got true)"),
    ("timeout_secs: '5'\n", 2, "timeout_secs", "not text (got '5'); write the number without"),
    ("kill_grace_secs: false\n", 2, "kill_grace_secs", "not a boolean (got false)"),
    ("max_reply_chars: true\n", 2, "max_reply_chars", "must be a whole number, not a boolean"),
    ("max_reply_chars: '100'\n", 2, "max_reply_chars", "must be a whole number, not text"),
    ("max_reply_chars: 100.0\n", 2, "max_reply_chars", "must be a valid integer (got 100.0)"),
    ("max_line_bytes: yes\n", 2, "max_line_bytes", "not a boolean (got true)"),
    ("max_stderr_bytes: on\n", 2, "max_stderr_bytes", "not a boolean (got true)"),
    ("streaming: 'yes'\n", 2, "streaming", "must be true or false, not text (got 'yes')"),
    ("streaming: 'true'\n", 2, "streaming", "write true or false without quotes"),
    ("streaming: 1\n", 2, "streaming", "must be true or false, not a number (got 1)"),
    ("permission: 0\n", 2, "permission", "not a number (got 0)"),
    ("permission: null\n", 2, "permission", "must be a valid boolean (got null)"),
    ("include_stderr_in_reply: 'no'\n", 2, "include_stderr_in_reply", "not text (got 'no')"),
    ("permission_timeout_secs: true\n", 2, "permission_timeout_secs", "not a boolean"),
    ("queue_limit: yes\n", 2, "queue_limit", "must be a whole number or null, not a boolean"),
    ("session_idle_secs: '60'\n", 2, "session_idle_secs", "not text (got '60')"),
    (
        "stdin: message\npermission: true\n",
        3,
        "permission",
        "cannot be true with `stdin: message`",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "field", "words"), INVALID, ids=[case[2] for case in INVALID]
)
def test_invalid_field(tmp_path: Path, text: str, line: int, field: str, words: str) -> None:
    body = text if text.startswith(("command:", "#")) else "command: ./agent\n" + text
    path = write(tmp_path, body)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    error = info.value
    assert error.message == f"invalid profile {path}: 1 problem"
    assert error.exit_code == 2
    assert "agentproc schema" in error.hint
    (problem,) = error.problems
    assert problem.startswith(f"{path}:{line}: field '{field}': "), problem
    assert words in problem


def test_unknown_field_with_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "command: x\ntimeout: 5\n")
    assert problems_of(path) == (
        f"{path}:2: field 'timeout': not a profile field; did you mean 'timeout_secs'?",
    )


def test_misspelt_required_field_reports_both(tmp_path: Path) -> None:
    path = write(tmp_path, "description: hi\ncomand: ./agent\n")
    assert problems_of(path) == (
        f"{path}:1: field 'command': is required but missing",
        f"{path}:2: field 'comand': not a profile field; did you mean 'command'?",
    )


def test_unknown_field_without_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "command: x\nzzzzzz: 1\n")
    (problem,) = problems_of(path)
    assert problem == f"{path}:2: field 'zzzzzz': not a profile field"


def test_non_text_field_name(tmp_path: Path) -> None:
    path = write(tmp_path, "command: x\n1: 2\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:")
    assert "field names must be text" in problem


def test_all_problems_reported_together_in_line_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        comand: x
        timeout_secs: -1
        env:
          FLAG: on
        stdin: file
        """,
    )
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert info.value.message == f"invalid profile {path}: 5 problems"
    lines = [int(p.split(":")[1]) for p in info.value.problems]
    assert lines == sorted(lines)
    assert len(info.value.problems) == 5
    text = str(info.value)
    assert all(p in text for p in info.value.problems)


def test_load_profile_text_names_its_source() -> None:
    with pytest.raises(ProfileError) as info:
        load_profile_text("command: x\nstdin: file\n")
    assert info.value.problems[0].startswith("<string>:2: field 'stdin'")
    with pytest.raises(ProfileError) as info:
        load_profile_text("command: x\nstdin: file\n", source="agents/a.yaml")
    assert info.value.problems[0].startswith("agents/a.yaml:2: field 'stdin'")


# --- values ------------------------------------------------------------------------


def test_numbers_in_env_and_args_keep_their_spelling(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        command: ./agent
        args: [--port, 8080, --ratio, 1.50]
        env:
          PORT: 8080
          VERSION: 1.10
          SINCE: 2024-01-31
          QUOTED: "007"
        """,
    )
    profile = load_profile(path)
    assert profile.env == {
        "PORT": "8080",
        "VERSION": "1.10",
        "SINCE": "2024-01-31",
        "QUOTED": "007",
    }
    assert profile.args == ["--port", "8080", "--ratio", "1.50"]


def test_numbers_in_env_become_text_in_python() -> None:
    profile = Profile.model_validate({"command": "x", "env": {"N": 5, "F": 0.5}})
    assert profile.env == {"N": "5", "F": "0.5"}


def test_placeholders_and_variables_are_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        command: "{{PROFILE_DIR}}/agent"
        args: ["{{MESSAGE}}", "{{ SESSION_ID }}", "{{SESSION_NAME}}", "${HOME}", "$$5", "$x"]
        cwd: "${HOME}/work"
        env:
          X: "{{MESSAGE}} and ${OPENAI_API_KEY}"
          GO_TEMPLATE: "{{.Name}}"
        """,
    )
    profile = load_profile(path)
    assert profile.args is not None and profile.args[3] == "${HOME}"


def test_stdin_message_and_permission_checked_in_python_too() -> None:
    with pytest.raises(ValidationError):
        Profile(command="x", stdin="message", permission=True)
    assert Profile(command="x", stdin="message").stdin == "message"
    assert Profile(command="x", permission=True).permission


def test_json_schema_is_useful() -> None:
    schema = Profile.model_json_schema()
    assert schema["required"] == ["command"]
    assert schema["additionalProperties"] is False
    properties = schema["properties"]
    assert set(properties) == set(Profile.model_fields)
    assert all(properties[name].get("description") for name in properties)
    assert properties["env_inherit"]["enum"] == ["infra", "all"]
    assert "_source" not in properties


YAMLISH = st.text(alphabet=":-[]{}\n\t #'\"&*!|>,?%@`0aAc\x00\x85\ufeff", max_size=120)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), YAMLISH, YAMLISH.map(lambda t: "command: x\n" + t)))
def test_no_library_error_escapes(text: str) -> None:
    try:
        load_profile_text(text)
    except ProfileError as exc:
        assert exc.problems


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*Profile.model_fields, "bogus"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(),
            st.text(max_size=20),
            st.lists(st.text(max_size=5), max_size=3),
            st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
        ),
    )
)
def test_no_library_error_escapes_for_any_mapping(data: dict[str, object]) -> None:
    import yaml

    try:
        load_profile_text(yaml.safe_dump(data))
    except ProfileError as exc:
        assert exc.problems


def test_nested_aliases_stay_cheap(tmp_path: Path) -> None:
    # The "billion laughs": nine levels of nine aliases. Validation must not
    # expand it (nor print it) while reporting the problem.
    levels = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        refs = ",".join([f"*a{i - 1}"] * 9)
        levels.append(f"a{i}: &a{i} [{refs}]")
    text = "command: x\ntags:\n" + "".join(f"  - {{{level}}}\n" for level in levels)
    path = write(tmp_path, text)
    problems = problems_of(path)
    assert all("field 'tags[" in p for p in problems)
    assert all(len(p) < 300 for p in problems)


def test_env_inherit_minimal_is_the_reference_name_for_infra(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, "command: ./agent\nenv_inherit: minimal\n"))
    assert profile.env_inherit == "infra"


def test_python_values_are_strict_too() -> None:
    assert Profile(command="x", timeout_secs=5).timeout_secs == 5.0
    for bad in ({"timeout_secs": True}, {"streaming": "yes"}, {"max_reply_chars": True}):
        with pytest.raises(ValueError):
            Profile(command="x", **bad)  # type: ignore[arg-type]


# --- the reference format (fields under `agentproc:`) ------------------------------------


def test_reference_format_reads_the_block_and_the_metadata(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: ref
        description: from the top level
        tags: [a, b]
        version: 2
        agentproc:
          command: ./agent
          cwd: sub
          timeout_secs: 60
          env_inherit: minimal
          env:
            VERSION: 1.10
          env_allowlist: []
        """,
    )
    profile = load_profile(path)
    assert (profile.name, profile.description, profile.tags) == (
        "ref",
        "from the top level",
        ["a", "b"],
    )
    assert (profile.command, profile.cwd, profile.timeout_secs) == ("./agent", "sub", 60)
    assert profile.env_inherit == "infra"
    assert profile.env == {"VERSION": "1.10"}, "the author's spelling of a number is kept"
    assert profile.env_allowlist == [], "an explicit allowlist is kept, even empty"
    assert profile.is_reference_format and not profile.runs_in_caller_cwd
    assert profile.load_warnings == (
        f"{path}:4: ignored top-level keys this bridge does not use: version (line 4)",
    )


def test_reference_format_left_out_fields_mean_what_the_reference_means(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        agentproc:
          command: ${TOOL_HOME}/bin/agent
          args: ["--key", "${API_KEY}", "${AGENT_SESSION_NAME_X}", "$${NOT_A_VAR}"]
          env:
            OTHER: "${SECRET_TWO}"
        """,
    )
    profile = load_profile(path)
    assert profile.timeout_secs == 1800
    assert profile.runs_in_caller_cwd
    assert profile.env_allowlist == ["AGENT_SESSION_NAME_X", "API_KEY", "SECRET_TWO", "TOOL_HOME"]
    assert profile.load_warnings == ()
    native = load_profile(write(tmp_path, "command: ./agent\n", "native.yaml"))
    assert native.timeout_secs == 300 and not native.runs_in_caller_cwd


@pytest.mark.parametrize(("cwd", "expected"), [("~", "${HOME}"), ("~/src", "${HOME}/src")])
def test_reference_format_expands_a_leading_tilde(tmp_path: Path, cwd: str, expected: str) -> None:
    profile = load_profile(write(tmp_path, f"agentproc:\n  command: x\n  cwd: '{cwd}'\n"))
    assert profile.cwd == expected


def test_reference_only_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        agentproc:
          executor: codex
          command: ./agent
          send_error_reply: false
          include_stderr_in_reply: true
        """,
    )
    profile = load_profile(path)
    assert profile.include_stderr_in_reply is True
    assert profile.load_warnings == (
        f"{path}:2: ignored `agentproc.executor` (in-process executors are a feature of the "
        "reference implementation); this bridge runs `command`",
        f"{path}:4: ignored `agentproc.send_error_reply: false`: this bridge always tells the "
        "user that a turn failed (the error is part of the turn's result and every channel "
        "shows it)",
    )
    quiet = load_profile(
        write(tmp_path, "agentproc:\n  command: x\n  send_error_reply: true\n", "q.yaml")
    )
    assert quiet.load_warnings == ()


# (text, line, field, words): errors in reference files keep file, line and field.
REFERENCE_INVALID = [
    ("agentproc:\n", 1, "agentproc", "must be a mapping of profile fields"),
    ("agentproc: [a]\n", 1, "agentproc", "not a list"),
    ("agentproc: ./agent\n", 1, "agentproc", "not a single value"),
    ("name: x\nagentproc:\n  cwd: .\n", 2, "agentproc.command", "is required but missing"),
    ("agentproc:\n  commnd: ./a\n", 2, "agentproc.commnd", "did you mean 'command'?"),
    (
        "agentproc:\n  command: x\n  timeout_secs: true\n",
        3,
        "agentproc.timeout_secs",
        "not a boolean",
    ),
    ("agentproc:\n  command: x\n  streaming: 'yes'\n", 3, "agentproc.streaming", "not text"),
    ("agentproc:\n  command: x\n  env:\n    A: yes\n", 4, "agentproc.env.A", "is a boolean"),
    (
        "agentproc:\n  command: x\n  args: [ok, '{{SESION_ID}}']\n",
        3,
        "agentproc.args[1]",
        "did you mean",
    ),
    ("agentproc:\n  command: x\n  command: y\n", 3, "agentproc.command", "duplicate key"),
    (
        "agentproc:\n  command: x\n  env_inherit: some\n",
        3,
        "agentproc.env_inherit",
        "'infra' or 'all'",
    ),
    (
        "agentproc:\n  command: x\n  stdin: message\n  permission: true\n",
        4,
        "agentproc.permission",
        "cannot be true with `stdin: message`",
    ),
    ("agentproc:\n  executor: codex\n", 2, "agentproc.executor", "set `command` (and `args`)"),
    (
        "agentproc:\n  command: x\n  send_error_reply: 'no'\n",
        3,
        "agentproc.send_error_reply",
        "must be true or false (got 'no')",
    ),
    (
        "timeout_secs: 5\nagentproc:\n  command: x\n",
        1,
        "timeout_secs",
        "move it inside `agentproc:`",
    ),
    ("name: [1]\nagentproc:\n  command: x\n", 1, "name", "must be a valid string"),
    ("tags: [ok, [x]]\nagentproc:\n  command: x\n", 1, "tags[1]", "must be a valid string"),
]


@pytest.mark.parametrize(
    ("text", "line", "field", "words"), REFERENCE_INVALID, ids=[c[2] for c in REFERENCE_INVALID]
)
def test_reference_format_errors(
    tmp_path: Path, text: str, line: int, field: str, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    mine = [p for p in info.value.problems if p.startswith(f"{path}:{line}: field '{field}': ")]
    assert len(mine) == 1, info.value.problems
    assert words in mine[0]


def test_reference_metadata_inside_and_outside(tmp_path: Path) -> None:
    path = write(tmp_path, "name: outer\nagentproc:\n  name: inner\n  command: x\n")
    profile = load_profile(path)
    assert profile.name == "inner"
    assert profile.load_warnings == (
        f"{path}:1: ignored top-level keys this bridge does not use: "
        "name (also set inside `agentproc:`) (line 1)",
    )


def test_native_profiles_stay_strict_about_unknown_keys(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, "command: x\nversion: 2\n"))
    assert "field 'version': not a profile field" in problem


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["name", "tags", "version", "command", "agentproc"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.text(max_size=5),
            st.lists(st.text(max_size=3), max_size=2),
            st.dictionaries(
                st.sampled_from(["command", "executor", "send_error_reply", "cwd", "env", "bogus"]),
                st.one_of(
                    st.none(),
                    st.booleans(),
                    st.text(max_size=5),
                    st.lists(st.integers(), max_size=2),
                ),
                max_size=4,
            ),
        ),
        max_size=4,
    )
)
def test_no_library_error_escapes_for_any_reference_shape(data: dict[str, object]) -> None:
    import yaml

    text = yaml.safe_dump(data)
    try:
        load_profile_text(text)
    except ProfileError as exc:
        assert exc.problems or exc.message


# --- dispatch fields --------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["queue", "reject", "interrupt", "collect"])
def test_busy_policy_values(tmp_path: Path, policy: str) -> None:
    profile = load_profile(write(tmp_path, f"command: x\nbusy_policy: {policy}\n"))
    assert profile.busy_policy == policy


def test_dispatch_fields_load(tmp_path: Path) -> None:
    text = "command: x\nqueue_limit: 3\nsession_idle_secs: 1800\n"
    profile = load_profile(write(tmp_path, text))
    assert profile.queue_limit == 3
    assert profile.session_idle_secs == 1800.0


def test_dispatch_fields_null_means_the_bridge_default(tmp_path: Path) -> None:
    text = "command: x\nbusy_policy: null\nqueue_limit: null\nsession_idle_secs: null\n"
    profile = load_profile(write(tmp_path, text))
    assert (profile.busy_policy, profile.queue_limit, profile.session_idle_secs) == (
        None,
        None,
        None,
    )


def test_misspelt_busy_policy_field_is_suggested(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, "command: x\nbusy_polcy: queue\n"))
    assert "did you mean 'busy_policy'?" in problem
