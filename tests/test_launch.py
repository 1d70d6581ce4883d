"""Expansion of a profile into a launch plan, and the preflight checks."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentproc import wire
from bridge.turn.errors import LaunchError, ProfileError
from bridge.turn.launch import MAX_ARG_STRLEN, LaunchPlan, arg_max, build_plan, preflight
from bridge.turn.profile import Profile, load_profile
from bridge.turn.request import TurnRequest

#: A small bridge environment: infra variables, a secret and allowlist candidates.
ENVIRON = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/home/ada",
    "USER": "ada",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "TERM": "xterm",
    "SECRET_TOKEN": "hunter2",
    "OPENAI_API_KEY": "sk-1",
    "OPENAI_ORG": "org-1",
    "AGENT_IMAGE_URL": "https://stale.example/x.png",
}


def profile_at(folder: Path, text: str) -> Profile:
    path = folder / "profile.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return load_profile(path)


def plan_for(
    folder: Path,
    text: str,
    message: str = "hi",
    *,
    environ: dict[str, str] = ENVIRON,
    **request: object,
) -> LaunchPlan:
    """The plan of ``text`` for the turn of ``message`` and ``request``'s other inputs."""
    turn = TurnRequest(message, **request)  # type: ignore[arg-type]
    return build_plan(profile_at(folder, text), turn, environ=environ)


# --- turn input ----------------------------------------------------------------------


def test_empty_turn_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LaunchError) as info:
        plan_for(tmp_path, "command: ./agent", "")
    assert info.value.message.startswith("empty turn: ")
    assert info.value.exit_code == 2


def test_attachment_without_text_is_a_turn(tmp_path: Path) -> None:
    image = wire.Attachment("image", "https://x.example/cat.png")
    plan = plan_for(tmp_path, "command: ./agent", "", attachments=[image])
    assert plan.env[wire.ENV_MESSAGE] == ""
    assert plan.env[wire.ENV_IMAGE_URL] == "https://x.example/cat.png"
    assert wire.decode_attachments(plan.env[wire.ENV_ATTACHMENTS]) == [image]


def test_turn_variables(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "command: ./agent", "hello", session_id="abc-1", from_user="ada")
    assert plan.env[wire.ENV_MESSAGE] == "hello"
    assert plan.env[wire.ENV_SESSION_ID] == "abc-1"
    assert plan.env[wire.ENV_SESSION_NAME] == "default"
    assert plan.env[wire.ENV_FROM_USER] == "ada"
    assert plan.env[wire.ENV_STREAMING] == "1"
    assert plan.env[wire.ENV_PROTOCOL_VERSION] == wire.PROTOCOL_VERSION
    assert wire.ENV_PERMISSION not in plan.env
    # A stale turn variable of the bridge's own environment never leaks through.
    assert wire.ENV_IMAGE_URL not in plan.env


def test_invalid_session_id(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match="invalid session id") as info:
        plan_for(tmp_path, "command: ./agent", session_id="../etc")
    assert info.value.exit_code == 2


def test_profile_settings_reach_the_plan(tmp_path: Path) -> None:
    plan = plan_for(
        tmp_path,
        """
        command: ./agent
        timeout_secs: 12
        kill_grace_secs: 0.5
        max_reply_chars: 99
        truncation_suffix: "[cut]"
        max_line_bytes: 4096
        max_stderr_bytes: 10
        streaming: false
        permission: true
        permission_timeout_secs: 7
        """,
    )
    assert plan.timeout_secs == 12
    assert plan.kill_grace_secs == 0.5
    assert plan.max_reply_chars == 99
    assert plan.truncation_suffix == "[cut]"
    assert plan.max_line_bytes == 4096
    assert plan.max_stderr_bytes == 10
    assert plan.streaming is False
    assert plan.env[wire.ENV_STREAMING] == "0"
    assert plan.permission is True
    assert plan.permission_timeout_secs == 7
    assert plan.env[wire.ENV_PERMISSION] == "1"
    assert plan.stdin_open is True
    assert plan.stdin_data is None
    assert plan.warnings == ()


