"""The web chat page in a real browser, for tests: Debian's chromium driven by
Playwright, a page that records what it showed, and a cable to cut.

The browser is Debian's ``chromium`` (``make test`` installs it), driven by
Playwright's Python package; Playwright's own browser download is never used.
Chromium runs with the flags that keep it from calling out (this machine may
have no internet).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, expect

AGENTS = Path(__file__).parent / "agents"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: How long the page gets for anything it should do (ms).
WAIT_MS = 20_000
expect.set_options(timeout=WAIT_MS)
ALICE = "alice-token-0123456789abcdef"
#: Where the page keeps its token (api.js).
TOKEN_KEY = "agentproc.token"

#: Records what every agent bubble showed, each time it changed: [turn, status,
#: text], and each state the connection went through. Added before the page's
#: own scripts run, so no change is missed.
RECORDER = """
window.__shown = [];
window.__conn = [];
const last = new Map();
new MutationObserver(() => {
  const conn = document.getElementById("conn");
  if (conn && conn.dataset.state !== window.__conn[window.__conn.length - 1]) {
    window.__conn.push(conn.dataset.state);
  }
  for (const m of document.querySelectorAll(".msg.agent")) {
    const shown = [m.dataset.turn, m.dataset.status, m.querySelector(".body").textContent];
    const key = shown.join("\\u0000");
    if (last.get(m.dataset.turn) !== key) {
      last.set(m.dataset.turn, key);
      window.__shown.push(shown);
    }
  }
}).observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
"""


def streamed(message: str, chunks: int) -> str:
    """The reply of tests/agents/web_streamer.py."""
    return "".join(f"part {i} of {message}. " for i in range(1, chunks + 1)) + "done."


def write_profile(folder: Path, name: str, agent: str, **fields: Any) -> str:
    body = {"name": name, "command": sys.executable, "args": [str(AGENTS / agent)], **fields}
    (folder / f"{name}.yaml").write_text(json.dumps(body))
    return f"./{name}.yaml"


def config(folder: Path, users: str = "", grace: float = 10) -> str:
    """Routes: stream (the default), echo, slow, ask."""
    stream = write_profile(folder, "stream", "web_streamer.py", env={"STREAM_DELAY": "0.15"})
    slow = write_profile(
        folder, "slow", "web_streamer.py", env={"STREAM_CHUNKS": "8", "STREAM_DELAY": "0.4"}
    )
    ask = write_profile(
        folder,
        "ask",
        "permission_asker.py",
        env={"ASK_TOOLS": "Bash,Write"},
        permission=True,
        timeout_secs=60,
    )
    return users + textwrap.dedent(f"""
        routes:
          stream: {{profile: {stream}}}
          echo: {{profile: echo}}
          slow: {{profile: {slow}}}
          ask: {{profile: {ask}}}
        turns: {{shutdown_grace_secs: {grace}}}
        """)


class Tab:
    """A page in its own browser context, with what went wrong in it."""

    def __init__(self, browser: Browser, url: str, token: str = "", **context: Any) -> None:
        self.context = browser.new_context(**context)
        self.context.add_init_script(RECORDER)
        if token:  # signed in already, as the token dialog would leave it
            self.context.add_init_script(
                f"localStorage.setItem({json.dumps(TOKEN_KEY)}, {json.dumps(token)});"
            )
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("request", lambda r: self.requests.append((r.url, r.headers)))
        self.url = url

    def open(self, ready: bool = True) -> Page:
        self.page.goto(self.url)
        if ready:
            expect(self.page.locator("#route option").first).to_be_attached()
        return self.page

    def start(self, route: str, text: str) -> None:
        """A new conversation with ``route``, its first message ``text``."""
        self.page.select_option("#route", route)
        self.page.click("#new-conversation")
        self.say(text)

    def say(self, text: str) -> None:
        self.page.fill("#message", text)
        self.page.press("#message", "Enter")

    def agent(self, turn: int) -> Any:
        return self.page.locator(f'.msg.agent[data-turn="{turn}"]')

    def finished(self, turn: int, status: str = "ok") -> str:
        """The body text of ``turn`` once it ended with ``status``."""
        expect(self.agent(turn)).to_have_attribute("data-status", status)
        return self.agent(turn).locator(".body").inner_text()

    def shown(self) -> list[tuple[str, str, str]]:
        return [tuple(s) for s in self.page.evaluate("window.__shown")]

    def connection_states(self) -> list[str]:
        return list(self.page.evaluate("window.__conn"))

    def close(self) -> None:
        self.context.close()
        assert not self.errors, self.errors
        assert not self.dialogs, f"the page opened dialogs: {self.dialogs}"


class Cable:
    """A TCP relay between the browser and the server on loopback, which a
    test can cut: every open connection is reset at once, as when a network
    drops, while the relay keeps accepting new ones."""

    def __init__(self, target: str) -> None:
        host, port = target.split("//", 1)[1].rstrip("/").rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.open: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self.lock:
                self.open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    @staticmethod
    def pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        with self.lock:
            cut, self.open = self.open, []
        for s in cut:
            with contextlib.suppress(OSError):
                # Linger 0: close with a reset, not a polite end of stream;
                # shutdown first wakes the relay's thread blocked reading it.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.listener.close()
        self.cut()


def conversation_id(page: Page) -> str:
    found = re.search(r"#c=([^&]+)", page.url)
    assert found, page.url
    return found.group(1)
