"""The Anthropic Messages API, as the fake model speaks it (Claude Code's wire).

Claude Code, pointed at the fake with ``ANTHROPIC_BASE_URL``, sends per turn a
``HEAD /`` probe (is the server there?) and then ``POST /v1/messages?beta=true``
with ``"stream": true``. A streamed answer is a sequence of Server-Sent Events,
each named by an ``event:`` line whose ``data:`` object repeats the name in
``type``::

    message_start                        the message, empty content, input usage
    content_block_start  index 0         a text block (or a tool_use block)
    content_block_delta  index 0 ...     text_delta pieces (input_json_delta for a tool)
    content_block_stop   index 0
    message_delta                        stop_reason (end_turn, tool_use) and output usage
    message_stop

An error is an HTTP status with the body
``{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}``
and a ``request-id`` header. Claude Code decides whether to retry from the
status and the ``x-should-retry`` header: it retries a 401 for minutes unless
that header says ``false``, so the fake's 401 says so (as the real API does
for a key that is simply wrong).
"""

from __future__ import annotations

import json
import time
from typing import Any

from .server import Cut, Exchange, FakeModel, Reply, Status, ToolUse, split

#: How long a cut stream stays open after its last piece, so that the client
#: has shown what arrived before the connection drops (as a real network
#: failure would: the bytes come, then nothing).
CUT_AFTER_SECS = 0.3

#: The error ``type`` the API gives for each status.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

#: What the API says with each error, when the test gives no message.
ERROR_MESSAGES = {
    401: "invalid x-api-key",
    429: "Number of request tokens has exceeded your per-minute rate limit",
    500: "Internal server error",
    529: "Overloaded",
}


def route(fake: FakeModel, exchange: Exchange) -> bool:
    request = exchange.request
    path = request.path.split("?", 1)[0]
    if request.method == "HEAD" and path == "/":
        exchange.send_empty(200)  # Claude Code's "is the API reachable" probe
        return True
    if path == "/v1/messages/count_tokens":
        exchange.send_json(200, {"input_tokens": max(1, len(request.body) // 4)})
        return True
    if path != "/v1/messages" or request.method != "POST":
        return False
    body = request.json if isinstance(request.json, dict) else {}
    behaviour = fake.next_behaviour(request)
    number = len(fake.model_calls)
    model = str(body.get("model") or "claude-fake")
    if isinstance(behaviour, Status):
        send_error(exchange, behaviour, number)
    elif not body.get("stream"):
        answer = whole_message(behaviour, model, number)
        if isinstance(behaviour, Cut):  # half of the JSON body, then nothing
            exchange.start_stream("application/json")
            exchange.write(json.dumps(answer)[:60])
            exchange.cut()
        else:
            exchange.send_json(200, answer)
    else:
        stream(exchange, behaviour, model, number)
    return True


def send_error(exchange: Exchange, status: Status, number: int) -> None:
    headers = {"request-id": f"req_fake_{number:04d}"}
    if status.code == 401:
        # Without this Claude Code retries a bad key for minutes; the real API
        # marks errors that will not go away the same way.
        headers["x-should-retry"] = "false"
    headers.update(status.headers)
    error = {
        "type": ERROR_TYPES.get(status.code, "api_error"),
        "message": status.message or ERROR_MESSAGES.get(status.code, f"error {status.code}"),
    }
    body = {"type": "error", "error": error, "request_id": headers["request-id"]}
    exchange.send_json(status.code, body, headers)


def usage(input_tokens: int = 10, output_tokens: int = 1) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def blocks(behaviour: Reply | Cut | ToolUse, number: int) -> list[dict[str, Any]]:
    """The content blocks of the answer."""
    if isinstance(behaviour, ToolUse):
        out: list[dict[str, Any]] = []
        if behaviour.text:
            out.append({"type": "text", "text": behaviour.text})
        out.append(
            {
                "type": "tool_use",
                "id": f"toolu_fake_{number:04d}",
                "name": behaviour.name,
                "input": behaviour.input,
            }
        )
        return out
    return [{"type": "text", "text": behaviour.text}]


def whole_message(behaviour: Any, model: str, number: int) -> dict[str, Any]:
    """A non-streamed answer (``"stream": false``)."""
    content = blocks(behaviour, number)
    return {
        "id": f"msg_fake_{number:04d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if isinstance(behaviour, ToolUse) else "end_turn",
        "stop_sequence": None,
        "usage": usage(output_tokens=5),
    }


def stream(exchange: Exchange, behaviour: Reply | Cut | ToolUse, model: str, number: int) -> None:
    exchange.start_stream(headers={"request-id": f"req_fake_{number:04d}"})
    start = {
        "id": f"msg_fake_{number:04d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage(),
    }
    exchange.sse({"type": "message_start", "message": start}, "message_start")
    exchange.sse({"type": "ping"}, "ping")
    if isinstance(behaviour, Cut):
        text_block(exchange, 0, behaviour.text, 3, cut=True)
        time.sleep(CUT_AFTER_SECS)
        exchange.cut()
        return
    chunks = behaviour.chunks if isinstance(behaviour, Reply) else 2
    for index, block in enumerate(blocks(behaviour, number)):
        if block["type"] == "text":
            text_block(exchange, index, block["text"], chunks)
        else:
            tool_block(exchange, index, block)
    stop_reason = "tool_use" if isinstance(behaviour, ToolUse) else "end_turn"
    exchange.sse(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": 5},
        },
        "message_delta",
    )
    exchange.sse({"type": "message_stop"}, "message_stop")
    exchange.end_stream()


def text_block(
    exchange: Exchange, index: int, text: str, chunks: int, *, cut: bool = False
) -> None:
    start = {"type": "content_block_start", "index": index}
    exchange.sse({**start, "content_block": {"type": "text", "text": ""}}, "content_block_start")
    pieces = list(split(text, chunks))
    if cut:
        pieces = pieces[: max(1, len(pieces) - 1)]  # the rest never arrives
    for piece in pieces:
        delta = {"type": "text_delta", "text": piece}
        exchange.sse(
            {"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta"
        )
    if not cut:
        exchange.sse({"type": "content_block_stop", "index": index}, "content_block_stop")


def tool_block(exchange: Exchange, index: int, block: dict[str, Any]) -> None:
    opening = {**block, "input": {}}
    exchange.sse(
        {"type": "content_block_start", "index": index, "content_block": opening},
        "content_block_start",
    )
    for piece in split(json.dumps(block["input"]), 2):
        delta = {"type": "input_json_delta", "partial_json": piece}
        exchange.sse(
            {"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta"
        )
    exchange.sse({"type": "content_block_stop", "index": index}, "content_block_stop")