def test_streaming_argument_overrides_profile(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "command: ./agent", streaming=False)
    assert plan.streaming is False
    assert plan.env[wire.ENV_STREAMING] == "0"
    plan = plan_for(tmp_path, "command: ./agent\nstreaming: false", streaming=True)
    assert plan.env[wire.ENV_STREAMING] == "1"


def test_timeout_argument(tmp_path: Path) -> None:
    assert plan_for(tmp_path, "command: ./agent", timeout=2.5).timeout_secs == 2.5
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(LaunchError, match="invalid timeout"):
            plan_for(tmp_path, "command: ./agent", timeout=bad)


def test_stdin_modes(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "command: ./agent", "héllo")
    assert (plan.stdin_data, plan.stdin_open) == (None, False)
    plan = plan_for(tmp_path, "command: ./agent\nstdin: message", "héllo")
    assert plan.stdin_data == "héllo".encode()
    assert plan.stdin_open is False
    assert plan.env[wire.ENV_MESSAGE] == "héllo"


# --- argv ------------------------------------------------------------------------------


def test_command_with_spaces_is_split_when_args_absent(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "command: python3  ./agent.py --fast")
    assert plan.argv == ("python3", "./agent.py", "--fast")


def test_quotes_in_a_split_command_warn(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "command: sh -c 'echo hi'")
    assert plan.argv == ("sh", "-c", "'echo", "hi'")
    (warning,) = plan.warnings
    assert "put arguments that contain spaces in `args`" in warning


def test_command_is_kept_whole_when_args_given(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "command: /opt/My Agent/run\nargs: []")
    assert plan.argv == ("/opt/My Agent/run",)
    plan = plan_for(tmp_path, "command: /opt/My Agent/run\nargs: [-v]")
    assert plan.argv == ("/opt/My Agent/run", "-v")


def test_message_with_spaces_stays_one_argument(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "command: ./agent --ask {{MESSAGE}}", "two words  here")
    assert plan.argv == ("./agent", "--ask", "two words  here")


def test_placeholders(tmp_path: Path) -> None:
    plan = plan_for(
        tmp_path,
        """
        command: "{{PROFILE_DIR}}/agent"
        args: ["-p", "{{MESSAGE}}", "--resume={{SESSION_ID}}", "{{ SESSION_NAME }}"]
        env:
          WHO: "{{SESSION_NAME}}@{{PROFILE_DIR}}"
        """,
        "hello",
        session_id="s1",
        session_name="work",
    )
    folder = str(tmp_path.resolve())
    assert plan.argv == (f"{folder}/agent", "-p", "hello", "--resume=s1", "work")
    assert plan.env["WHO"] == f"work@{folder}"


def test_empty_session_name_means_default(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "command: ./agent\nargs: ['{{SESSION_NAME}}']", session_name="")
    assert plan.argv[1] == "default"
    assert plan.env[wire.ENV_SESSION_NAME] == "default"


def test_inserted_values_are_not_scanned_again(tmp_path: Path) -> None:
    text = """
        command: ./agent
        args: ["{{MESSAGE}}", "{{SESSION_NAME}}"]
        env:
          M: "<{{MESSAGE}}>"
        """
    message = "{{SESSION_ID}} ${HOME} $$ {{MESSAGE}}"
    plan = plan_for(tmp_path, text, message, session_id="s1", session_name="{{MESSAGE}}")
    assert plan.argv[1:] == (message, "{{MESSAGE}}")
    assert plan.env["M"] == f"<{message}>"
    assert plan.env[wire.ENV_MESSAGE] == message
    assert plan.warnings == ()


# Text a chat user may send: anything but NUL (which cannot be passed to a
# process) and lone surrogates (which cannot be encoded).
MESSAGES = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\0"), min_size=1, max_size=80
)


@settings(max_examples=200, deadline=None)
@given(message=MESSAGES)
def test_any_message_arrives_verbatim(
    tmp_path_factory: pytest.TempPathFactory, message: str
) -> None:
    folder = tmp_path_factory.mktemp("p")
    profile = profile_at(
        folder,
        """
        command: ./agent
        args: ["{{MESSAGE}}", "x{{MESSAGE}}y", "${HOME}"]
        env:
          COPY: "{{MESSAGE}}"
        stdin: message
        """,
    )
    plan = build_plan(profile, TurnRequest(message, session_name=message), environ=ENVIRON)
    assert plan.argv == ("./agent", message, f"x{message}y", "/home/ada")
    assert plan.env["COPY"] == message
    assert plan.env[wire.ENV_MESSAGE] == message
    assert plan.env[wire.ENV_SESSION_NAME] == message
    assert plan.stdin_data == message.encode()
    assert plan.warnings == ()


