"""The HTTP API and the web page, as one FastAPI app.

:func:`create_app` takes what the server decided (the dispatcher, the routes
it offers, how callers are recognised) and returns an ASGI app; it opens no
socket and reads no config. The routes are DESIGN.md section 7's; every
error is an :class:`~.models.ErrorBody` with a status that says whose fault
it was (4xx: the request's; 503: shutting down; 500: ours, logged).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any

from fastapi import FastAPI, Header, Path, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.staticfiles import StaticFiles

from agentproc import wire
from bridge.conversations import policies
from bridge.conversations.dispatcher import Dispatcher
from bridge.conversations.errors import Busy, ConversationError
from bridge.conversations.hub import Cursor
from bridge.store.errors import NotFound
from bridge.store.records import Conversation, ConversationKey, Route
from bridge.turn.errors import LaunchError

from ..errors import ApiError
from . import events
from .access import CHANNEL, Access, Authenticate, Caller, new_key
from .failures import install_error_handlers
from .models import (
    ApprovalAnswer,
    ApprovalOut,
    ConversationIn,
    ConversationOut,
    ErrorBody,
    MessageAccepted,
    MessageIn,
    PairingDecision,
    PairingOut,
    RouteOut,
    TurnOut,
)

__all__ = ["ApiRoute", "Hook", "create_app"]

#: Statuses a Busy refusal maps to: the conversation's own policy is a
#: conflict (409); a cap is too many requests (429); a drain is 503.
_BUSY_STATUS = {
    policies.REASON_BUSY: 409,
    policies.REASON_SHUTTING_DOWN: 503,
}

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 404, 409, 422, 429, 503)
}


_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

#: The bearer token, read by hand so that a missing one is our 401, not a 422.
Auth = Annotated[str | None, Header(alias="Authorization", include_in_schema=False)]


@dataclass(frozen=True, slots=True)
class ApiRoute:
    """An agent the API offers: ``name`` is what clients pass, ``route`` the
    conversation route it opens, ``profile`` its display name."""

    name: str
    route: Route
    title: str = ""
    profile: str = ""


@dataclass(frozen=True, slots=True)
class Hook:
    """A POST route a platform calls (a Telegram webhook). It proves itself
    its own way, so it takes no bearer token and is not in the OpenAPI
    document; ``endpoint`` answers, raising :class:`ApiError` to refuse."""

    path: str
    endpoint: Callable[[Request], Awaitable[Response]]


def create_app(
    dispatcher: Dispatcher,
    routes: Sequence[ApiRoute],
    *,
    authenticate: Authenticate | None = None,
    heartbeat_secs: float = events.DEFAULT_HEARTBEAT_SECS,
    page: bool = True,
    metrics: Callable[[], tuple[bytes, str]] | None = None,
    hooks: Sequence[Hook] = (),
) -> FastAPI:
    """The API over ``dispatcher``'s store. ``routes``: the first is the
    default. ``authenticate``: token to caller (None: open to everyone, for
    loopback without users). ``page``: serve the web chat page at ``/``.
    ``metrics``: what ``GET /metrics`` answers (its body and content type),
    to any caller with a token. ``hooks``: routes platforms call."""
    if not routes:
        raise ValueError("the API needs at least one route")
    access = Access(authenticate)
    store = dispatcher.store
    by_name = {r.name: r for r in routes}

    app = FastAPI(
        title="agentproc",
        summary="Talk to agents over HTTP: conversations, messages, event streams, approvals.",
        version="1",
        responses=_ERRORS,
        # FastAPI's interactive docs load their scripts from a CDN: not from
        # a bridge that may run where nothing outside is reachable.
        docs_url=None,
        redoc_url=None,
    )

    install_error_handlers(app)

    @app.middleware("http")
    async def _safety_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        # The page runs only its own files: no inline script, nothing from
        # elsewhere, never inside another site's frame. A second fence
        # behind rendering agent text as text.
        headers.setdefault("Content-Security-Policy", _CSP)
        return response

    app.state.store_errors = 0  # store failures answered 503 (see .failures)

    # --- helpers ----------------------------------------------------------------------------

    def caller_of(authorization: str | None) -> Caller:
        return access.caller(authorization)

    async def own(caller: Caller, conversation_id: str) -> Conversation:
        return Access.check_owner(caller, await store.get(conversation_id), conversation_id)

    def route_of(conv: Conversation) -> ApiRoute | None:
        for r in routes:
            if r.route == conv.key.route:
                return r
        return None

    async def out(conv: Conversation) -> ConversationOut:
        state = await store.get_state(conv.id)
        title = state.get("title", "") if isinstance(state, dict) else ""
        r = route_of(conv)
        return ConversationOut(
            id=conv.id,
            route=r.name if r else conv.key.route.name,
            title=str(title),
            status="running" if conv.running_turn else "idle",
            session_id=conv.session_id,
            turns=conv.turn_count,
            last_event=conv.last_event,
            last_status=conv.last_status,
            created_at=conv.created_at,
            updated_at=conv.updated_at,
        )

    # --- routes -----------------------------------------------------------------------------

    @app.get("/healthz", tags=["server"], summary="Liveness: answers while the server runs.")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/v1/routes", tags=["routes"], summary="The agents this bridge offers.")
    async def list_routes(authorization: Auth = None) -> list[RouteOut]:
        caller_of(authorization)
        return [
            RouteOut(name=r.name, title=r.title or r.name, profile=r.profile, default=i == 0)
            for i, r in enumerate(routes)
        ]

    @app.post(
        "/v1/conversations",
        status_code=201,
        tags=["conversations"],
        summary="Start a conversation with a route's agent.",
        description="Send `Idempotency-Key` to make a retry safe: the same key (and "
        "route) answers with the conversation the first request made.",
    )
    async def create_conversation(
        body: ConversationIn | None = None,
        authorization: Auth = None,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ) -> ConversationOut:
        caller = caller_of(authorization)
        body = body or ConversationIn()
        chosen = routes[0] if body.route is None else by_name.get(body.route)
        if chosen is None:
            raise ApiError(
                f"no route named {body.route!r}",
                status=404,
                code="unknown_route",
                hint="GET /v1/routes lists them: " + ", ".join(by_name),
            )
        key = ConversationKey(CHANNEL, new_key(caller, idempotency_key), chosen.route)
        conv = await dispatcher.open(key)
        if body.title:
            await store.set_state(conv.id, {"title": body.title})
        return await out(conv)

    @app.get("/v1/conversations", tags=["conversations"], summary="Your conversations.")
    async def list_conversations(
        authorization: Auth = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[ConversationOut]:
        caller = caller_of(authorization)
        prefix = f"{caller.name}/"
        mine = [
            c for c in await store.conversations(channel=CHANNEL) if c.key.key.startswith(prefix)
        ]
        return [await out(c) for c in mine[:limit]]

    @app.get(
        "/v1/conversations/{conversation_id}",
        tags=["conversations"],
        summary="One conversation: its route, status and agent session.",
    )
    async def get_conversation(conversation_id: str, authorization: Auth = None) -> ConversationOut:
        return await out(await own(caller_of(authorization), conversation_id))

    @app.delete(
        "/v1/conversations/{conversation_id}",
        tags=["conversations"],
        summary="Forget a conversation and its log (not while a turn runs).",
    )
    async def delete_conversation(
        conversation_id: str, authorization: Auth = None
    ) -> dict[str, bool]:
        conv = await own(caller_of(authorization), conversation_id)
        if conv.running_turn:
            raise ApiError(
                "a turn of this conversation is running",
                status=409,
                code="turn_running",
                hint=f"cancel it first: POST /v1/conversations/{conv.id}/cancel",
            )
        return {"deleted": await store.delete(conv.id)}

    @app.post(
        "/v1/conversations/{conversation_id}/messages",
        status_code=202,
        tags=["messages"],
        summary="Send a message; 202 once it is in the log.",
        description="Send `Idempotency-Key` to make a retry safe: the same key "
        "answers with the message already stored and `duplicate: true`. 409 when the "
        "conversation is busy and its policy is `reject`; 429 over a cap (the body "
        "says which, its limit and the count); 503 while the server shuts down.",
    )
    async def post_message(
        conversation_id: str,
        body: MessageIn,
        authorization: Auth = None,
        idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    ) -> MessageAccepted:
        caller = caller_of(authorization)
        conv = await own(caller, conversation_id)
        try:
            files = [wire.Attachment(a.type, a.url, a.name, a.mime_type) for a in body.attachments]
            handle = await dispatcher.submit(
                conv.id,
                body.text,
                attachments=files,
                from_user=caller.name,
                platform_id=idempotency_key or "",
            )
        except Busy as exc:
            raise _busy(exc) from None
        except LaunchError as exc:
            raise ApiError(exc.message, status=422, code="invalid_message", hint=exc.hint) from None
        except ConversationError as exc:
            raise ApiError(
                exc.message, status=409, code="conversation_error", hint=exc.hint
            ) from None
        return MessageAccepted(
            conversation_id=conv.id,
            message_id=handle.message.id,
            event_id=handle.message.id,
            duplicate=handle.duplicate,
        )

    @app.get(
        "/v1/conversations/{conversation_id}/events",
        tags=["messages"],
        summary="The conversation's log as Server-Sent Events.",
        description="Resumes after `Last-Event-ID` (or `?after=`): every event exactly once, "
        "in order, whether it is still in memory or only in the store. `?turn=N` sends "
        "only turn N's events and ends after its `turn.completed`.",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def get_events(
        conversation_id: str,
        authorization: Auth = None,
        last_event_id: Annotated[str | None, Header(max_length=64)] = None,
        after: Annotated[str | None, Query(max_length=64)] = None,
        turn: Annotated[int | None, Query(ge=1)] = None,
    ) -> StreamingResponse:
        conv = await own(caller_of(authorization), conversation_id)
        position = last_event_id or after or "0"
        try:
            cursor = Cursor.parse(position)
        except ValueError as exc:
            raise ApiError(
                str(exc),
                status=400,
                code="bad_position",
                hint="send back an id this stream gave you, or an event id",
            ) from None
        return StreamingResponse(
            events.stream(dispatcher, conv.id, cursor, turn=turn, heartbeat_secs=heartbeat_secs),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get(
        "/v1/conversations/{conversation_id}/turns",
        tags=["messages"],
        summary="The transcript: the completed turns still kept, oldest first.",
    )
    async def get_turns(
        conversation_id: str,
        authorization: Auth = None,
        limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    ) -> list[TurnOut]:
        conv = await own(caller_of(authorization), conversation_id)
        return [_turn(t) for t in await store.transcript(conv.id, limit)]

    @app.get(
        "/v1/conversations/{conversation_id}/turns/{turn}",
        tags=["messages"],
        summary="One completed turn.",
    )
    async def get_turn(conversation_id: str, turn: int, authorization: Auth = None) -> TurnOut:
        conv = await own(caller_of(authorization), conversation_id)
        for t in await store.transcript(conv.id):
            if t.turn == turn:
                return _turn(t)
        raise ApiError(
            f"turn {turn} of this conversation is not in the log",
            status=404,
            code="not_found",
            hint="it has not completed yet, or retention removed it; "
            f"GET /v1/conversations/{conv.id}/turns lists those kept",
        )

    @app.post(
        "/v1/conversations/{conversation_id}/cancel",
        tags=["messages"],
        summary="Stop the running turn and drop the waiting messages.",
    )
    async def cancel(conversation_id: str, authorization: Auth = None) -> dict[str, Any]:
        caller = caller_of(authorization)
        conv = await own(caller, conversation_id)
        event = await dispatcher.cancel(conv.id, by=caller.name)
        return {"event_id": event.id, "turn": event.turn, "dropped": event.data.get("dropped", [])}

    @app.post(
        "/v1/conversations/{conversation_id}/reset",
        tags=["messages"],
        summary="Start a fresh agent session at the next turn.",
    )
    async def reset(conversation_id: str, authorization: Auth = None) -> dict[str, Any]:
        caller = caller_of(authorization)
        conv = await own(caller, conversation_id)
        event = await dispatcher.reset(conv.id, by=caller.name)
        return {"event_id": event.id}

    @app.post(
        "/v1/approvals/{approval_id}",
        tags=["approvals"],
        summary="Answer an agent's request to use a tool.",
        description="Only the person who started the turn, or an admin, may answer. The "
        "first answer wins: a later one gets `answered: false`.",
    )
    async def answer(
        approval_id: str, body: ApprovalAnswer, authorization: Auth = None
    ) -> ApprovalOut:
        caller = caller_of(authorization)
        conversation_id, _, number = approval_id.rpartition(".")
        if not conversation_id or not number.isdigit():
            raise _no_approval(approval_id)
        conv = await store.get(conversation_id)
        request_id = int(number)
        request = None
        if conv is not None:
            found = await store.read(conv.id, request_id - 1, 1)
            request = found[0] if found and found[0].id == request_id else None
        if conv is None or request is None or request.type != "turn.permission":
            raise _no_approval(approval_id)
        if not caller.admin and caller.name not in request.data.get("from_users", ()):
            # Not theirs to answer: as unknown as any other id.
            raise _no_approval(approval_id)
        try:
            event = await dispatcher.answer(
                conv.id,
                request_id,
                allow=body.decision == "allow",
                scope=body.scope,
                message=body.message,
                by=caller.name,
                updated_input=body.updated_input,
            )
        except NotFound:
            raise _no_approval(approval_id) from None
        except ValueError as exc:
            raise ApiError(
                str(exc),
                status=422,
                code="invalid_request",
                hint="send updated_input only with decision: allow",
            ) from None
        return ApprovalOut(
            approval_id=approval_id,
            answered=event is not None,
            event_id=event.id if event else None,
        )

    def admin_of(authorization: str | None) -> Caller:
        caller = caller_of(authorization)
        if not caller.admin:
            raise ApiError(
                "only an admin may see and decide pairings",
                status=403,
                code="forbidden",
                hint="ask an admin (a user with admin: true in the bridge's config)",
            )
        return caller

    @app.get(
        "/v1/pairings",
        tags=["pairings"],
        summary="People on chat channels waiting to be let in, and those paired (admins).",
    )
    async def list_pairings(authorization: Auth = None) -> list[PairingOut]:
        admin_of(authorization)
        return [_pairing(p) for p in await store.pairings()]

    @app.post(
        "/v1/pairings/{code}",
        tags=["pairings"],
        summary="Approve or deny a pairing code a chat channel gave someone (admins).",
    )
    async def decide_pairing(
        code: Annotated[str, Path(max_length=32)], body: PairingDecision, authorization: Auth = None
    ) -> PairingOut:
        caller = admin_of(authorization)
        decided = await store.decide_pairing(
            code, approve=body.decision == "approve", by=caller.name
        )
        if decided is None:
            raise ApiError(
                f"no code {code!r} is waiting",
                status=404,
                code="not_found",
                hint="it may be mistyped, decided already, or expired (codes last an hour)",
            )
        return _pairing(decided)

    if metrics is not None:
        scrape = metrics

        @app.get("/metrics", tags=["server"], summary="Prometheus metrics.")
        async def get_metrics(authorization: Auth = None) -> Response:
            caller_of(authorization)
            body, content_type = scrape()
            return Response(body, media_type=content_type)

    if page:
        static = resources.files("bridge.channels.http") / "static"

        @app.get("/", include_in_schema=False)
        async def index() -> Response:
            return FileResponse(str(static / "index.html"), media_type="text/html")

        app.mount("/static", StaticFiles(directory=str(static)), name="static")

    for hook in hooks:
        app.add_route(hook.path, hook.endpoint, methods=["POST"], include_in_schema=False)

    return app


def _busy(exc: Busy) -> ApiError:
    status = _BUSY_STATUS.get(exc.reason, 429)
    headers = {"Retry-After": "5"} if status in (429, 503) else {}
    return ApiError(
        exc.message,
        status=status,
        code=exc.reason,
        hint=exc.hint,
        extra={"limit": exc.limit, "count": exc.active},
        headers=headers,
    )


def _no_approval(approval_id: str) -> ApiError:
    return ApiError(
        f"no approval request {approval_id!r} for you to answer",
        status=404,
        code="not_found",
        hint="approval ids come in the `turn.permission` events of a conversation's stream",
    )


def _pairing(p: Any) -> PairingOut:
    return PairingOut(
        code=p.code,
        channel=p.channel,
        user_id=p.user_id,
        name=p.name,
        status=p.status,
        expires_at=p.expires_at,
        decided_by=p.decided_by,
    )


def _turn(t: Any) -> TurnOut:
    return TurnOut(
        turn=t.turn,
        message=t.message,
        attachments=[dict(a) for a in t.attachments],
        from_users=list(t.from_users),
        status=t.status,
        reply=t.reply,
        error=t.error,
        hint=t.hint,
        session_id=t.session_id,
        exit_code=t.exit_code,
        started_at=t.started_at,
        duration_ms=t.duration_ms,
    )
