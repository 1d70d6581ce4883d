"""The Gemini API (``generativelanguage``, v1beta) as Gemini CLI calls it.

Model calls are ``POST /v1beta/models/<model>:streamGenerateContent?alt=sse``:
the answer is Server-Sent Events whose ``data`` is a whole
``GenerateContentResponse`` (``candidates[0].content.parts``), no event names
and no end marker; the last chunk carries ``finishReason`` and
``usageMetadata``. ``:generateContent`` is the same without streaming (one
JSON object). ``:countTokens`` and model lists are not model calls.

Errors are Google's ``{"error": {"code", "message", "status", "details"}}``.
A 429 carries a ``google.rpc.RetryInfo`` detail with a one-second delay, as
the real service does, which Gemini CLI reads as "retryable quota".
"""

from __future__ import annotations

import re
from typing import Any

from .server import Cut, Exchange, FakeModel, Reply, Status, ToolUse, split

MODEL_PATH = re.compile(r"^/v1(?:beta|alpha)?/models/([^/:?]+):([A-Za-z]+)")

#: Google's canonical status names for the HTTP codes a test is likely to use.
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
DEFAULT_MESSAGES = {
    400: "API key not valid. Please pass a valid API key.",
    401: "Request had invalid authentication credentials.",
    403: "The caller does not have permission",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}


def route(fake: FakeModel, exchange: Exchange) -> bool:
    path = exchange.path
    if path.startswith(("/v1beta/models", "/v1alpha/models")) and ":" not in path:
        if exchange.request.method == "GET":
            exchange.send_json(200, {"models": [{"name": "models/gemini-2.5-flash"}]})
            return True
        return False
    match = MODEL_PATH.match(path)
    if match is None:
        return False
    model, method = match.group(1), match.group(2)
    if method == "countTokens":
        exchange.send_json(200, {"totalTokens": 42})
        return True
    if method not in ("streamGenerateContent", "generateContent"):
        return False
    behaviour = fake.next_behaviour(exchange.request)
    stream = method == "streamGenerateContent"
    if isinstance(behaviour, Status):
        _error(exchange, behaviour)
    elif isinstance(behaviour, Cut):
        _cut(exchange, behaviour, model)
    elif isinstance(behaviour, ToolUse):
        _answer(exchange, model, behaviour.text, stream, tool=behaviour)
    else:
        assert isinstance(behaviour, Reply)
        _answer(exchange, model, behaviour.text, stream, chunks=behaviour.chunks)
    return True


def _candidate(parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return candidate


def _usage(text: str) -> dict[str, int]:
    out = max(1, len(text) // 4)
    return {"promptTokenCount": 12, "candidatesTokenCount": out, "totalTokenCount": 12 + out}


def _answer(
    exchange: Exchange,
    model: str,
    text: str,
    stream: bool,
    *,
    chunks: int = 3,
    tool: ToolUse | None = None,
) -> None:
    pieces = list(split(text, chunks)) if text else []
    final_parts: list[dict[str, Any]] = []
    if tool is not None:
        final_parts.append({"functionCall": {"name": tool.name, "args": tool.input}})
    base = {"modelVersion": model, "responseId": "fake-response-1"}
    if not stream:
        parts = ([{"text": text}] if text else []) + final_parts
        exchange.send_json(
            200, {**base, "candidates": [_candidate(parts, "STOP")], "usageMetadata": _usage(text)}
        )
        return
    exchange.start_stream()
    for piece in pieces[:-1] if not final_parts else pieces:
        exchange.sse({**base, "candidates": [_candidate([{"text": piece}], None)]})
    last = final_parts or ([{"text": pieces[-1]}] if pieces else [{"text": ""}])
    exchange.sse({**base, "candidates": [_candidate(last, "STOP")], "usageMetadata": _usage(text)})
    exchange.end_stream()


def _cut(exchange: Exchange, behaviour: Cut, model: str) -> None:
    """Stream the start of an answer with no finishReason, then drop the connection
    (or, with ``clean``, end the response as if the answer were over)."""
    base = {"modelVersion": model, "responseId": "fake-response-cut"}
    exchange.start_stream()
    for piece in split(behaviour.text, 2):
        exchange.sse({**base, "candidates": [_candidate([{"text": piece}], None)]})
    if behaviour.clean:
        exchange.end_stream()
    else:
        exchange.cut()


def error_body(status: Status) -> dict[str, Any]:
    code = status.code
    error: dict[str, Any] = {
        "code": code,
        "message": status.message or DEFAULT_MESSAGES.get(code, f"HTTP {code}"),
        "status": STATUS_NAMES.get(code, "UNKNOWN"),
    }
    if code == 429:
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}
        ]
    return {"error": error}


def _error(exchange: Exchange, status: Status) -> None:
    exchange.send_json(status.code, error_body(status), status.headers)