def test_command_empty_after_expansion(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match="command is empty after expanding"):
        plan_for(tmp_path, "command: ${NOT_SET_ANYWHERE}\nargs: [x]")


# --- ${VAR} --------------------------------------------------------------------------------


def test_variable_from_infra_set(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "command: ./agent\nargs: ['${HOME}/notes', '${LC_ALL}']")
    assert plan.argv[1:] == ("/home/ada/notes", "C.UTF-8")
    assert plan.warnings == ()


def test_blocked_variable_expands_to_empty_with_a_warning(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "command: ./agent\nargs: ['--token=${SECRET_TOKEN}']")
    assert plan.argv[1] == "--token="
    (warning,) = plan.warnings
    assert "SECRET_TOKEN" in warning
    assert "add it to env_allowlist" in warning
    assert "hunter2" not in repr(plan)


def test_allowlisted_variable_expands(tmp_path: Path) -> None:
    plan = plan_for(
        tmp_path,
        """
        command: ./agent
        args: ['${SECRET_TOKEN}', '${OPENAI_ORG}']
        env_allowlist: [SECRET_TOKEN, "OPENAI_*"]
        """,
    )
    assert plan.argv[1:] == ("hunter2", "org-1")
    assert plan.warnings == ()


def test_unset_variables_warn(tmp_path: Path) -> None:
    plan = plan_for(
        tmp_path,
        """
        command: ./agent
        args: ['${TZ}', '${MISSING_KEY}', '${MISSING_KEY}', '${OPENAI_NEW}']
        env_allowlist: ["OPENAI_*"]
        """,
    )
    assert plan.argv[1:] == ("", "", "", "")
    assert len(plan.warnings) == 3  # one per variable, not per use
    tz, missing, openai = plan.warnings
    assert "${TZ}" in tz and "not set" in tz
    assert "${MISSING_KEY}" in missing and "env_allowlist" in missing
    assert "${OPENAI_NEW}" in openai and "not set" in openai


def test_dollar_escape(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "command: ./agent\nargs: ['$$5', '$${HOME}', '$$$${HOME}', '$HOME']")
    assert plan.argv[1:] == ("$5", "${HOME}", "$${HOME}", "$HOME")


def test_variables_in_cwd_and_env(tmp_path: Path) -> None:
    environ = {**ENVIRON, "HOME": str(tmp_path)}
    plan = plan_for(
        tmp_path,
        "command: ./agent\ncwd: ${HOME}/sub\nenv:\n  DATA: ${HOME}/data",
        environ=environ,
    )
    assert plan.cwd == str(tmp_path / "sub")
    assert plan.env["DATA"] == f"{tmp_path}/data"


# --- environment ---------------------------------------------------------------------------


def test_infra_inheritance_keeps_secrets_out(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "command: ./agent")
    for name in ("PATH", "HOME", "USER", "LANG", "LC_ALL", "TERM"):
        assert plan.env[name] == ENVIRON[name]
    assert "SECRET_TOKEN" not in plan.env
    assert "OPENAI_API_KEY" not in plan.env
    assert plan.env["PWD"] == plan.cwd


def test_allowlist_passes_variables_through(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "command: ./agent\nenv_allowlist: ['OPENAI_*']")
    assert plan.env["OPENAI_API_KEY"] == "sk-1"
    assert plan.env["OPENAI_ORG"] == "org-1"
    assert "SECRET_TOKEN" not in plan.env


def test_inherit_all(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "command: ./agent\nenv_inherit: all")
    assert plan.env["SECRET_TOKEN"] == "hunter2"
    assert plan.env["PWD"] == plan.cwd
    assert wire.ENV_IMAGE_URL not in plan.env


def test_default_environ_is_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTPROC_TEST_SECRET", "x")
    monkeypatch.setenv("PATH", "/somewhere")
    plan = build_plan(profile_at(tmp_path, "command: ./agent"), TurnRequest("hi"))
    assert plan.env["PATH"] == "/somewhere"
    assert "AGENTPROC_TEST_SECRET" not in plan.env


