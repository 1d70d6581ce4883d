"""hypothesis properties of the wire rules and the turn state machine."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agentproc import wire
from bridge.turn.machine import ProcessExit, Turn, TurnResult

# Lines that look like the protocol, almost look like it, or are noise.
protocol_lines = st.one_of(
    st.builds(lambda t: wire.partial_line(t), st.text()),
    st.builds(lambda t: wire.error_line(t), st.text()),
    st.builds(lambda t: wire.PREFIX_SESSION + t, st.text(alphabet="ab.-_~=/ \t", max_size=8)),
    st.builds(lambda t: wire.PREFIX_PARTIAL + t, st.text(max_size=20)),
    st.builds(lambda t: wire.PREFIX_PERMISSION_REQUEST + t, st.text(max_size=20)),
    st.sampled_from(["AGENT_", "AGENT_SESSION", " AGENT_ERROR:x", "\r", ""]),
    st.text(max_size=30),
)


def reference_lines(data: bytes, limit: int) -> list[str]:
    """The framing rules written the slow, obvious way."""
    parts = data.split(b"\n")
    tail = parts.pop()
    out = []
    for raw in [*parts, tail] if tail else parts:
        raw = raw[:limit]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        out.append(raw.decode("utf-8", "replace"))
    return out


def feed_in_cuts(turn: Turn, data: bytes, cuts: list[int], code: int = 0) -> TurnResult:
    """Feed ``data`` in pieces of the given sizes (then the rest) and finish."""
    pos = 0
    for n in cuts:
        turn.feed(data[pos : pos + n])
        pos += n
    turn.feed(data[pos:])
    turn.end_of_output()
    return turn.finish(ProcessExit(returncode=code))


@given(st.binary(max_size=300), st.lists(st.integers(1, 40), max_size=30), st.integers(1, 50))
def test_framer_matches_reference_for_any_chunking(
    data: bytes, cuts: list[int], limit: int
) -> None:
    framer = wire.LineFramer(limit)
    got: list[str] = []
    pos = 0
    for n in cuts:
        got += framer.feed(data[pos : pos + n])
        pos += n
    got += framer.feed(data[pos:])
    got += framer.close()
    assert got == reference_lines(data, limit)


@given(st.text())
def test_partial_and_error_lines_round_trip(text: str) -> None:
    for line, kind in (
        (wire.partial_line(text), wire.PARTIAL),
        (wire.error_line(text), wire.ERROR),
    ):
        assert "\n" not in line
        got_kind, payload = wire.classify(line)
        assert got_kind == kind
        assert wire.decode_payload(payload) == (text, True)


@given(st.text())
def test_rendered_body_always_reads_as_body(text: str) -> None:
    lines = list(wire.render_body(text))
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
    framer = wire.LineFramer(len(data) + 1)
    read = framer.feed(data) + framer.close()
    assert all(wire.classify(line)[0] == wire.BODY for line in read)
    expect = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    assert "\n".join(line.removeprefix(wire.BODY_GUARD) for line in read) == expect


@given(st.text(max_size=300))
def test_session_rule(value: str) -> None:
    got = wire.normalize_session_id(value)
    if got is not None:
        assert got == value.strip() and got not in (".", "..")
        assert "/" not in got and "\\" not in got and got.isascii()
        assert wire.is_valid_session_id(got)


@settings(max_examples=300)
@given(
    st.lists(protocol_lines, max_size=40),
    st.integers(1, 60),
    st.sampled_from(["", "…", "\n\n…(truncated)"]),
    st.booleans(),
    st.integers(-15, 3),
    st.lists(st.integers(1, 50), max_size=10),
)
def test_turn_never_raises_and_keeps_its_rules(
    lines: list[str],
    cap: int,
    suffix: str,
    streaming: bool,
    code: int,
    cuts: list[int],
) -> None:
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    turn = Turn(
        streaming=streaming, max_reply_chars=cap, truncation_suffix=suffix, session_id="start"
    )
    result = feed_in_cuts(turn, data, cuts, code)

    # Caps always hold.
    assert len(result.reply) <= cap + len(suffix)
    assert sum(map(len, result.partials)) <= cap + len(suffix)
    if not streaming:
        assert result.partials == []

    # The session rule: the last valid id wins, otherwise the starting one stays.
    framed = reference_lines(data, wire.DEFAULT_MAX_LINE_BYTES)
    valid = [
        v
        for line in framed
        if line.startswith(wire.PREFIX_SESSION)
        and (v := wire.normalize_session_id(line[len(wire.PREFIX_SESSION) :])) is not None
    ]
    assert result.session_id == (valid[-1] if valid else "start")
    assert result.session_captured == bool(valid)

    # The first error decides; exit-code precedence.
    errors = [line for line in framed if line.startswith(wire.PREFIX_ERROR)]
    if errors:
        first = wire.decode_payload(errors[0][len(wire.PREFIX_ERROR) :])[0]
        assert result.error == (first or "the agent reported an error without a message")
        assert result.exit_code == 1
    elif code < 0:
        assert result.exit_code == 128 - code
    else:
        assert result.exit_code == code
        assert (result.error is None) == (code == 0)


@given(st.booleans(), st.booleans(), st.booleans(), st.integers(-15, 5))
def test_exit_code_precedence(
    timed_out: bool, cancelled: bool, agent_error: bool, code: int
) -> None:
    turn = Turn()
    if agent_error:
        turn.feed(b'AGENT_ERROR:"no"\n')
    turn.end_of_output()
    r = turn.finish(ProcessExit(returncode=code, timed_out=timed_out, cancelled=cancelled))
    if timed_out:
        assert r.exit_code == 124
    elif cancelled:
        assert r.exit_code == 130
    elif agent_error:
        assert r.exit_code == 1
    elif code < 0:
        assert r.exit_code == 128 - code
    else:
        assert r.exit_code == code


@given(st.text(max_size=40))
def test_string_fast_path_agrees_with_json(payload: str) -> None:
    import json

    fast = wire.string_payload(payload, 0)
    if fast is not None:
        assert fast == json.loads(payload)
    quoted = json.dumps(payload, ensure_ascii=False)
    assert wire.string_payload(quoted, 0) == payload


@given(st.lists(protocol_lines, max_size=40), st.lists(st.integers(1, 50), max_size=10))
def test_partials_and_body_match_the_slow_rules(lines: list[str], cuts: list[int]) -> None:
    """The state machine's fast paths give what the plain rules give."""
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    result = feed_in_cuts(Turn(max_reply_chars=10**9), data, cuts)
    partials: list[str] = []
    body: list[str] = []
    for line in reference_lines(data, wire.DEFAULT_MAX_LINE_BYTES):
        kind, payload = wire.classify(line)
        if kind == wire.ERROR:
            break
        if kind == wire.PARTIAL:
            text = wire.decode_payload(payload)[0]
            if text:
                partials.append(text)
        elif kind == wire.BODY:
            body.append(line)
    assert result.partials == partials
    assert result.reply == "\n".join(body)


