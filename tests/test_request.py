"""TurnRequest: a turn's inputs written down once, and the entry points that take them."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentproc import wire
from agentproc.wire import Attachment
from bridge import TurnRequest, load_profile, run_request, run_turn
from bridge.turn.request import REQUEST_KEYS
from bridge.turn.runner_sync import run_request_blocking, run_turn_blocking

# --- the dict form --------------------------------------------------------------------

#: Any text, lone surrogates included (``agentproc run --stdin`` decodes with
#: surrogateescape, so they do reach a request).
TEXT = st.text(st.characters(exclude_categories=()) | st.characters(categories=["Cs"]))
ATTACHMENTS = st.builds(
    Attachment,
    type=st.sampled_from(wire.ATTACHMENT_TYPES),
    url=TEXT.filter(bool),
    name=st.none() | TEXT,
    mime_type=st.none() | TEXT,
)
REQUESTS = st.builds(
    TurnRequest,
    TEXT,
    session_id=TEXT,
    session_name=TEXT,
    from_user=TEXT,
    attachments=st.lists(ATTACHMENTS, max_size=4),
    cwd=st.none() | TEXT,
    env=st.dictionaries(TEXT, TEXT, max_size=4) | st.lists(st.tuples(TEXT, TEXT), max_size=4),
    timeout=st.none()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False),
    streaming=st.none() | st.booleans(),
)


@settings(max_examples=300)
@given(REQUESTS)
def test_the_dict_form_round_trips_through_json(request: TurnRequest) -> None:
    data = request.to_dict()
    assert list(data) == list(REQUEST_KEYS)
    for ensure_ascii in (True, False):
        text = json.dumps(data, ensure_ascii=ensure_ascii)
        again = TurnRequest.from_dict(json.loads(text))
        assert again == request
        assert again.to_dict() == data
        assert json.dumps(again.to_dict(), ensure_ascii=ensure_ascii) == text
    assert hash(again) == hash(request)


def test_only_the_message_is_required() -> None:
    assert TurnRequest.from_dict({"message": "hi"}) == TurnRequest("hi")
    assert TurnRequest("hi").to_dict() == {
        "message": "hi",
        "session_id": "",
        "session_name": "default",
        "from_user": "",
        "attachments": [],
        "cwd": None,
        "env": {},
        "timeout": None,
        "streaming": None,
    }


def test_the_inputs_are_normalised_once() -> None:
    image = Attachment("image", "https://x.example/cat.png")
    a = TurnRequest("hi", attachments=[image], env={"A": "1", "B": "2"}, cwd=Path("/tmp"))
    b = TurnRequest(
        "hi", attachments=(image,), env=[("A", "0"), ("B", "2"), ("A", "1")], cwd="/tmp"
    )
    assert a == b
    assert a.attachments == (image,) and a.cwd == "/tmp"
    assert a.env == (("A", "1"), ("B", "2")) and a.env_dict() == {"A": "1", "B": "2"}
    assert TurnRequest("hi", env={}).env == TurnRequest("hi", env=None).env == ()


def test_a_request_is_frozen() -> None:
    request = TurnRequest("hi", env={"A": "1"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.message = "changed"  # type: ignore[misc]
    assert not hasattr(request, "__dict__")  # slots: nothing else can be put on it
    request.env_dict()["A"] = "changed"
    assert request.env == (("A", "1"),)
    changed = dataclasses.replace(request, message="again", timeout=5.0)
    assert changed == TurnRequest("again", env={"A": "1"}, timeout=5.0)
    assert request.message == "hi" and {request, changed} == {changed, request}


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ([], "a turn request must be a JSON object, not an array"),
        ("hi", "a turn request must be a JSON object, not a string"),
        (None, "a turn request must be a JSON object, not null"),
        ({}, "a turn request needs 'message'"),
        ({"message": "hi", "sesion_id": "s"}, "unknown key 'sesion_id' in a turn request"),
        ({"message": "hi", 1: "x"}, "unknown key 1 in a turn request"),
        ({"message": 5}, "turn request 'message' must be a string, not a number"),
        ({"message": None}, "turn request 'message' must be a string, not null"),
        ({"message": "hi", "session_id": None}, "'session_id' must be a string, not null"),
        ({"message": "hi", "session_name": 1}, "'session_name' must be a string, not a number"),
        ({"message": "hi", "from_user": ["a"]}, "'from_user' must be a string, not an array"),
        ({"message": "hi", "attachments": {}}, "'attachments' must be an array of objects"),
        ({"message": "hi", "attachments": "x"}, "'attachments' must be an array"),
        ({"message": "hi", "attachments": [5]}, "'attachments[0]': an attachment must be"),
        (
            {"message": "hi", "attachments": [{"type": "image", "url": "u"}, {"type": "x"}]},
            "'attachments[1]': attachment type 'x' is not one of",
        ),
        ({"message": "", "attachments": [{"type": "file"}]}, "'attachments[0]': an attachment"),
        (
            {"message": "", "attachments": [{"type": "file", "url": "u", "name": 3}]},
            "'attachments[0]': attachment 'name' must be a string",
        ),
        ({"message": "hi", "cwd": 5}, "'cwd' must be a string or null, not a number"),
        ({"message": "hi", "env": ["A=1"]}, "'env' must be an object of strings"),
        ({"message": "hi", "env": {"A": 1}}, "'env['A']' must be a string, not a number"),
        ({"message": "hi", "env": {"A": None}}, "'env['A']' must be a string, not null"),
        ({"message": "hi", "env": {2: "x"}}, "'env' has a name that is a number"),
        ({"message": "hi", "timeout": "5"}, "'timeout' must be a number of seconds or null"),
        (
            {"message": "hi", "timeout": True},
            "'timeout' must be a number of seconds or null, not a boolean",
        ),
        (
            {"message": "hi", "streaming": 1},
            "'streaming' must be true, false or null, not a number",
        ),
        ({"message": "hi", "streaming": "no"}, "'streaming' must be true, false or null"),
    ],
)
def test_from_dict_names_what_is_wrong(data: object, says: str) -> None:
    with pytest.raises(ValueError) as info:
        TurnRequest.from_dict(data)
    assert says in str(info.value)


def test_the_unknown_key_error_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"the keys are message, session_id, .*, streaming$"):
        TurnRequest.from_dict({"message": "hi", "stream": False})


# --- the entry points keep their keywords ----------------------------------------------

EMPTY = inspect.Parameter.empty
POS = inspect.Parameter.POSITIONAL_OR_KEYWORD
KW = inspect.Parameter.KEYWORD_ONLY
VAR_KW = inspect.Parameter.VAR_KEYWORD


def shape(fn: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_run_turn_still_takes_every_keyword_it_did() -> None:
    assert shape(run_turn) == [
        ("profile", POS, EMPTY),
        ("message", POS, EMPTY),
        ("session_id", KW, ""),
        ("session_name", KW, "default"),
        ("from_user", KW, ""),
        ("attachments", KW, ()),
        ("on_partial", KW, None),
        ("on_permission", KW, None),
        ("on_event", KW, None),
        ("cancel", KW, None),
        ("cwd", KW, None),
        ("env", KW, None),
        ("timeout", KW, None),
        ("streaming", KW, None),
        ("environ", KW, None),
    ]


def test_run_turn_blocking_still_takes_its_keywords() -> None:
    assert shape(run_turn_blocking) == [
        ("profile", POS, EMPTY),
        ("message", POS, EMPTY),
        ("session_id", KW, ""),
        ("on_partial", KW, None),
        ("on_signal", KW, None),
        ("plan_options", VAR_KW, EMPTY),
    ]


def test_the_request_entry_points() -> None:
    callbacks = [("on_partial", KW, None), ("on_permission", KW, None), ("on_event", KW, None)]
    assert shape(run_request) == [
        ("profile", POS, EMPTY),
        ("request", POS, EMPTY),
        *callbacks,
        ("cancel", KW, None),
        ("environ", KW, None),
    ]
    assert shape(run_request_blocking) == [
        ("profile", POS, EMPTY),
        ("request", POS, EMPTY),
        ("on_partial", KW, None),
        ("on_signal", KW, None),
        ("environ", KW, None),
    ]


#: An agent that prints what it was given, one line each.
REPORTER = (
    'printf "%s\\n" "$AGENT_MESSAGE" "$AGENT_SESSION_ID" "$AGENT_SESSION_NAME" '
    '"$AGENT_FROM_USER" "$AGENT_STREAMING" "$AGENT_IMAGE_URL" "$(pwd)" "$EXTRA" "$FROM_BRIDGE"'
)


def reporter(make_profile: Callable[..., Path]) -> Any:
    path = make_profile("", command="/bin/sh", args=["-c", REPORTER], env_allowlist=["FROM_*"])
    return load_profile(path)


def expected_lines(tmp_path: Path) -> str:
    given = ["hello", "s-1", "work", "ada", "0", "https://x.example/cat.png", str(tmp_path)]
    return "\n".join([*given, "extra", "bridge"])


def test_every_keyword_of_run_turn_reaches_the_agent(
    make_profile: Callable[..., Path], tmp_path: Path
) -> None:
    profile = reporter(make_profile)
    keywords: dict[str, Any] = {
        "session_id": "s-1",
        "session_name": "work",
        "from_user": "ada",
        "attachments": [Attachment("image", "https://x.example/cat.png")],
        "cwd": str(tmp_path),
        "env": {"EXTRA": "extra"},
        "timeout": 20,
        "streaming": False,
        "environ": {"PATH": os.environ["PATH"], "FROM_BRIDGE": "bridge"},
    }

    async def go() -> Any:
        return await run_turn(profile, "hello", **keywords)

    result = anyio.run(go)
    assert result.error is None, result.error
    assert result.reply == expected_lines(tmp_path)
    environ = keywords.pop("environ")
    request = TurnRequest("hello", **keywords)
    assert anyio.run(lambda: run_request(profile, request, environ=environ)).reply == result.reply
    blocking = run_request_blocking(profile, request, environ=environ)
    assert blocking.reply == result.reply
    keywords["extra_env"] = keywords.pop("env")
    old_style = run_turn_blocking(profile, "hello", environ=environ, **keywords)
    assert old_style.reply == result.reply


def test_run_turn_blocking_refuses_an_unknown_keyword(make_profile: Callable[..., Path]) -> None:
    profile = reporter(make_profile)
    with pytest.raises(TypeError, match="unexpected keyword argument 'env'"):
        run_turn_blocking(profile, "hello", env={"A": "1"})


def test_a_request_read_back_runs_the_same_turn(
    make_profile: Callable[..., Path], tmp_path: Path
) -> None:
    """What the log stores is enough to run the turn again."""
    profile = reporter(make_profile)
    request = TurnRequest(
        "hello",
        session_id="s-1",
        session_name="work",
        from_user="ada",
        attachments=[Attachment("image", "https://x.example/cat.png")],
        cwd=tmp_path,
        env={"EXTRA": "extra"},
        streaming=False,
    )
    stored = json.dumps(request.to_dict())
    environ = {"PATH": os.environ["PATH"], "FROM_BRIDGE": "bridge"}
    result = run_request_blocking(
        profile, TurnRequest.from_dict(json.loads(stored)), environ=environ
    )
    assert result.reply == expected_lines(tmp_path)
