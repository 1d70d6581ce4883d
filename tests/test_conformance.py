"""The conformance table, run through the state machine and through real processes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from bridge import load_profile, run_turn
from bridge.turn.machine import ProcessExit, Turn, TurnResult

CASES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "conformance.yaml").read_text(encoding="utf-8")
)
IDS = [c["name"] for c in CASES]


def case_bytes(case: dict[str, Any]) -> bytes:
    if "stdout_hex" in case:
        return bytes.fromhex(case["stdout_hex"])
    return str(case.get("stdout", "")).encode("utf-8")


def caps(case: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("max_reply_chars", "truncation_suffix", "max_line_bytes", "streaming"):
        if key in case:
            out[key] = case[key]
    return out


def check(case: dict[str, Any], result: TurnResult) -> None:
    got = result.to_dict()
    for key, want in case["expect"].items():
        assert got[key] == want, f"{case['name']}: {key}"
    if "error_contains" in case:
        assert result.error is not None and case["error_contains"] in result.error
    if case.get("warns"):
        assert result.warnings, f"{case['name']}: expected a warning"


def run_machine(case: dict[str, Any], step: int | None) -> TurnResult:
    turn = Turn(session_id=case.get("session_id", ""), **caps(case))
    data = case_bytes(case)
    if step is None:
        turn.feed(data)
    else:
        for i in range(0, len(data), step):
            turn.feed(data[i : i + step])
    turn.end_of_output()
    code = -case["signal"] if "signal" in case else case.get("exit", 0)
    return turn.finish(ProcessExit(returncode=code))


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("step", [None, 1, 7], ids=["whole", "byte-by-byte", "7-byte-chunks"])
def test_state_machine(case: dict[str, Any], step: int | None) -> None:
    check(case, run_machine(case, step))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_real_process(case: dict[str, Any], py_agent: Callable[..., Path]) -> None:
    profile = load_profile(py_agent("replay.py", timeout_secs=30, **caps(case)))
    env = {"REPLAY_HEX": case_bytes(case).hex(), "REPLAY_CHUNK": "5"}
    if "signal" in case:
        env["REPLAY_SIGNAL"] = str(case["signal"])
    else:
        env["REPLAY_EXIT"] = str(case.get("exit", 0))
    result = anyio.run(
        lambda: run_turn(profile, "go", session_id=case.get("session_id", ""), env=env)
    )
    check(case, result)
