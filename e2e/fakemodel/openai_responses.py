"""The OpenAI Responses API (``POST /v1/responses``, SSE) as Codex calls it.

A streamed response is a sequence of named events, each ``data`` a JSON
object with a ``type`` equal to the event name and a growing
``sequence_number``: ``response.created``, ``response.in_progress``, then per
output item ``response.output_item.added`` ... ``response.output_item.done``
(a ``message`` item with ``output_text`` deltas, or a ``function_call`` item
with its arguments), and finally ``response.completed`` carrying the whole
response with ``usage``. Errors are ``{"error": {"message", "type", "param",
"code"}}`` with the HTTP status.

Codex first tries the same path as a WebSocket (``GET`` with ``Upgrade:
websocket``). This fake has no WebSocket side: it answers the upgrade with
``426 Upgrade Required`` and a JSON error, which Codex takes as "fall back to
HTTPS" at once; tests also turn WebSockets off in the provider config
(``supports_websockets = false``) so no time is spent on the attempt.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from .server import (
    Cut,
    Exchange,
    FakeModel,
    Reply,
    Status,
    ToolUse,
    openai_error_body,
    split,
)

DEFAULT_MESSAGES = {
    401: "Incorrect API key provided: sk-fake. You can find your API key at https://platform.openai.com/account/api-keys.",
    429: "Rate limit reached for requests. Please try again in 1s.",
    500: "The server had an error while processing your request. Sorry about that!",
    503: "The engine is currently overloaded, please try again later.",
}

_ids = itertools.count(1)


def route(fake: FakeModel, exchange: Exchange) -> bool:
    path = exchange.path.split("?", 1)[0].rstrip("/")
    if not path.endswith("/responses"):
        if path.endswith("/models") and exchange.request.method == "GET":
            exchange.send_json(200, {"object": "list", "data": [], "models": []})
            return True
        return False
    if exchange.request.method != "POST":
        # The WebSocket upgrade (or any other method): no WebSocket here.
        exchange.send_json(
            426,
            {
                "error": {
                    "message": "this server speaks the Responses API over HTTP only",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "websocket_unsupported",
                }
            },
        )
        return True
    behaviour = fake.next_behaviour(exchange.request)
    body = exchange.request.json or {}
    model = body.get("model") or "gpt-fake"
    if isinstance(behaviour, Status):
        exchange.send_json(behaviour.code, error_body(behaviour), behaviour.headers)
    elif isinstance(behaviour, Cut):
        _Stream(exchange, model).cut(behaviour.text, clean=behaviour.clean)
    elif isinstance(behaviour, ToolUse):
        _Stream(exchange, model).answer(behaviour.text, tool=behaviour)
    else:
        assert isinstance(behaviour, Reply)
        _Stream(exchange, model).answer(behaviour.text, chunks=behaviour.chunks)
    return True


def error_body(status: Status) -> dict[str, Any]:
    message = DEFAULT_MESSAGES.get(status.code, f"HTTP {status.code}")
    return openai_error_body(status, message, "server_error")


class _Stream:
    def __init__(self, exchange: Exchange, model: str) -> None:
        self.x = exchange
        self.model = model
        self.seq = 0
        n = next(_ids)
        self.response_id = f"resp_fake{n:04d}"
        self.created = int(time.time())
        self.n = n

    def event(self, kind: str, **fields: Any) -> None:
        self.x.sse({"type": kind, "sequence_number": self.seq, **fields}, event=kind)
        self.seq += 1

    def response(self, status: str, output: list[dict[str, Any]], text: str = "") -> dict[str, Any]:
        value: dict[str, Any] = {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": self.model,
            "output": output,
        }
        if status == "completed":
            out = max(1, len(text) // 4)
            value["usage"] = {
                "input_tokens": 20,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": out,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 20 + out,
            }
        return value

    def start(self) -> None:
        self.x.start_stream()
        self.event("response.created", response=self.response("in_progress", []))
        self.event("response.in_progress", response=self.response("in_progress", []))

    def message(self, index: int, text: str, chunks: int, *, finish: bool = True) -> dict[str, Any]:
        item_id = f"msg_fake{self.n:04d}_{index}"
        self.event(
            "response.output_item.added",
            output_index=index,
            item={
                "id": item_id,
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            },
        )
        part = {"type": "output_text", "text": "", "annotations": []}
        self.event(
            "response.content_part.added",
            item_id=item_id,
            output_index=index,
            content_index=0,
            part=part,
        )
        for piece in split(text, chunks):
            self.event(
                "response.output_text.delta",
                item_id=item_id,
                output_index=index,
                content_index=0,
                delta=piece,
            )
        item = {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
        if not finish:
            return item
        self.event(
            "response.output_text.done",
            item_id=item_id,
            output_index=index,
            content_index=0,
            text=text,
        )
        self.event(
            "response.content_part.done",
            item_id=item_id,
            output_index=index,
            content_index=0,
            part={"type": "output_text", "text": text, "annotations": []},
        )
        self.event("response.output_item.done", output_index=index, item=item)
        return item

    def function_call(self, index: int, tool: ToolUse) -> dict[str, Any]:
        arguments = json.dumps(tool.input)
        item = {
            "id": f"fc_fake{self.n:04d}_{index}",
            "type": "function_call",
            "status": "in_progress",
            "call_id": f"call_fake{self.n:04d}_{index}",
            "name": tool.name,
            "arguments": "",
        }
        self.event("response.output_item.added", output_index=index, item=item)
        self.event(
            "response.function_call_arguments.delta",
            item_id=item["id"],
            output_index=index,
            delta=arguments,
        )
        self.event(
            "response.function_call_arguments.done",
            item_id=item["id"],
            output_index=index,
            arguments=arguments,
        )
        done = {**item, "status": "completed", "arguments": arguments}
        self.event("response.output_item.done", output_index=index, item=done)
        return done

    def answer(self, text: str, *, chunks: int = 3, tool: ToolUse | None = None) -> None:
        self.start()
        output: list[dict[str, Any]] = []
        if text:
            output.append(self.message(len(output), text, chunks))
        if tool is not None:
            output.append(self.function_call(len(output), tool))
        self.event("response.completed", response=self.response("completed", output, text))
        self.x.end_stream()

    def cut(self, text: str, *, clean: bool = False) -> None:
        """Part of a message, then the connection drops: no ``response.completed``.

        With ``clean`` the HTTP response ends properly, still without it.
        """
        self.start()
        self.message(0, text, 2, finish=False)
        if clean:
            self.x.end_stream()
        else:
            self.x.cut()
