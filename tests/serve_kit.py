"""A real ``agentproc serve`` in a test: started as a user would start it,
talked to over HTTP on loopback, stopped with a signal (or killed)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from helpers import AGENTPROC, cli_env

#: Seconds a server gets to print its URL, and to stop after SIGTERM.
START_SECS = 30.0
STOP_SECS = 30.0


@dataclass
class Served:
    url: str
    proc: subprocess.Popen[str]
    config: Path | None
    data_dir: Path
    token: str = ""
    _err: list[str] = field(default_factory=list)

    @property
    def stderr(self) -> str:
        """What the server wrote to stderr so far (its log)."""
        return "".join(self._err)

    def client(self, token: str | None = None, **kwargs: object) -> httpx.Client:
        """An HTTP client for the server, with ``token`` (default: the
        server's first user's) as its bearer token."""
        token = self.token if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the server and wait for it to end; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait()

    def wait(self) -> int:
        """Wait for the server to end by itself (after a signal the test sent)."""
        try:
            return self.proc.wait(STOP_SECS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"the server did not stop in {STOP_SECS} s:\n{self.stderr}"
            ) from None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


@contextmanager
def serving(
    tmp_path: Path,
    config: str | None = None,
    *,
    env: dict[str, str] | None = None,
    token: str = "",
    args: tuple[str, ...] = (),
    data_dir: Path | None = None,
    port: int = 0,
) -> Iterator[Served]:
    """Run ``agentproc serve`` with ``config`` (YAML text; None: no config)
    on a free loopback port, until the block ends (then SIGTERM)."""
    path: Path | None = None
    if config is not None:
        path = tmp_path / "bridge.yaml"
        path.write_text(config)
    data = data_dir or tmp_path / "data"
    argv = [AGENTPROC, "serve", "--port", str(port), "--data-dir", str(data), *args]
    if path is not None:
        argv += ["--config", str(path)]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env({**os.environ, **(env or {})}),
        cwd=tmp_path,
    )
    err: list[str] = []
    assert proc.stderr is not None and proc.stdout is not None
    reader = threading.Thread(target=lambda: err.extend(iter(proc.stderr.readline, "")))  # type: ignore[union-attr]
    reader.daemon = True
    reader.start()
    served = Served("", proc, path, data, token, err)
    try:
        served.url = _read_url(proc, err)
        yield served
    finally:
        if proc.poll() is None:
            served.stop()
        proc.stdout.close()
        reader.join(5)
        proc.stderr.close()


def _read_url(proc: subprocess.Popen[str], err: list[str]) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + START_SECS
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line or proc.poll() is not None:
            break
    if not line.startswith("http"):
        proc.kill()
        proc.wait()
        time.sleep(0.1)
        raise AssertionError(f"the server did not start (stdout {line!r}):\n{''.join(err)}")
    return line.strip()
