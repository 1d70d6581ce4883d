"""A real ``agentproc serve`` for the server benchmarks, and a client for it
that costs the server's two shared cores as little as possible.

:func:`serving` starts the server as a user would (a config file with routes
to profile files, a data folder) on a free loopback port, as
tests/serve_kit.py does; :class:`Http` is one keep-alive HTTP/1.1 connection
on raw asyncio streams; :class:`Reader` one SSE subscriber of a turn.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

AGENTPROC = str(Path(sys.executable).parent / "agentproc")
ROOT = Path(__file__).resolve().parent.parent

#: Seconds the server gets to print its URL, and to stop after SIGTERM.
START_SECS = 30.0
STOP_SECS = 30.0


# --- the server ----------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[str]
    err: list[str] = field(default_factory=list)

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or 80

    def rss_kib(self) -> int:
        """The server process's resident memory (VmRSS), in KiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS in /proc status")

    def cpu_secs(self) -> float:
        """CPU seconds the server process has used (user + system)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def serving(work: Path, name: str, profiles: dict[str, dict[str, object]]) -> Iterator[Server]:
    """Run ``agentproc serve`` with one route per profile (first: default) in
    a fresh folder under ``work``, until the block ends (then SIGTERM)."""
    folder = work / name
    folder.mkdir()
    routes = []
    for route, body in profiles.items():
        (folder / f"{route}.yaml").write_text(json.dumps({"name": route, **body}))
        routes.append(f"  {route}: {{profile: ./{route}.yaml}}\n")
    # No refusals (the busy policy queues; the caps are far above the load),
    # and no grace on stop: a backlog left by the accept bench is dropped.
    (folder / "bridge.yaml").write_text(
        "routes:\n" + "".join(routes) + "turns: {queue_limit: 1000, max_running: 16, "
        "shutdown_grace_secs: 0}\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    argv = [AGENTPROC, "serve", "--port", "0", "--data-dir", str(folder / "data")]
    proc = subprocess.Popen(
        [*argv, "--config", str(folder / "bridge.yaml")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=folder,
    )
    assert proc.stdout is not None and proc.stderr is not None
    server = Server("", proc)
    reader = threading.Thread(target=lambda: server.err.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        line = proc.stdout.readline()
        if not line.startswith("http"):
            proc.wait(START_SECS)
            reader.join(5)
            raise RuntimeError(f"the server did not start:\n{''.join(server.err)}")
        server.url = line.strip()
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_SECS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()
        reader.join(5)
        proc.stderr.close()
    if "Traceback" in "".join(server.err):  # numbers from a failing server mean nothing
        raise RuntimeError(f"the server logged an error:\n{''.join(server.err)}")


# --- a small HTTP/1.1 client -----------------------------------------------------------------
#
# Raw asyncio streams rather than httpx: the client shares the machine's two
# cores with the server, so it must cost far less than the server per
# request. httpx.AsyncClient with 50 requests in flight used 6-8 ms of CPU per
# POST here (more than the server's ~2 ms), and would have measured itself;
# these few lines use about 0.2 ms. The server sees the same requests: HTTP/1.1,
# keep-alive, one write per request.


class Http:
    """One keep-alive connection to the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def connect(cls, server: Server) -> Http:
        host, port = server.address
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, f"{host}:{port}")

    def close(self) -> None:
        self.writer.close()

    async def head(self, method: str, path: str, body: object = None) -> dict[bytes, bytes]:
        """Send a request; read the status line and headers (200-299 only)."""
        data = b"" if body is None else json.dumps(body).encode()
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        status = await self.reader.readline()
        headers: dict[bytes, bytes] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if not status.split(b" ")[1].startswith(b"2"):
            raise RuntimeError(f"{method} {path}: {status!r} {await self._body(headers)!r}")
        return headers

    async def _body(self, headers: dict[bytes, bytes]) -> bytes:
        return await self.reader.readexactly(int(headers.get(b"content-length", b"0")))

    async def call(self, method: str, path: str, body: object = None) -> object:
        return json.loads(await self._body(await self.head(method, path, body)))

    async def chunks(self) -> AsyncIterator[bytes]:
        """The pieces of a chunked response body (an event stream)."""
        while size := int((await self.reader.readline()).split(b";")[0], 16):
            piece = await self.reader.readexactly(size + 2)
            yield piece[:-2]
        await self.reader.readline()


async def new_conversation(http: Http, route: str) -> str:
    conv = await http.call("POST", "/v1/conversations", {"route": route})
    return str(conv["id"])  # type: ignore[index]


async def post_message(http: Http, conv: str, text: str) -> None:
    await http.call("POST", f"/v1/conversations/{conv}/messages", {"text": text})


# --- event streams --------------------------------------------------------------------------


@dataclass
class Reader:
    """One SSE subscriber of a turn: the text it was streamed and when."""

    http: Http
    text: list[str] = field(default_factory=list)
    partials: int = 0  # turn.partial events
    bytes: int = 0
    done: float = 0.0  # perf_counter() at turn.completed
    arrivals: list[tuple[int, str]] = field(default_factory=list)  # (time_ns, text)
    body: AsyncIterator[bytes] | None = None

    @classmethod
    async def open(cls, server: Server, conv: str, turn: int) -> Reader:
        """Subscribe; returns once the server says the subscription is open."""
        http = await Http.connect(server)
        headers = await http.head("GET", f"/v1/conversations/{conv}/events?turn={turn}")
        assert headers.get(b"transfer-encoding") == b"chunked", headers
        body = http.chunks()
        first = await anext(body)
        assert b": connected" in first, first
        return cls(http, bytes=len(first), body=body)

    async def follow(self, *, stamps: bool = False) -> None:
        """Read to the end of the turn (the stream ends after turn.completed)."""
        assert self.body is not None
        pending = b""
        async for piece in self.body:
            self.bytes += len(piece)
            pending += piece
            *messages, pending = pending.split(b"\n\n")
            for message in messages:
                if not message.startswith(b"id: "):
                    continue  # a comment: keep-alive
                _, kind, data = message.split(b"\n", 2)
                if kind == b"event: turn.partial":
                    self.partials += 1
                    text = json.loads(data[6:])["data"]["text"]
                    self.text.append(text)
                    if stamps:
                        self.arrivals.append((time.time_ns(), text))
                elif kind == b"event: turn.completed":
                    self.done = time.perf_counter()
                    status = json.loads(data[6:])["data"]["status"]
                    assert status == "ok", data
        self.http.close()