@pytest.mark.parametrize("inherit", ["infra", "minimal", "all"])
def test_agentproc_debug_reaches_the_agent(tmp_path: Path, inherit: str) -> None:
    """The SDK's failure note says `set AGENTPROC_DEBUG=1`; set for the bridge, it works."""
    environ = {**ENVIRON, wire.ENV_DEBUG: "1", wire.ENV_HOME: "/elsewhere"}
    plan = build_plan(
        profile_at(tmp_path, f"command: ./agent\nenv_inherit: {inherit}"),
        TurnRequest("hi"),
        environ=environ,
    )
    assert plan.env[wire.ENV_DEBUG] == "1"
    if inherit != "all":
        assert wire.ENV_HOME not in plan.env, "only the debug switch, not every SDK setting"
        assert "SECRET_TOKEN" not in plan.env
    unset = plan_for(tmp_path, "command: ./agent")
    assert wire.ENV_DEBUG not in unset.env


def test_precedence_profile_env_then_extra_env_then_turn(tmp_path: Path) -> None:
    plan = plan_for(
        tmp_path,
        """
        command: ./agent
        env:
          PATH: /opt/bin
          A: profile
          B: profile
        """,
        env={"B": "cli", "C": "cli"},
    )
    assert plan.env["PATH"] == "/opt/bin"
    assert (plan.env["A"], plan.env["B"], plan.env["C"]) == ("profile", "cli", "cli")
    assert plan.env[wire.ENV_MESSAGE] == "hi"


def test_extra_env_is_taken_literally(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "command: ./agent", env={"X": "{{MESSAGE}} ${HOME} $$"})
    assert plan.env["X"] == "{{MESSAGE}} ${HOME} $$"


@pytest.mark.parametrize("name", [wire.ENV_MESSAGE, wire.ENV_SESSION_ID, wire.ENV_PERMISSION])
def test_extra_env_cannot_set_turn_variables(tmp_path: Path, name: str) -> None:
    with pytest.raises(LaunchError, match=f"--env cannot set {name}") as info:
        plan_for(tmp_path, "command: ./agent", env={name: "x"})
    assert info.value.exit_code == 2


@pytest.mark.parametrize("name", ["", "A-B", "1X", "A=B"])
def test_extra_env_name_must_be_valid(tmp_path: Path, name: str) -> None:
    with pytest.raises(LaunchError, match="invalid environment variable name"):
        plan_for(tmp_path, "command: ./agent", env={name: "x"})


# --- cwd -------------------------------------------------------------------------------------


def test_cwd_defaults_to_profile_folder(tmp_path: Path) -> None:
    assert plan_for(tmp_path, "command: ./agent").cwd == str(tmp_path.resolve())


def test_relative_cwd_is_relative_to_profile_folder(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "command: ./agent\ncwd: ../work")
    assert plan.cwd == str(tmp_path.resolve().parent / "work")


def test_absolute_cwd_and_placeholder(tmp_path: Path) -> None:
    assert plan_for(tmp_path, "command: ./agent\ncwd: /srv/x").cwd == "/srv/x"
    plan = plan_for(tmp_path, "command: ./agent\ncwd: '{{PROFILE_DIR}}/s/{{SESSION_NAME}}'")
    assert plan.cwd == str(tmp_path.resolve() / "s" / "default")


def test_cwd_argument_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    plan = plan_for(tmp_path, "command: ./agent\ncwd: elsewhere", cwd="here")
    assert plan.cwd == str(tmp_path / "here")
    assert plan.env["PWD"] == plan.cwd


def test_profile_not_from_a_file_runs_in_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    plan = build_plan(Profile(command="./agent", cwd="sub"), TurnRequest("hi"), environ=ENVIRON)
    assert plan.cwd == str(tmp_path / "sub")


