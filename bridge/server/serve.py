"""``agentproc serve``: one process hosting the dispatcher and the HTTP app.

:func:`serve` owns everything it starts in one task group: the store, the
dispatcher, uvicorn on a socket it bound itself. On SIGTERM or SIGINT it
drains: the dispatcher takes no new messages (the API answers 503 with
``Retry-After``), running turns get ``shutdown_grace_secs`` to finish and are
then cancelled and recorded, the event streams end, and the HTTP server
closes. Everything accepted is in the log before its 202, so nothing is lost
by stopping; what was waiting runs when the server is back.
"""

from __future__ import annotations

import errno
import logging
import signal
import socket
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from anyio.abc import TaskStatus

from bridge.channels.http.access import Caller
from bridge.channels.http.app import ApiRoute, Hook, create_app
from bridge.conversations.dispatcher import Dispatcher
from bridge.store.base import Store
from bridge.store.memory import MemoryStore
from bridge.store.records import Event
from bridge.store.sqlite import open_store

from .chat_channels import start_channels
from .config import ServerConfig
from .errors import ServerError
from .metrics import CONTENT_TYPE, Metrics

__all__ = ["bind", "build_app", "serve"]

log = logging.getLogger("bridge.server")


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handlers: :func:`serve` handles them."""

    def install_signal_handlers(self) -> None:  # older uvicorn
        return None

    def capture_signals(self) -> Any:  # newer uvicorn
        import contextlib

        return contextlib.nullcontext()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port), or a
    :class:`ServerError` saying why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off (TCP_NODELAY)
    # only on connections of a socket that says it is TCP; with it on, a
    # small response could wait ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServerError(
                f"cannot listen on {host}:{port}: the port is in use",
                hint="stop what uses it, or pick another port with --port",
            ) from None
        if exc.errno == errno.EACCES:
            raise ServerError(
                f"cannot listen on {host}:{port}: permission denied",
                hint="ports below 1024 need privileges; pick a port above 1024",
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
            raise ServerError(
                f"cannot listen on {host}:{port}: this machine has no such address",
                hint="use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)",
            ) from None
        raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def open_configured_store(config: ServerConfig) -> Store:
    if config.store == "memory":
        return MemoryStore(keep_turns=config.turns.keep_turns)
    return open_store(config.data_dir, keep_turns=config.turns.keep_turns)


def make_dispatcher(config: ServerConfig, store: Store) -> Dispatcher:
    t = config.turns
    return Dispatcher(
        store,
        {r.route: r.profile for r in config.routes},
        max_running=t.max_running,
        busy_policy=t.busy_policy,
        queue_limit=t.queue_limit,
        max_per_user=t.max_per_user,
        max_waiting=t.max_waiting,
        session_idle_secs=t.session_idle_secs,
    )


def build_app(config: ServerConfig, dispatcher: Dispatcher, hooks: Sequence[Hook] = ()) -> Any:
    """The ASGI app for ``config``: the API, the page, and the routes chat
    platforms call (``hooks``: a Telegram webhook)."""
    routes = [
        ApiRoute(r.name, r.route, r.title or r.name, r.profile.name or r.name)
        for r in config.routes
    ]
    authenticate: Callable[[str], Caller | None] | None = None
    if config.users:

        def authenticate(token: str) -> Caller | None:
            user = config.user_by_token(token)
            return None if user is None else Caller(user.name, user.admin)

    names = {r.route: r.name for r in config.routes}

    def route_name(event: Event) -> str:
        route = dispatcher.route_of(event.conversation)
        return names.get(route, route.name) if route is not None else ""

    app: Any = None
    watch = Metrics(dispatcher, route_name, lambda: int(app.state.store_errors))
    app = create_app(
        dispatcher,
        routes,
        authenticate=authenticate,
        metrics=lambda: (watch.render(), CONTENT_TYPE),
        hooks=hooks,
    )
    return app


def check_exposure(config: ServerConfig) -> None:
    """Refuse to open the API beyond this machine to anyone at all, and a
    config that serves nothing."""
    if not config.http_enabled and not (config.telegram or config.slack or config.discord):
        raise ServerError(
            "the HTTP channel is off (channels.http.enabled: false) and no other channel "
            "is configured: there is nothing to serve",
            hint="remove `enabled: false` under channels.http",
        )
    if config.exposes_api_without_users:
        raise ServerError(
            f"refusing to listen on {config.host}, beyond this machine, with no users: "
            "anyone who can reach it could run the agents",
            hint="add users with tokens to the config (users: [{name, token_env}]), or "
            "listen on 127.0.0.1",
        )


async def serve(
    config: ServerConfig,
    *,
    on_ready: Callable[[str], None] = lambda url: None,
    sock: socket.socket | None = None,
) -> None:
    """Run the bridge until SIGTERM or SIGINT, then drain and return."""
    check_exposure(config)
    if config.http_enabled:
        sock = sock or bind(config.host, config.port)
    async with AsyncExitStack() as stack:
        if sock is not None:
            stack.callback(sock.close)
        store = await stack.enter_async_context(open_configured_store(config))
        dispatcher = await stack.enter_async_context(make_dispatcher(config, store))
        resumed = await dispatcher.resume()
        if resumed:
            log.info(
                "took up %d conversation(s) left with a turn open or messages waiting",
                len(resumed),
            )
        channels = await start_channels(config, dispatcher, _files_dir(config))
        for channel in channels:
            stack.push_async_callback(channel.close)
        server = _Uvicorn(
            uvicorn.Config(
                build_app(config, dispatcher, [c.hook for c in channels if c.hook]),
                log_config=None,
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=5,
                server_header=False,
            )
        )
        async with anyio.create_task_group() as tg:
            if sock is not None:
                tg.start_soon(_uvicorn, server, sock)
            # One scope per task (a scope covers one `with`): receivers
            # stop first, senders (and handlers) once the turns are done.
            receiving: list[anyio.CancelScope] = []
            sending: list[anyio.CancelScope] = []
            for channel in channels:
                if channel.runner is not None:  # handlers run before a message can come
                    await tg.start(_started_within, _scope(sending), channel.runner.run)
                tg.start_soon(_within, _scope(receiving), channel.platform.run, channel.worker)
                tg.start_soon(_within, _scope(sending), channel.delivery.run)
            on_ready(url_of(sock) if sock is not None else "")
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                grace = config.turns.shutdown_grace_secs
                async for signum in signals:
                    log.info(
                        "%s: draining (no new messages; running turns get %g s; "
                        "signal again to stop them now)",
                        signal.Signals(signum).name,
                        grace,
                    )
                    break
                for scope in receiving:  # chat platforms: nothing new is taken
                    scope.cancel()
                async with anyio.create_task_group() as drain:
                    drain.start_soon(_hurry, signals, dispatcher)
                    await dispatcher.aclose(grace=grace)
                    drain.cancel_scope.cancel()
            # The readers have ended with the log: what turns wrote was delivered.
            for scope in sending:
                scope.cancel()
            server.should_exit = True
        log.info("stopped")


def _scope(into: list[anyio.CancelScope]) -> anyio.CancelScope:
    scope = anyio.CancelScope()
    into.append(scope)
    return scope


async def _within(scope: anyio.CancelScope, fn: Any, *args: Any) -> None:
    with scope:
        await fn(*args)


async def _started_within(
    scope: anyio.CancelScope, fn: Any, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    with scope:
        await fn(task_status=task_status)


def _files_dir(config: ServerConfig) -> Path:
    """Where chat platforms put the files people send (the agent gets paths)."""
    from bridge.store.sqlite import default_data_dir

    return config.data_dir if config.data_dir is not None else default_data_dir()


async def _hurry(signals: Any, dispatcher: Dispatcher) -> None:
    """A second signal while draining: stop the running turns now (each is
    still recorded, as cancelled)."""
    async for signum in signals:
        log.info("%s again: stopping the running turns now", signal.Signals(signum).name)
        dispatcher.stop_turns()
        return


async def _uvicorn(server: uvicorn.Server, sock: socket.socket) -> None:
    await server.serve(sockets=[sock])
