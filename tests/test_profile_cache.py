"""The validated-profile cache: a hit is the same profile, anything doubtful is a miss."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bridge.turn.errors import ProfileError
from bridge.turn.launch import build_plan
from bridge.turn.profile import Profile, load_profile
from bridge.turn.profile_cache import ProfileView, cache_dir, load_profile_cached
from bridge.turn.request import TurnRequest


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("AGENTPROC_CACHE_DIR", str(folder))
    return folder / "profiles"


PROFILE = """
name: cached
command: /bin/sh
args: ["-c", "echo ${HOME} {{MESSAGE}}"]
env: {GREETING: hello}
env_allowlist: [HOME]
timeout_secs: 7.5
max_reply_chars: 1000
streaming: false
"""


def cached_entry(path: Path, cache: Path) -> tuple[Path, dict[str, Any]]:
    """Load ``path`` once, so it is cached: the cache's one entry, and what it holds."""
    load_profile_cached(path)
    (entry,) = cache.glob("*.json")
    return entry, json.loads(entry.read_text(encoding="utf-8"))


def test_second_load_is_a_hit_with_the_same_fields(
    make_profile: Callable[..., Path], private_cache: Path
) -> None:
    path = make_profile(PROFILE)
    first = load_profile_cached(path)
    assert isinstance(first, Profile)  # a miss validates with the model
    assert len(list(private_cache.glob("*.json"))) == 1
    second = load_profile_cached(path)
    assert isinstance(second, ProfileView)
    for field in Profile.model_fields:
        assert getattr(second, field) == getattr(first, field), field
    assert second.source == first.source
    assert second.profile_dir == first.profile_dir
    assert second.display_name == first.display_name == "cached"


def test_a_view_plans_the_same_turn_as_the_profile(make_profile: Callable[..., Path]) -> None:
    path = make_profile(PROFILE)
    model = load_profile(path)
    load_profile_cached(path)
    view = load_profile_cached(path)
    assert isinstance(view, ProfileView)
    turn = TurnRequest("hi", session_id="s1")
    environ = {"HOME": "/home/ada", "PATH": "/bin"}
    assert build_plan(view, turn, environ=environ) == build_plan(model, turn, environ=environ)


def test_an_edited_file_is_validated_again(make_profile: Callable[..., Path]) -> None:
    path = make_profile(PROFILE)
    load_profile_cached(path)
    path.write_text(PROFILE.replace("7.5", "9"), encoding="utf-8")
    again = load_profile_cached(path)
    assert isinstance(again, Profile) and again.timeout_secs == 9
    path.write_text(PROFILE.replace("7.5", "true"), encoding="utf-8")
    with pytest.raises(ProfileError, match="timeout_secs"):
        load_profile_cached(path)


def test_an_invalid_profile_is_never_cached(
    make_profile: Callable[..., Path], private_cache: Path
) -> None:
    path = make_profile("command: x\ntimout_secs: 3\n")
    for _ in range(2):
        with pytest.raises(ProfileError, match="timout_secs"):
            load_profile_cached(path)
    assert not list(private_cache.glob("*.json"))


def test_a_corrupt_entry_falls_back_to_validating(
    make_profile: Callable[..., Path], private_cache: Path
) -> None:
    path = make_profile(PROFILE)
    entry, _ = cached_entry(path, private_cache)
    entry.write_text("{not json", encoding="utf-8")
    assert isinstance(load_profile_cached(path), Profile)
    entry.write_text('{"fields": 3}', encoding="utf-8")
    assert isinstance(load_profile_cached(path), Profile)


def test_an_unwritable_cache_is_no_error(
    make_profile: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("AGENTPROC_CACHE_DIR", str(blocker))
    path = make_profile(PROFILE)
    assert isinstance(load_profile_cached(path), Profile)
    assert isinstance(load_profile_cached(path), Profile)


def test_the_cache_can_be_turned_off(
    make_profile: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTPROC_CACHE_DIR", "off")
    assert cache_dir() is None
    path = make_profile(PROFILE)
    load_profile_cached(path)
    assert isinstance(load_profile_cached(path), Profile)


def test_default_location_follows_xdg() -> None:
    assert cache_dir({"XDG_CACHE_HOME": "/x/cache", "HOME": "/h"}) == Path(
        "/x/cache/agentproc/profiles"
    )
    assert cache_dir({"HOME": "/h"}) == Path("/h/.cache/agentproc/profiles")


def test_a_view_is_read_only(make_profile: Callable[..., Path]) -> None:
    path = make_profile(PROFILE)
    load_profile_cached(path)
    view = load_profile_cached(path)
    with pytest.raises(AttributeError, match="read-only"):
        view.timeout_secs = 1  # type: ignore[misc]


def test_same_bytes_elsewhere_is_another_entry(
    make_profile: Callable[..., Path], private_cache: Path
) -> None:
    a = make_profile(PROFILE)
    b = make_profile(PROFILE)
    load_profile_cached(a)
    view_b = load_profile_cached(b)
    assert isinstance(view_b, Profile)  # its folder differs, so does {{PROFILE_DIR}}
    assert os.path.dirname(view_b.source or "") == str(b.parent.resolve())


def test_a_reference_format_profile_keeps_its_notes_and_folder_rule(tmp_path: Path) -> None:
    folder = tmp_path / "ref"
    folder.mkdir()
    (folder / "profile.yaml").write_text(
        "name: ref\nversion: 0.3\nagentproc:\n  command: /bin/echo hi\n", encoding="utf-8"
    )
    model = load_profile_cached(folder)
    view = load_profile_cached(folder)
    assert isinstance(model, Profile) and isinstance(view, ProfileView)
    assert view.is_reference_format and model.is_reference_format
    assert view.runs_in_caller_cwd and model.runs_in_caller_cwd
    assert view.load_warnings == model.load_warnings != ()
    assert "version" in view.load_warnings[0]
    environ = {"PATH": "/bin"}
    plan_view = build_plan(view, TurnRequest("x"), environ=environ)
    assert plan_view == build_plan(model, TurnRequest("x"), environ=environ)
    assert plan_view.cwd == os.getcwd()


def test_the_view_declares_every_field_of_the_model() -> None:
    # The declarations are for the type checker (what a view holds at run time
    # is the model's own dump); a field added to Profile must be declared too.
    import inspect

    source = inspect.getsource(ProfileView)
    for field in Profile.model_fields:
        assert f"        {field}: " in source, f"ProfileView does not declare {field}"


def test_an_entry_for_other_bytes_or_another_path_is_a_miss(
    make_profile: Callable[..., Path], private_cache: Path
) -> None:
    path = make_profile(PROFILE)
    entry, data = cached_entry(path, private_cache)
    for key, value in (("path", "/elsewhere/profile.yaml"), ("text", "command: x\n")):
        changed = {**data, "stamp": {**data["stamp"], key: value}}
        entry.write_text(json.dumps(changed), encoding="utf-8")
        assert isinstance(load_profile_cached(path), Profile), key
    assert isinstance(load_profile_cached(path), ProfileView)


def test_a_changed_profile_model_is_a_miss(
    make_profile: Callable[..., Path], private_cache: Path
) -> None:
    path = make_profile(PROFILE)
    entry, data = cached_entry(path, private_cache)
    # As if written by a model without today's fields (the file's bytes are the same).
    data["stamp"]["model"] = "profile.py:1:1"
    del data["fields"]["requires"]
    entry.write_text(json.dumps(data), encoding="utf-8")
    assert isinstance(load_profile_cached(path), Profile)
    assert isinstance(load_profile_cached(path), ProfileView)