# --- values that cannot be passed ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "what"),
    [
        ({"message": "a\0b"}, "the message"),
        ({"session_name": "a\0"}, "the session name"),
        ({"from_user": "\0"}, "the from-user name"),
        ({"env": {"K": "v\0"}}, "the --env value for K"),
        ({"cwd": "/tmp/a\0b"}, "the working directory (--cwd)"),
        ({"attachments": [wire.Attachment("file", "https://x/\0")]}, "the url of an attachment"),
    ],
)
def test_nul_is_refused_naming_the_value(
    tmp_path: Path, kwargs: dict[str, object], what: str
) -> None:
    message = kwargs.pop("message", "hi")
    with pytest.raises(LaunchError) as info:
        plan_for(tmp_path, "command: ./agent", message, **kwargs)  # type: ignore[arg-type]
    assert info.value.message == f"{what} contains a NUL byte, which cannot be passed to a process"
    assert info.value.exit_code == 2


def test_lone_surrogate_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match="the message contains a character that cannot be"):
        plan_for(tmp_path, "command: ./agent", "bad \ud800 text")


def test_nul_from_environment_variable(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match="NUL"):
        build_plan(
            profile_at(tmp_path, "command: ./agent"), TurnRequest("hi"), environ={"HOME": "a\0"}
        )


# Sizes: "AGENT_MESSAGE=" + message + NUL must fit in MAX_ARG_STRLEN.
FITS = MAX_ARG_STRLEN - len("AGENT_MESSAGE=") - 1


def test_largest_message_that_fits(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "command: ./agent", "x" * FITS)
    assert len(plan.env[wire.ENV_MESSAGE]) == FITS


def test_message_too_large_for_the_environment(tmp_path: Path) -> None:
    with pytest.raises(LaunchError) as info:
        plan_for(tmp_path, "command: ./agent", "x" * (FITS + 1))
    assert info.value.message == (
        f"the message is {FITS + 1} bytes, too large to pass in the environment (limit 128 KiB)"
    )
    assert "stdin: message" in info.value.hint
    assert info.value.exit_code == 2