# --- permission frames -------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
frame_keys = st.sampled_from(
    [
        "request_id",
        "id",
        "tool_name",
        "tool",
        "input",
        "description",
        "tool_use_id",
        "behavior",
        "allow",
        "updated_input",
        "message",
        "other",
    ]
)
frames = st.one_of(
    st.dictionaries(
        frame_keys, json_values | st.sampled_from(["allow", "deny", "Bash"]), max_size=6
    ),
    json_values,
)


@settings(max_examples=300)
@given(frames)
def test_any_response_is_a_decision_and_only_clear_allows_allow(data: object) -> None:
    import json

    decision = wire.PermissionDecision.from_payload(json.dumps(data))
    if decision.allow:
        assert isinstance(data, dict)
        votes = [data.get("behavior") == "allow"] if data.get("behavior") is not None else []
        votes += [data["allow"] is True] if data.get("allow") is not None else []
        assert votes and all(votes)
    else:
        assert decision.updated_input is None
    assert isinstance(decision.message, str)


@settings(max_examples=300)
@given(frames)
def test_any_request_parses_or_says_why(data: object) -> None:
    import json

    try:
        request = wire.PermissionRequest.from_payload(json.dumps(data), "9")
    except ValueError as exc:
        assert str(exc).startswith("permission request")
        return
    assert request.tool and isinstance(request.id, str) and request.id
    again = wire.PermissionRequest.from_payload(json.dumps(request.to_dict()), "?")
    assert again.to_dict() == request.to_dict()


@settings(max_examples=200)
@given(
    st.booleans(),
    st.one_of(st.none(), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)),
    st.text(max_size=10),
    st.text(min_size=1, max_size=10),
)
def test_a_written_response_reads_back_the_same(
    allow: bool, updated: dict[str, object] | None, message: str, request_id: str
) -> None:
    import json

    decision = wire.PermissionDecision(allow, updated, message)
    read = wire.PermissionDecision.from_payload(json.dumps(decision.to_response(request_id)))
    assert (read.allow, read.message) == (allow, message)
    assert read.updated_input == (updated if allow else None)
