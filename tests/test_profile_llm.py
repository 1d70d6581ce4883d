"""The llm profile's answers that end badly, against a real HTTP server on loopback.

A chat-completions stream is finished when a choice carries a
``finish_reason`` or the stream says ``data: [DONE]``. One that just stops
(a proxy gave up, the connection broke) is a cut answer: the turn fails,
what streamed stays streamed, and the conversation does not keep it.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from profile_kit import Loopback, llm_turn

from bridge.turn.machine import TurnResult


class Server:
    """Answers each request with the next of ``plans``: a list of SSE data
    payloads to stream, then how to end (``"done"``, ``"close"``, ``"drop"``),
    or an HTTP status with headers."""

    def __init__(self) -> None:
        self.plans: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                plan = server.plans.pop(0)
                if "status" in plan:
                    text = json.dumps({"error": {"message": plan["message"]}}).encode()
                    self.send_response(plan["status"])
                    for name, value in plan.get("headers", {}).items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for data in plan["events"]:
                    self.chunk(f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n")
                if plan["end"] == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if plan["end"] == "done":
                    self.chunk("data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")  # the end of the body, cleanly

            def chunk(self, text: str) -> None:
                raw = text.encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
                self.wfile.flush()

        self.loopback = Loopback(Handler)
        self.url = f"{self.loopback.url}/v1"


@pytest.fixture
def server() -> Iterator[Server]:
    found = Server()
    with found.loopback:
        yield found


def piece(text: str, finish: str | None = None) -> dict[str, Any]:
    delta = {"content": text} if text else {}
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def turn(server: Server, tmp_path: Path, message: str = "hi", session_id: str = "") -> TurnResult:
    return llm_turn(server.url, tmp_path, message, session_id=session_id, LLM_MODEL="m")


CUT = "the model server's answer was cut off: "


@pytest.mark.parametrize(
    ("end", "why"),
    [
        ("close", "the stream ended without a finish reason or [DONE]"),
        ("drop", "the "),  # the stream ended, or the connection broke: either says so
    ],
)
def test_a_stream_that_stops_early_fails_and_is_not_remembered(
    server: Server, tmp_path: Path, end: str, why: str
) -> None:
    server.plans = [
        {"events": [piece("Half an "), piece("answer")], "end": end},
        {"events": [piece("Fine.", "stop")], "end": "done"},
    ]
    cut = turn(server, tmp_path)
    assert cut.exit_code == 1
    assert cut.error is not None and cut.error.startswith(CUT + why), cut.error
    assert "send the message again" in cut.error
    assert cut.partials == ["Half an ", "answer"]
    again = turn(server, tmp_path, "again", session_id=cut.session_id)
    assert again.reply == "Fine."
    assert server.requests[1]["messages"] == [{"role": "user", "content": "again"}]


def test_a_finish_reason_without_done_or_done_without_one_is_finished(
    server: Server, tmp_path: Path
) -> None:
    server.plans = [
        {"events": [piece("One."), piece("", "stop")], "end": "close"},
        {"events": [piece("Two.")], "end": "done"},
    ]
    assert turn(server, tmp_path).reply == "One."
    assert turn(server, tmp_path).reply == "Two."


def test_an_answer_stopped_by_the_length_limit_says_so(server: Server, tmp_path: Path) -> None:
    server.plans = [{"events": [piece("A long", "length")], "end": "done"}]
    result = turn(server, tmp_path)
    assert result.error is None, result.error
    assert result.reply == (
        "A long\n\n(The model stopped at its length limit: the answer may be incomplete.)"
    )


def test_a_429_names_the_wait_the_server_asks_for(server: Server, tmp_path: Path) -> None:
    server.plans = [{"status": 429, "message": "Slow down", "headers": {"Retry-After": "7"}}]
    result = turn(server, tmp_path)
    assert result.error == (
        "the model server answered 429 Too Many Requests: Slow down "
        "(it asks to wait 7 s before trying again)"
    )
    assert len(server.requests) == 1  # not retried
