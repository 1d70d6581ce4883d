"""A chat agent for any OpenAI-compatible chat-completions endpoint.

It talks to the endpoint itself (standard library only): the base URL, model
and key come from the environment, the answer is streamed as it arrives
(server-sent events), and the conversation is kept with the SDK's history
helpers, one JSONL file per session. See README.md.
"""

import base64
import http.client
import json
import mimetypes
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid

from agentproc import (
    AgentResult,
    HistoryEntry,
    ProtocolError,
    append_history,
    create_profile,
    load_history,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: History entries sent with each request (user and assistant messages, newest
#: kept): enough for a long chat, bounded so a conversation cannot outgrow the
#: model's context or the request size for ever.
DEFAULT_HISTORY_MESSAGES = 40
#: Seconds to wait for the server to answer (and between two streamed chunks).
DEFAULT_TIMEOUT_SECS = 300.0
#: An image attached as a local file is sent inline; a bigger one is refused.
MAX_INLINE_IMAGE_BYTES = 20 * 1024 * 1024


def setting(name, default=""):
    return os.environ.get(name, "").strip() or default


def number(name, default, kind):
    raw = setting(name)
    try:
        return kind(raw) if raw else default
    except ValueError:
        raise ProtocolError(f"{name} must be a number, not {raw!r}") from None


def image_part(attachment):
    """An `image_url` content part: web URLs as they are, local files inline."""
    url = attachment.url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in ("http", "https", "data"):
        return {"type": "image_url", "image_url": {"url": url}}
    path = urllib.request.url2pathname(parts.path) if parts.scheme == "file" else url
    try:
        size = os.path.getsize(path)
        if size > MAX_INLINE_IMAGE_BYTES:
            raise ProtocolError(f"the image {attachment.name or path} is too large to send")
        with open(path, "rb") as fh:
            data = base64.b64encode(fh.read()).decode("ascii")
    except OSError as exc:
        raise ProtocolError(f"cannot read the image {url}: {exc.strerror or exc}") from None
    mime = attachment.mime_type or mimetypes.guess_type(path)[0] or "image/png"
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}


def server_error(exc):
    """The server's own words from an HTTP error response, when it gave any."""
    try:
        body = json.loads(exc.read() or b"null")
    except (ValueError, OSError, http.client.HTTPException):
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    text = f"the model server answered {exc.code} {exc.reason}" + (
        f": {message}" if message else ""
    )
    wait = (exc.headers or {}).get("Retry-After", "") if exc.code in (429, 503) else ""
    if wait.strip().isdigit():
        text += f" (it asks to wait {wait.strip()} s before trying again)"
    return text


class Cutoff(Exception):
    """The answer's stream ended before the server said the answer was finished."""


def stream_answer(ctx, response):
    """Read a server-sent event stream of chat-completion chunks; stream the text.

    Returns the text and the finish reason. A stream that ends with neither a
    finish reason nor ``data: [DONE]`` was cut off (a proxy gave up, the
    connection broke): :class:`Cutoff`.
    """
    pieces = []
    finish = None
    done = False
    try:
        for raw in response:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue  # blank separators, comments, `event:` lines
            data = line[5:].strip()
            if data == "[DONE]":
                done = True
                break
            try:
                chunk = json.loads(data)
            except ValueError:
                continue
            if chunk.get("error"):
                error = chunk["error"]
                raise ProtocolError(str(error.get("message") if isinstance(error, dict) else error))
            for choice in chunk.get("choices") or []:
                text = (choice.get("delta") or {}).get("content")
                if text:
                    pieces.append(text)
                    ctx.send_partial(text)
                finish = choice.get("finish_reason") or finish
    except (OSError, http.client.HTTPException) as exc:
        if isinstance(exc, TimeoutError):
            raise
        raise Cutoff(f"the connection broke ({exc or type(exc).__name__})") from None
    if not done and finish is None:
        raise Cutoff("the stream ended without a finish reason or [DONE]")
    return "".join(pieces), finish


def no_answer(base_url, timeout):
    return f"the model server at {base_url} did not answer within {timeout:g} s (LLM_TIMEOUT_SECS)"


def handle(ctx):
    base_url = setting("LLM_BASE_URL", DEFAULT_BASE_URL).rstrip("/")
    model = setting("LLM_MODEL")
    if not model:
        raise ProtocolError(
            "set LLM_MODEL to the model to use (for example gpt-4o-mini), and LLM_BASE_URL "
            "and LLM_API_KEY for the server; see the llm profile's README"
        )
    key = setting("LLM_API_KEY") or setting("OPENAI_API_KEY")
    session = ctx.session_id or uuid.uuid4().hex
    keep = number("LLM_HISTORY_MESSAGES", DEFAULT_HISTORY_MESSAGES, int)
    history = load_history(session, limit=max(keep, 0))

    images = [a for a in ctx.attachments if a.type == "image"]
    others = [a for a in ctx.attachments if a.type != "image"]
    note = ""
    if others:
        names = ", ".join(a.name or a.url for a in others)
        note = f"(This agent can only pass images to the model; not sent: {names}.)\n\n"
        ctx.send_partial(note)
    content = ctx.message
    if images:
        content = [{"type": "text", "text": ctx.message}, *(image_part(a) for a in images)]
    messages = [{"role": e.role, "content": e.content} for e in history]
    if setting("LLM_SYSTEM_PROMPT"):
        messages.insert(0, {"role": "system", "content": setting("LLM_SYSTEM_PROMPT")})
    messages.append({"role": "user", "content": content})

    body = {"model": model, "messages": messages, "stream": ctx.streaming}
    headers = {"Content-Type": "application/json", "User-Agent": "agentproc-llm"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(
        base_url + "/chat/completions", json.dumps(body).encode("utf-8"), headers
    )
    timeout = number("LLM_TIMEOUT_SECS", DEFAULT_TIMEOUT_SECS, float)
    finish = None
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if ctx.streaming:
                answer, finish = stream_answer(ctx, response)
            else:
                data = json.loads(response.read())
                answer = data["choices"][0]["message"].get("content") or ""
                finish = data["choices"][0].get("finish_reason")
    except urllib.error.HTTPError as exc:
        raise ProtocolError(server_error(exc)) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise ProtocolError(no_answer(base_url, timeout)) from None
        raise ProtocolError(f"cannot reach the model server at {base_url}: {reason}") from None
    except TimeoutError:
        raise ProtocolError(no_answer(base_url, timeout)) from None
    except Cutoff as exc:
        raise ProtocolError(
            f"the model server's answer was cut off: {exc}; the part that arrived is "
            "incomplete and is not kept in the conversation (send the message again to retry)"
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        raise ProtocolError(f"the connection to the model server broke: {exc}") from None
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ProtocolError(f"unreadable answer from the model server: {exc}") from None
    if finish == "length":
        note_after = "\n\n(The model stopped at its length limit: the answer may be incomplete.)"
        ctx.send_partial(note_after)
    else:
        note_after = ""

    meta = {"attachments": [a.to_dict() for a in ctx.attachments]} if ctx.attachments else None
    append_history(session, HistoryEntry("user", ctx.message, meta=meta))
    append_history(session, "assistant", answer)
    return AgentResult(note + answer + note_after, session_id=session)


create_profile(handle)
