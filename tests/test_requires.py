"""`requires`: programs an agent needs besides its command, checked before it starts."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from helpers import cli

from bridge import load_profile, run_turn
from bridge.turn.errors import ProfileError


def agent(
    make_profile: Callable[..., Path], marker: Path, requires: object, **fields: object
) -> Path:
    return make_profile(
        "",
        command="/bin/sh",
        args=["-c", f"touch {marker}; echo ran"],
        requires=requires,
        **fields,
    )


def test_a_present_program_lets_the_turn_run(
    make_profile: Callable[..., Path], tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    path = agent(make_profile, marker, [{"program": "sh", "install": "it is always there"}])
    result = anyio.run(lambda: run_turn(load_profile(path), "hi"))
    assert (result.error, result.reply) == (None, "ran")


def test_a_missing_program_fails_before_the_agent_starts(
    make_profile: Callable[..., Path], tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    path = agent(
        make_profile,
        marker,
        [{"program": "no-such-cli-here", "install": "npm install -g no-such-cli"}],
    )
    result = anyio.run(lambda: run_turn(load_profile(path), "hi"))
    assert result.exit_code == 127
    assert result.error is not None and "needs no-such-cli-here" in result.error
    assert "npm install -g no-such-cli" in result.hint
    assert not marker.exists()


def test_a_variable_can_name_the_program(
    make_profile: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "ran"
    requires = [{"program": "no-such-cli-here", "env": "MY_CLI_BIN", "install": "get it"}]
    path = agent(make_profile, marker, requires, env_allowlist=["MY_CLI_BIN"])
    monkeypatch.setenv("MY_CLI_BIN", sys.executable)
    ok = anyio.run(lambda: run_turn(load_profile(path), "hi"))
    assert ok.error is None and ok.reply == "ran"
    monkeypatch.setenv("MY_CLI_BIN", str(tmp_path / "gone"))
    bad = anyio.run(lambda: run_turn(load_profile(path), "hi"))
    assert bad.exit_code == 127 and bad.error is not None
    assert "MY_CLI_BIN=" in bad.error and "names no program" in bad.error
    monkeypatch.delenv("MY_CLI_BIN")
    unset = anyio.run(lambda: run_turn(load_profile(path), "hi"))
    assert "or set MY_CLI_BIN to its full path" in unset.hint


def test_run_says_so_up_front_also_from_the_profile_cache(
    make_profile: Callable[..., Path], tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    path = agent(make_profile, marker, [{"program": "no-such-cli-here", "install": "get it"}])
    env = {**os.environ, "AGENTPROC_CACHE_DIR": str(tmp_path / "cache")}
    for _ in range(2):  # the second run reads the profile from the cache
        run = cli("run", path, "-m", "hi", env=env)
        assert run.code == 127
        assert "needs no-such-cli-here" in run.err and "install it: get it" in run.err
    assert not marker.exists()


@pytest.mark.parametrize(
    ("requires", "words"),
    [
        ("claude", "requires"),
        ([{"program": ""}], "program"),
        ([{"program": " claude"}], "blanks"),
        ([{"programme": "claude"}], "did you mean 'program'"),
        ([{"program": "claude", "env": "not a name"}], "env"),
        ([{"program": "claude", "install": 3}], "install"),
    ],
)
def test_garbage_requirements_are_profile_errors(
    make_profile: Callable[..., Path], requires: object, words: str
) -> None:
    path = make_profile("", command="/bin/echo", requires=requires)
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    assert words in str(err.value)
    assert "profile.yaml:" in str(err.value)
