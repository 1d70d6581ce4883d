"""`agentproc serve` with the claude-code profile: the real Claude Code CLI
behind the HTTP API, against a fake Anthropic API on loopback.

A person talks to the agent only through HTTP here: a message and its
streamed reply, the next message resuming the agent's session, and a tool
approval answered with the API's approval route.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from e2e.fakemodel import FakeModel, Reply, ToolUse

from .claude_setup import claude_env
from .conftest import AGENTPROC


@contextmanager
def served(env: dict[str, str], cwd: Path, project: Path) -> Iterator[httpx.Client]:
    """``agentproc serve`` with one route, claude, running in ``project``."""
    config = cwd / "bridge.yaml"
    config.write_text(f"routes:\n  claude: {{profile: claude-code, cwd: {project}}}\n")
    proc = subprocess.Popen(
        [AGENTPROC, "serve", "--config", str(config), "--port", "0"],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    err: list[str] = []
    assert proc.stdout is not None and proc.stderr is not None
    reader = threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), "".join(err)
        with httpx.Client(base_url=url, timeout=60) as client:
            yield client
    finally:
        proc.terminate()
        assert proc.wait(30) == 0, "".join(err)
        reader.join(5)
        assert "Traceback" not in "".join(err), "".join(err)


def events(client: httpx.Client, conv: str, turn: int) -> Iterator[tuple[str, dict[str, Any]]]:
    with client.stream("GET", f"/v1/conversations/{conv}/events", params={"turn": turn}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                yield event["type"], event


def say(client: httpx.Client, conv: str, text: str, turn: int) -> tuple[str, dict[str, Any]]:
    """Send ``text``; the turn's streamed text and its turn.completed data."""
    r = client.post(f"/v1/conversations/{conv}/messages", json={"text": text})
    assert r.status_code == 202, r.text
    streamed = ""
    for type_, event in events(client, conv, turn):
        if type_ == "turn.partial":
            streamed += event["data"]["text"]
        if type_ == "turn.completed":
            return streamed, event["data"]
    raise AssertionError("no turn.completed")


def test_a_conversation_over_http_streams_and_resumes_the_session(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    model.script(Reply("Noted: the password is swordfish.", chunks=3), Reply("It was swordfish."))
    with served(claude_env(env, model), tmp_path, project) as client:
        conv = client.post("/v1/conversations", json={"route": "claude"}).json()["id"]
        streamed, first = say(client, conv, "remember the password swordfish", 1)
        assert first["status"] == "ok", first
        assert first["reply"] == "Noted: the password is swordfish."
        assert streamed.endswith("Noted: the password is swordfish.")
        _, second = say(client, conv, "what was the password?", 2)
        assert second["reply"] == "It was swordfish.", second
        assert second["session_id"] == first["session_id"] != ""
        assert client.get(f"/v1/conversations/{conv}").json()["session_id"] == first["session_id"]
    earlier = json.dumps(model.model_calls[-1].json.get("messages"))
    assert "remember the password swordfish" in earlier


def test_a_tool_request_is_approved_through_the_api(
    model: FakeModel, env: dict[str, str], project: Path, tmp_path: Path
) -> None:
    model.script(
        ToolUse(
            "Bash",
            {"command": "echo approved > approved.txt", "description": "Write approved.txt"},
            text="I will write the file.",
        ),
        Reply("Done with the file."),
    )
    with served(claude_env(env, model), tmp_path, project) as client:
        conv = client.post("/v1/conversations").json()["id"]
        client.post(f"/v1/conversations/{conv}/messages", json={"text": "write the file"})
        asked = done = None
        for type_, event in events(client, conv, 1):
            if type_ == "turn.permission":
                asked = event
                assert event["data"]["tool"] == "Bash"
                assert event["data"]["input"]["command"] == "echo approved > approved.txt"
                answer = client.post(
                    f"/v1/approvals/{event['approval_id']}", json={"decision": "allow"}
                )
                assert answer.status_code == 200 and answer.json()["answered"], answer.text
            if type_ == "turn.completed":
                done = event["data"]
    assert asked is not None and done is not None
    assert done["status"] == "ok" and done["reply"] == "Done with the file.", done
    assert (project / "approved.txt").exists()
