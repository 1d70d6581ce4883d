"""``kill -9`` of a server while messages are posted and streamed, then a
restart: every accepted message is answered or closed as abandoned, and
nothing is answered twice."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import anyio
import httpx
from serve_kit import serving
from test_http_api import profile, sse

from bridge.store.records import MESSAGE, TURN_COMPLETED, TURN_QUEUED
from bridge.store.sqlite import open_store

CONVERSATIONS = 10
PER_CONVERSATION = 10


def test_kill_9_while_posting_and_streaming_loses_nothing_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    agent = profile(
        tmp_path,
        "streamer",
        """
        for i in 1 2 3; do echo "AGENT_PARTIAL:\\"part $i \\""; sleep 0.02; done
        echo "done $AGENT_MESSAGE"
        """,
    )
    config = f"routes:\n  s: {{profile: ./{agent}}}\nturns: {{queue_limit: 100}}\n"
    data = tmp_path / "data"
    accepted: dict[str, dict[str, int]] = {}  # conversation -> idempotency key -> message id
    unsure: dict[str, list[tuple[str, str]]] = {}  # conversation -> (key, text) not confirmed
    lock = threading.Lock()

    def post_all(url: str, conv: str, start: int, stop_event: threading.Event) -> None:
        with httpx.Client(base_url=url, timeout=10) as c:
            for n in range(start, PER_CONVERSATION):
                key, text = f"{conv}-{n}", f"m{n}"
                try:
                    r = c.post(
                        f"/v1/conversations/{conv}/messages",
                        json={"text": text},
                        headers={"Idempotency-Key": key},
                    )
                except httpx.TransportError:
                    r = None
                with lock:
                    if r is not None and r.status_code == 202:
                        accepted.setdefault(conv, {})[key] = r.json()["message_id"]
                    else:
                        unsure.setdefault(conv, []).append((key, text))
                if stop_event.is_set():
                    return

    def read_stream(url: str, conv: str) -> None:
        with httpx.Client(base_url=url, timeout=10) as c:
            try:
                for _ in sse(c, conv):
                    pass
            except (httpx.TransportError, AssertionError):
                return

    with serving(tmp_path, config, data_dir=data) as served, served.client() as c:
        convs = [c.post("/v1/conversations").json()["id"] for _ in range(CONVERSATIONS)]
        stop = threading.Event()
        threads = [
            threading.Thread(target=read_stream, args=(served.url, conv), daemon=True)
            for conv in convs
        ] + [
            threading.Thread(target=post_all, args=(served.url, conv, 0, stop), daemon=True)
            for conv in convs
        ]
        for t in threads:
            t.start()
        while sum(len(v) for v in accepted.values()) < CONVERSATIONS * PER_CONVERSATION // 3:
            time.sleep(0.01)
        served.kill()
        stop.set()
        for t in threads:
            t.join(20)
    assert sum(len(v) for v in accepted.values()) < CONVERSATIONS * PER_CONVERSATION

    with serving(tmp_path, config, data_dir=data) as again, again.client() as c:
        # The senders try again what they were not told about, with the
        # same keys, then send the rest.
        for conv in convs:
            for key, text in unsure.get(conv, []):
                r = c.post(
                    f"/v1/conversations/{conv}/messages",
                    json={"text": text},
                    headers={"Idempotency-Key": key},
                )
                assert r.status_code == 202, r.text
                accepted.setdefault(conv, {})[key] = r.json()["message_id"]
            sent = len(accepted.get(conv, {}))
            post_all(again.url, conv, sent, threading.Event())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            busy = [x for x in c.get("/v1/conversations").json() if x["status"] != "idle"]
            if not busy and _all_answered(data, convs):
                break
            time.sleep(0.2)

    problems = anyio.run(_check, data, convs, accepted)
    assert not problems, "\n".join(problems)


def _all_answered(data: Path, convs: list[str]) -> bool:
    return not anyio.run(_check, data, convs, None)


async def _check(
    data: Path, convs: list[str], accepted: dict[str, dict[str, int]] | None
) -> list[str]:
    problems: list[str] = []
    async with open_store(data, read_only=True) as store:
        for conv in convs:
            log = await store.read(conv, 0, 100_000)
            messages = {e.id: e for e in log if e.type == MESSAGE}
            keys = Counter(e.data["platform_id"] for e in messages.values())
            problems += [f"{conv}: {k} stored {n} times" for k, n in keys.items() if n > 1]
            taken = Counter(m for e in log if e.type == TURN_QUEUED for m in e.data["messages"])
            problems += [f"{conv}: message {m} taken {n} times" for m, n in taken.items() if n > 1]
            problems += [f"{conv}: message {m} never taken" for m in messages if m not in taken]
            queued = [e.turn for e in log if e.type == TURN_QUEUED]
            ended = Counter(e.turn for e in log if e.type == TURN_COMPLETED)
            for turn in queued:
                if ended[turn] != 1:
                    problems.append(f"{conv}: turn {turn} ended {ended[turn]} times")
            statuses = {e.data["status"] for e in log if e.type == TURN_COMPLETED}
            if not statuses <= {"ok", "abandoned"}:
                problems.append(f"{conv}: turn statuses {statuses}")
            if accepted is not None:
                for key, message in accepted.get(conv, {}).items():
                    event = messages.get(message)
                    if event is None or event.data["platform_id"] != key:
                        problems.append(f"{conv}: accepted {key} (event {message}) not in the log")
                if len(accepted.get(conv, {})) != PER_CONVERSATION:
                    problems.append(f"{conv}: {len(accepted.get(conv, {}))} messages sent")
    return problems