def test_message_too_large_counts_bytes_not_characters(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match=f"is {FITS + 1} bytes"):
        plan_for(tmp_path, "command: ./agent", "é" * ((FITS + 1) // 2))


def test_large_message_goes_to_stdin_only(tmp_path: Path) -> None:
    message = "y" * (FITS + 1)
    plan = plan_for(tmp_path, "command: ./agent\nstdin: message", message)
    assert wire.ENV_MESSAGE not in plan.env
    assert plan.stdin_data == message.encode()
    assert plan.warnings == ()


def test_flag_is_set_only_when_the_message_is_on_stdin_alone(tmp_path: Path) -> None:
    fits = plan_for(tmp_path, "command: ./agent\nstdin: message", "x" * FITS)
    assert fits.env[wire.ENV_MESSAGE] == "x" * FITS
    assert wire.ENV_MESSAGE_ON_STDIN not in fits.env
    big = plan_for(tmp_path, "command: ./agent\nstdin: message", "x" * (FITS + 1))
    assert big.env[wire.ENV_MESSAGE_ON_STDIN] == "1"
    assert wire.ENV_MESSAGE not in big.env


def test_flag_is_set_when_the_total_is_too_large(tmp_path: Path) -> None:
    """Each variable fits, but all of them together do not: the message goes to stdin."""
    chunk = "v" * (MAX_ARG_STRLEN // 2)
    count = arg_max() // len(chunk)
    extra = {f"BIG_{i}": chunk for i in range(count - 2)}
    message = "m" * (MAX_ARG_STRLEN - 100)
    plan = plan_for(tmp_path, "command: ./agent\nstdin: message", message, env=extra)
    assert wire.ENV_MESSAGE not in plan.env
    assert plan.env[wire.ENV_MESSAGE_ON_STDIN] == "1"
    assert plan.stdin_data == message.encode()
    with pytest.raises(LaunchError) as info:
        plan_for(tmp_path, "command: ./agent", message, env=extra)
    assert "stdin: message" in info.value.hint


def test_the_flag_cannot_be_set_by_a_profile_or_the_command_line(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match="--env cannot set AGENT_MESSAGE_ON_STDIN"):
        plan_for(tmp_path, "command: ./agent", env={wire.ENV_MESSAGE_ON_STDIN: "1"})
    path = tmp_path / "p.yaml"
    path.write_text("command: ./agent\nenv:\n  AGENT_MESSAGE_ON_STDIN: '1'\n")
    with pytest.raises(ProfileError, match="set by the bridge for every turn"):
        load_profile(path)
    stale = {**ENVIRON, wire.ENV_MESSAGE_ON_STDIN: "1"}
    plan = plan_for(tmp_path, "command: ./agent\nenv_inherit: all", environ=stale)
    assert wire.ENV_MESSAGE_ON_STDIN not in plan.env, "a bridge run by an agent passes none on"


def test_message_in_args_too_large(tmp_path: Path) -> None:
    with pytest.raises(LaunchError) as info:
        plan_for(
            tmp_path,
            "command: ./agent\nargs: [-p, '{{MESSAGE}}']\nstdin: message",
            "z" * MAX_ARG_STRLEN,
        )
    assert info.value.message.startswith("argument 2 of the command is ")
    assert "{{MESSAGE}}" in info.value.hint


def test_total_size_too_large(tmp_path: Path) -> None:
    chunk = "v" * (MAX_ARG_STRLEN // 2)
    extra = {f"BIG_{i}": chunk for i in range(arg_max() // len(chunk) + 2)}
    with pytest.raises(LaunchError, match=r"together are \d+ bytes, more than this system allows"):
        plan_for(tmp_path, "command: ./agent", env=extra)


# --- a real process --------------------------------------------------------------------------

PRINT_TURN = "import os, sys; print(sys.argv[1]); print(os.environ['AGENT_MESSAGE']); " + (
    "print(len(sys.stdin.read()))"
)


def test_plan_runs_a_real_process(tmp_path: Path) -> None:
    profile = profile_at(
        tmp_path,
        f"""
        command: {sys.executable}
        args: ["-c", "{PRINT_TURN}", "{{{{MESSAGE}}}}"]
        stdin: message
        """,
    )
    message = "two words, {{SESSION_ID}} and ${HOME} — ünïcode"
    plan = build_plan(profile, TurnRequest(message))
    preflight(plan)
    done = subprocess.run(
        plan.argv,
        env=plan.env,
        cwd=plan.cwd,
        input=plan.stdin_data,
        capture_output=True,
        check=True,
    )
    out = done.stdout.decode().splitlines()
    assert out == [message, message, str(len(message))]


# --- preflight -------------------------------------------------------------------------------


def executable(path: Path, text: str = "#!/bin/sh\necho hi\n") -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def test_preflight_accepts_a_good_plan(tmp_path: Path) -> None:
    agent = executable(tmp_path / "agent")
    plan = plan_for(tmp_path, "command: ./agent")
    assert preflight(plan) == str(agent.resolve())


def test_preflight_missing_cwd(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "command: ./agent\ncwd: nowhere")
    with pytest.raises(LaunchError) as info:
        preflight(plan)
    assert (
        info.value.message == f"working directory does not exist: {tmp_path.resolve() / 'nowhere'}"
    )
    assert info.value.exit_code == 2


def test_preflight_tilde_cwd_gets_a_hint(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "command: ./agent\ncwd: ~/work")
    with pytest.raises(LaunchError) as info:
        preflight(plan)
    assert "${HOME}" in info.value.hint


def test_preflight_cwd_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    plan = plan_for(tmp_path, "command: ./agent\ncwd: file")
    with pytest.raises(LaunchError, match="is not a directory"):
        preflight(plan)


def test_preflight_relative_command_missing(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "command: ./agent")
    with pytest.raises(LaunchError) as info:
        preflight(plan)
    assert info.value.message == "command not found: ./agent"
    assert info.value.exit_code == 127
    assert str(tmp_path.resolve()) in info.value.hint


def test_preflight_command_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "agent").mkdir()
    with pytest.raises(LaunchError, match="is a directory") as info:
        preflight(plan_for(tmp_path, "command: ./agent"))
    assert info.value.exit_code == 126


def test_preflight_command_not_executable(tmp_path: Path) -> None:
    (tmp_path / "agent").write_text("#!/bin/sh\n")
    with pytest.raises(LaunchError) as info:
        preflight(plan_for(tmp_path, "command: ./agent"))
    assert info.value.message == "command is not executable: ./agent"
    assert info.value.exit_code == 126
    assert f"chmod +x {tmp_path.resolve() / 'agent'}" in info.value.hint


def test_preflight_absolute_command(tmp_path: Path) -> None:
    agent = executable(tmp_path / "agent")
    assert preflight(plan_for(tmp_path, f"command: {agent}", cwd="/")) == str(agent)


def test_preflight_bare_command_not_on_path(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "command: surely-not-a-real-program")
    with pytest.raises(LaunchError) as info:
        preflight(plan)
    assert info.value.message == "command not found: 'surely-not-a-real-program' is not on PATH"
    assert info.value.exit_code == 127
    assert "/usr/bin:/bin" in info.value.hint


def test_preflight_uses_the_plans_path(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = executable(bin_dir / "my-agent")
    plan = plan_for(tmp_path, f"command: my-agent\nenv:\n  PATH: {bin_dir}")
    assert preflight(plan) == str(tool)
    # A relative PATH entry is found from the agent's cwd, as the child would.
    plan = plan_for(tmp_path, "command: my-agent\nenv:\n  PATH: bin")
    assert preflight(plan) == str(tmp_path.resolve() / "bin" / "my-agent")


def test_preflight_missing_script_of_an_interpreter(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, f"command: {sys.executable} -u ./agent.py")
    with pytest.raises(LaunchError) as info:
        preflight(plan)
    assert info.value.message == f"script not found: ./agent.py (in {tmp_path.resolve()})"
    assert info.value.exit_code == 127


@pytest.mark.parametrize("interpreter", ["python3", "python3.11", "node", "bash", "sh", "ruby"])
def test_interpreters_are_recognised(tmp_path: Path, interpreter: str) -> None:
    executable(tmp_path / interpreter)
    plan = plan_for(tmp_path, f"command: ./{interpreter}\nargs: [lib/main.x]")
    with pytest.raises(LaunchError, match=r"script not found: lib/main\.x"):
        preflight(plan)


def test_preflight_script_present(tmp_path: Path) -> None:
    (tmp_path / "agent.py").write_text("print('hi')\n")
    plan = plan_for(tmp_path, f"command: {sys.executable} agent.py")
    assert preflight(plan) == sys.executable


@pytest.mark.parametrize(
    "args",
    [
        ["-c", "open('/etc/hosts')"],
        ["-m", "http.server"],
        ["-W", "ignore", "x/y.py"],
        ["--version"],
        ["not-a-script"],
    ],
)
def test_preflight_does_not_guess_when_unsure(tmp_path: Path, args: list[str]) -> None:
    plan = build_plan(
        Profile(command=sys.executable, args=args, cwd=str(tmp_path)),
        TurnRequest("hi"),
        environ=ENVIRON,
    )
    assert preflight(plan) == sys.executable


def test_preflight_ignores_scripts_of_other_programs(tmp_path: Path) -> None:
    agent = executable(tmp_path / "agent")
    plan = plan_for(tmp_path, "command: ./agent ./missing.py")
    assert preflight(plan) == str(agent.resolve())


def test_preflight_uses_the_plans_path_not_the_bridges(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "command: sh", environ={"PATH": str(tmp_path)})
    with pytest.raises(LaunchError, match="not on PATH"):
        preflight(plan)


# --- reference-format profiles -------------------------------------------------------------


def test_reference_profile_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "ref"
    folder.mkdir()
    (folder / "profile.yaml").write_text(
        "name: r\nmaintainer: me\nagentproc:\n  command: ./agent\n  include_stderr_in_reply: true\n"
    )
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    profile = load_profile(folder)
    plan = build_plan(profile, TurnRequest("hi"), environ=ENVIRON)
    assert plan.cwd == str(here) and plan.env["PWD"] == str(here)
    assert plan.include_stderr_in_reply is True
    assert plan.warnings == profile.load_warnings
    (warning,) = plan.warnings
    assert "maintainer (line 2)" in warning
    again = build_plan(profile, TurnRequest("hi"), environ=ENVIRON)
    assert again.warnings == plan.warnings, "every plan carries them; a plan is not stateful"
    explicit = build_plan(profile, TurnRequest("hi", cwd=tmp_path), environ=ENVIRON)
    assert explicit.cwd == str(tmp_path), "--cwd still wins"
