"""The OpenAI Chat Completions wire (``POST .../chat/completions``), for opencode, aider, llm.

A streamed answer is a run of server-sent events, each ``data: <chunk>`` with a
``chat.completion.chunk`` object: the first delta names the ``role``, the next
ones carry ``content`` (or ``tool_calls`` pieces: the call's id and function
name first, then its JSON arguments in fragments), the last choice has a
``finish_reason`` (``stop`` or ``tool_calls``), an optional chunk with empty
``choices`` carries ``usage`` when the client asked for it
(``stream_options.include_usage``), and ``data: [DONE]`` ends the stream. A
request without ``"stream": true`` gets one ``chat.completion`` object.

Errors are ``{"error": {"message", "type", "param", "code"}}`` with the HTTP
status. :class:`~.server.Cut` streams part of the text and then drops the
connection, with neither a finish reason nor ``[DONE]``; :class:`Unfinished`
(this wire's own) ends the response properly but also without either, as a
proxy or a server that gave up halfway does.

Paths: ``/v1/chat/completions`` and ``/chat/completions`` (a base URL given
without ``/v1``); ``GET /v1/models`` and ``/models`` list the models the
request named so far, answered without taking a behaviour.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .server import Cut, Exchange, Reply, Status, ToolUse, openai_error_body, split

if TYPE_CHECKING:
    from .server import FakeModel

COMPLETIONS = ("/v1/chat/completions", "/chat/completions")
MODELS = ("/v1/models", "/models")

DEFAULT_MESSAGES = {
    401: "Incorrect API key provided: sk-e2e. You can find your API key at "
    "https://platform.openai.com/account/api-keys.",
    429: "Rate limit reached for requests. Please try again in 20s.",
    500: "The server had an error while processing your request. Sorry about that!",
    503: "The server is overloaded or not ready yet.",
}


@dataclass(frozen=True)
class Unfinished(Cut):
    """Stream part of ``text``, then end the HTTP response cleanly: no finish reason, no [DONE]."""


def error_body(status: Status) -> dict[str, Any]:
    message = DEFAULT_MESSAGES.get(status.code, f"fake error {status.code}")
    return openai_error_body(status, message, "api_error")


class _Chunks:
    """Writes ``chat.completion.chunk`` events with the same id, time and model."""

    def __init__(self, exchange: Exchange, model: str, number: int) -> None:
        self.exchange = exchange
        self.base = {
            "id": f"chatcmpl-e2e{number:04d}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_e2e",
        }

    def choice(self, delta: dict[str, Any], finish_reason: str | None = None) -> None:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        self.exchange.sse({**self.base, "choices": [choice]})

    def usage(self, prompt: int, completion: int) -> None:
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        self.exchange.sse({**self.base, "choices": [], "usage": usage})


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _answer(fake: FakeModel, exchange: Exchange) -> None:
    request = exchange.request.json
    body = request if isinstance(request, dict) else {}
    behaviour = fake.next_behaviour(exchange.request)
    model = str(body.get("model") or "e2e-model")
    if isinstance(behaviour, Status):
        exchange.send_json(behaviour.code, error_body(behaviour), behaviour.headers)
        return
    number = len(fake.model_calls)
    prompt_tokens = _tokens(exchange.request.text)
    if not body.get("stream"):
        _answer_whole(exchange, behaviour, model, number, prompt_tokens)
        return
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    chunks = _Chunks(exchange, model, number)
    exchange.start_stream()
    chunks.choice({"role": "assistant", "content": ""})
    if isinstance(behaviour, Cut):
        pieces = list(split(behaviour.text, 3))
        for piece in pieces[:-1] or pieces:
            chunks.choice({"content": piece})
        if isinstance(behaviour, Unfinished):
            exchange.end_stream()
        else:
            exchange.cut()
        return
    if isinstance(behaviour, Reply):
        for piece in split(behaviour.text, behaviour.chunks):
            chunks.choice({"content": piece})
        chunks.choice({}, "stop")
        completion = _tokens(behaviour.text)
    else:
        if behaviour.text:
            chunks.choice({"content": behaviour.text})
        call = {
            "index": 0,
            "id": f"call_e2e{number:04d}",
            "type": "function",
            "function": {"name": behaviour.name, "arguments": ""},
        }
        chunks.choice({"tool_calls": [call]})
        arguments = json.dumps(behaviour.input)
        for piece in split(arguments, 2):
            chunks.choice({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        chunks.choice({}, "tool_calls")
        completion = _tokens(arguments)
    if include_usage:
        chunks.usage(prompt_tokens, completion)
    exchange.sse("[DONE]")
    exchange.end_stream()


def _answer_whole(
    exchange: Exchange, behaviour: Reply | Cut | ToolUse, model: str, number: int, prompt: int
) -> None:
    message: dict[str, Any] = {"role": "assistant", "content": None}
    finish = "stop"
    if isinstance(behaviour, Cut):
        # A whole answer cannot be cut halfway through a stream: drop the connection.
        exchange.cut()
        return
    if isinstance(behaviour, Reply):
        message["content"] = behaviour.text
    else:
        message["content"] = behaviour.text or None
        message["tool_calls"] = [
            {
                "id": f"call_e2e{number:04d}",
                "type": "function",
                "function": {"name": behaviour.name, "arguments": json.dumps(behaviour.input)},
            }
        ]
        finish = "tool_calls"
    completion = _tokens(json.dumps(message))
    exchange.send_json(
        200,
        {
            "id": f"chatcmpl-e2e{number:04d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        },
    )


def _models(fake: FakeModel, exchange: Exchange) -> None:
    names = {"e2e-model"}
    for recorded in fake.model_calls:
        body = recorded.json
        if isinstance(body, dict) and isinstance(body.get("model"), str):
            names.add(body["model"])
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": "e2e"} for name in sorted(names)
    ]
    exchange.send_json(200, {"object": "list", "data": data})


def route(fake: FakeModel, exchange: Exchange) -> bool:
    path = exchange.path.split("?", 1)[0]
    method = exchange.request.method
    if path in COMPLETIONS and method == "POST":
        _answer(fake, exchange)
        return True
    if path in MODELS and method == "GET":
        _models(fake, exchange)
        return True
    return False
