"""The HTTP API of ``agentproc serve``, against a real server on loopback."""

from __future__ import annotations

import json
import random
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from serve_kit import Served, serving

from bridge.store.sqlite import open_store

AGENTS = Path(__file__).parent / "agents"
ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdef01"
ROOT_TOKEN = "root-token-0123456789abcdef0"
TOKENS = {"ALICE_TOKEN": ALICE, "BOB_TOKEN": BOB, "ROOT_TOKEN": ROOT_TOKEN}


def profile(tmp: Path, name: str, script: str, **fields: object) -> str:
    """Write a profile running ``script`` (sh) and return its file name."""
    agent = tmp / f"{name}.sh"
    agent.write_text("#!/bin/sh\n" + textwrap.dedent(script))
    agent.chmod(0o755)
    body = {"name": name, "command": str(agent), **fields}
    (tmp / f"{name}.yaml").write_text(json.dumps(body))
    return f"{name}.yaml"


USERS = """
users:
  - {name: alice, token_env: ALICE_TOKEN}
  - {name: bob, token_env: BOB_TOKEN}
  - {name: root, token_env: ROOT_TOKEN, admin: true}
"""


def sse(client: httpx.Client, conv: str, **params: object) -> Iterator[tuple[str, str, dict]]:
    """(id, type, data) of each message of the conversation's event stream."""
    with client.stream("GET", f"/v1/conversations/{conv}/events", params=params) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in r.iter_lines():
            if line == "":
                if "data" in fields:
                    yield fields.get("id", ""), fields["event"], json.loads(fields["data"])
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value


def follow(client: httpx.Client, conv: str, turn: int, **params: object) -> dict:
    """The ``turn.completed`` data of ``turn``, read from the event stream."""
    for _, type_, event in sse(client, conv, turn=turn, **params):
        if type_ == "turn.completed":
            return event["data"]
    raise AssertionError("the stream ended without turn.completed")


def error(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()["error"]
    assert body["code"] == code, body
    assert body["message"], body
    return body


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """No config: the echo agent, open on loopback."""
    with serving(tmp_path_factory.mktemp("open")) as served:
        yield served


@pytest.fixture(scope="module")
def users_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("users")
    slow = profile(tmp, "slow", 'echo "AGENT_PARTIAL:\\"working\\""\nsleep 30\necho done\n')
    config = USERS + textwrap.dedent(f"""
        routes:
          echo: {{profile: echo}}
          slow: {{profile: ./{slow}}}
          ask:
            profile: ./ask.yaml
        turns: {{queue_limit: 1}}
        """)
    (tmp / "ask.yaml").write_text(
        json.dumps(
            {
                "name": "ask",
                "command": sys.executable,
                "args": [str(AGENTS / "permission_asker.py")],
                "env": {"ASK_TOOLS": "Bash"},
                "permission": True,
                "timeout_secs": 60,
            }
        )
    )
    with serving(tmp, config, env=TOKENS, token=ALICE) as served:
        yield served


# --- the open server ---------------------------------------------------------------------------


def test_a_message_is_answered_through_the_event_stream(open_server: Served) -> None:
    with open_server.client() as c:
        routes = c.get("/v1/routes").json()
        assert [r["name"] for r in routes] == ["echo"] and routes[0]["default"]
        r = c.post("/v1/conversations", json={"title": "first"})
        assert r.status_code == 201, r.text
        conv = r.json()
        assert conv["route"] == "echo" and conv["title"] == "first" and conv["turns"] == 0
        r = c.post(f"/v1/conversations/{conv['id']}/messages", json={"text": "hello"})
        assert r.status_code == 202, r.text
        sent = r.json()
        assert sent["message_id"] == sent["event_id"] >= 1 and not sent["duplicate"]
        done = follow(c, conv["id"], 1)
        assert done["status"] == "ok" and done["reply"] == "You said: hello"
        turns = c.get(f"/v1/conversations/{conv['id']}/turns").json()
        assert [(t["turn"], t["message"], t["reply"]) for t in turns] == [
            (1, "hello", "You said: hello")
        ]
        assert c.get(f"/v1/conversations/{conv['id']}/turns/1").json()["reply"] == done["reply"]
        got = c.get(f"/v1/conversations/{conv['id']}").json()
        assert got["turns"] == 1 and got["last_status"] == "ok" and got["status"] == "idle"
        assert conv["id"] in [x["id"] for x in c.get("/v1/conversations").json()]


def test_the_stream_replays_after_any_position_exactly_once(open_server: Served) -> None:
    with open_server.client() as c:
        conv = c.post("/v1/conversations", json={}).json()["id"]
        for i in range(3):
            c.post(f"/v1/conversations/{conv}/messages", json={"text": f"m{i}"})
            follow(c, conv, i + 1)
        everything = []
        for id_, type_, event in sse(c, conv):
            everything.append((id_, type_, event["id"]))
            if type_ == "turn.completed" and event["turn"] == 3:
                break
        ids = [e[2] for e in everything]
        assert ids == list(range(1, ids[-1] + 1))
        for cut in range(len(everything)):
            position = everything[cut][0]
            rest = []
            with c.stream(
                "GET", f"/v1/conversations/{conv}/events", headers={"Last-Event-ID": position}
            ) as r:
                for line in r.iter_lines():
                    if line.startswith("id: "):
                        rest.append(line[4:])
                        if len(rest) == len(everything) - cut - 1:
                            break
                    if cut == len(everything) - 1:
                        break
            assert rest == [e[0] for e in everything[cut + 1 :]]


def test_an_idempotency_key_makes_a_retry_safe(open_server: Served) -> None:
    with open_server.client() as c:
        conv = c.post("/v1/conversations").json()["id"]
        first = c.post(
            f"/v1/conversations/{conv}/messages",
            json={"text": "once"},
            headers={"Idempotency-Key": "k1"},
        ).json()
        again = c.post(
            f"/v1/conversations/{conv}/messages",
            json={"text": "once"},
            headers={"Idempotency-Key": "k1"},
        ).json()
        assert again["message_id"] == first["message_id"] and again["duplicate"]
        follow(c, conv, 1)
        time.sleep(0.3)
        assert c.get(f"/v1/conversations/{conv}").json()["turns"] == 1


def test_an_idempotency_key_makes_creating_a_conversation_safe_to_retry(
    open_server: Served,
) -> None:
    with open_server.client() as c:
        key = {"Idempotency-Key": "new-1"}
        first = c.post("/v1/conversations", json={"title": "t"}, headers=key).json()
        again = c.post("/v1/conversations", json={"title": "t"}, headers=key).json()
        other = c.post("/v1/conversations", headers={"Idempotency-Key": "new-2"}).json()
        plain = [c.post("/v1/conversations").json()["id"] for _ in range(2)]
    assert again["id"] == first["id"] != other["id"]
    assert plain[0] != plain[1], "without a key, each is new"


def test_the_openapi_document_names_every_route(open_server: Served) -> None:
    with open_server.client() as c:
        doc = c.get("/openapi.json").json()
    paths = doc["paths"]
    for path in (
        "/v1/routes",
        "/v1/conversations",
        "/v1/conversations/{conversation_id}",
        "/v1/conversations/{conversation_id}/messages",
        "/v1/conversations/{conversation_id}/events",
        "/v1/conversations/{conversation_id}/turns",
        "/v1/conversations/{conversation_id}/cancel",
        "/v1/conversations/{conversation_id}/reset",
        "/v1/approvals/{approval_id}",
        "/healthz",
    ):
        assert path in paths, path
    assert "ErrorBody" in doc["components"]["schemas"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/v1/conversations", {"route": "nope"}, 404, "unknown_route"),
        ("POST", "/v1/conversations", {"rout": "echo"}, 422, "invalid_request"),
        ("POST", "/v1/conversations", "not json", 422, "invalid_request"),
        ("POST", "/v1/conversations", [1, 2], 422, "invalid_request"),
        ("POST", "/v1/conversations", {"title": "x" * 201}, 422, "invalid_request"),
        ("POST", "/v1/conversations/{conv}/messages", {}, 422, "invalid_message"),
        ("POST", "/v1/conversations/{conv}/messages", {"text": 5}, 422, "invalid_request"),
        ("POST", "/v1/conversations/{conv}/messages", {"txt": "hi"}, 422, "invalid_request"),
        (
            "POST",
            "/v1/conversations/{conv}/messages",
            {"text": "a", "attachments": [{"url": ""}]},
            422,
            "invalid_request",
        ),
        ("POST", "/v1/conversations/{conv}/messages", {"text": "a\u0000b"}, 422, "invalid_message"),
        ("POST", "/v1/conversations/c0000/messages", {"text": "hi"}, 404, "not_found"),
        ("GET", "/v1/conversations/{conv}/events?after=x", None, 400, "bad_position"),
        ("GET", "/v1/conversations/{conv}/events?turn=0", None, 422, "invalid_request"),
        ("GET", "/v1/conversations?limit=0", None, 422, "invalid_request"),
        ("GET", "/v1/conversations/{conv}/turns/7", None, 404, "not_found"),
        ("POST", "/v1/approvals/nonsense", {"decision": "allow"}, 404, "not_found"),
        ("POST", "/v1/approvals/{conv}.1", {"decision": "maybe"}, 422, "invalid_request"),
        ("GET", "/v2/anything", None, 404, "not_found"),
        ("PUT", "/v1/routes", None, 405, "method_not_allowed"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None,
)
def test_bad_requests_get_a_json_error_that_says_what_to_do(
    open_server: Served, method: str, path: str, body: object, status: int, code: str
) -> None:
    with open_server.client() as c:
        conv = c.post("/v1/conversations").json()["id"]
        kwargs: dict[str, object] = {}
        if isinstance(body, str):
            kwargs = {"content": body, "headers": {"content-type": "application/json"}}
        elif body is not None:
            kwargs = {"json": body}
        r = c.request(method, path.format(conv=conv), **kwargs)  # type: ignore[arg-type]
        got = error(r, status, code)
        assert got["hint"], got
    assert "Traceback" not in open_server.stderr


# --- users and tokens --------------------------------------------------------------------------


def test_every_route_but_healthz_needs_a_known_token(users_server: Served) -> None:
    with users_server.client(token="") as anon:
        assert anon.get("/healthz").json() == {"ok": True}
        error(anon.get("/v1/routes"), 401, "unauthenticated")
        error(anon.post("/v1/conversations"), 401, "unauthenticated")
    with users_server.client(token="wrong-token-0123456789abcdef") as wrong:
        error(wrong.get("/v1/conversations"), 401, "unauthenticated")
    with users_server.client(token=ALICE[:-1]) as prefix:
        error(prefix.get("/v1/conversations"), 401, "unauthenticated")
    with httpx.Client(base_url=users_server.url, headers={"Authorization": ALICE}) as bare:
        error(bare.get("/v1/routes"), 401, "unauthenticated")
    for token in (ALICE, BOB, ROOT_TOKEN):
        assert token not in users_server.stderr


def test_a_user_sees_only_their_own_conversations(users_server: Served) -> None:
    with users_server.client(ALICE) as alice, users_server.client(BOB) as bob:
        mine = alice.post("/v1/conversations", json={"route": "echo"}).json()["id"]
        theirs = bob.post("/v1/conversations", json={"route": "echo"}).json()["id"]
        assert mine in [c["id"] for c in alice.get("/v1/conversations").json()]
        assert theirs not in [c["id"] for c in alice.get("/v1/conversations").json()]
        for method, path in (
            ("GET", f"/v1/conversations/{theirs}"),
            ("GET", f"/v1/conversations/{theirs}/events"),
            ("GET", f"/v1/conversations/{theirs}/turns"),
            ("POST", f"/v1/conversations/{theirs}/cancel"),
            ("POST", f"/v1/conversations/{theirs}/reset"),
            ("DELETE", f"/v1/conversations/{theirs}"),
        ):
            error(alice.request(method, path), 404, "not_found")
        error(
            alice.post(f"/v1/conversations/{theirs}/messages", json={"text": "hi"}),
            404,
            "not_found",
        )
        assert bob.get(f"/v1/conversations/{theirs}").status_code == 200


def test_approvals_are_answered_by_the_turns_owner_or_an_admin(users_server: Served) -> None:
    with (
        users_server.client(ALICE) as alice,
        users_server.client(BOB) as bob,
        users_server.client(ROOT_TOKEN) as root,
    ):
        conv = alice.post("/v1/conversations", json={"route": "ask"}).json()["id"]
        alice.post(f"/v1/conversations/{conv}/messages", json={"text": "go"})
        approval = ""
        for _, type_, event in sse(alice, conv, turn=1):
            if type_ == "turn.permission":
                approval = event["approval_id"]
                assert event["data"]["tool"] == "Bash"
                error(
                    bob.post(f"/v1/approvals/{approval}", json={"decision": "allow"}),
                    404,
                    "not_found",
                )
                r = alice.post(f"/v1/approvals/{approval}", json={"decision": "allow"})
                assert r.status_code == 200 and r.json()["answered"], r.text
                late = root.post(f"/v1/approvals/{approval}", json={"decision": "deny"})
                assert late.status_code == 200 and not late.json()["answered"]
            if type_ == "turn.completed":
                assert "allow=True" in event["data"]["reply"], event
                break
        assert approval


def test_a_busy_conversation_refuses_over_its_queue_with_429(users_server: Served) -> None:
    with users_server.client(ALICE) as alice:
        conv = alice.post("/v1/conversations", json={"route": "slow"}).json()["id"]
        assert (
            alice.post(f"/v1/conversations/{conv}/messages", json={"text": "1"}).status_code == 202
        )
        for _, type_, _event in sse(alice, conv, turn=1):
            if type_ == "turn.partial":
                break
        assert (
            alice.post(f"/v1/conversations/{conv}/messages", json={"text": "2"}).status_code == 202
        )
        body = error(
            alice.post(f"/v1/conversations/{conv}/messages", json={"text": "3"}),
            429,
            "queue_full",
        )
        assert body["extra"] == {"limit": 1, "count": 1}
        error(alice.delete(f"/v1/conversations/{conv}"), 409, "turn_running")
        cancelled = alice.post(f"/v1/conversations/{conv}/cancel").json()
        assert cancelled["dropped"], cancelled
        assert follow(alice, conv, 1)["status"] == "cancelled"


def test_a_reader_that_drops_at_random_points_gets_every_chunk_once(tmp_path: Path) -> None:
    streamer = profile(
        tmp_path,
        "streamer",
        """
        i=0
        while [ $i -lt 150 ]; do
          echo "AGENT_PARTIAL:\\"<$i>\\""
          i=$((i+1))
          case $i in *5|*0) sleep 0.03;; esac
        done
        echo final
        """,
    )
    config = f"routes:\n  s: {{profile: ./{streamer}}}\n"
    rng = random.Random(8)
    with serving(tmp_path, config) as served, served.client() as c:
        conv = c.post("/v1/conversations").json()["id"]
        c.post(f"/v1/conversations/{conv}/messages", json={"text": "go"})
        position, text, ids, done, reconnects = "0", "", [], None, 0
        while done is None:
            budget = rng.randint(1, 4)  # messages to read before dropping the connection
            reconnects += 1
            with c.stream(
                "GET", f"/v1/conversations/{conv}/events", headers={"Last-Event-ID": position}
            ) as r:
                fields: dict[str, str] = {}
                for line in r.iter_lines():
                    if line:
                        if not line.startswith(":"):
                            name, _, value = line.partition(": ")
                            fields[name] = value
                        continue
                    if "data" not in fields:
                        continue
                    event = json.loads(fields["data"])
                    position = fields["id"]
                    if not event["live"]:
                        ids.append(event["id"])
                    if event["type"] == "turn.partial":
                        assert event["data"]["offset"] == len(text), (event, len(text))
                        text += event["data"]["text"]
                    if event["type"] == "turn.completed":
                        done = event["data"]
                        break
                    fields = {}
                    budget -= 1
                    if budget == 0:
                        break
    assert text == "".join(f"<{i}>" for i in range(150))
    assert done["reply"] == "final", done
    assert ids == sorted(set(ids)), "stored events once each, in order"
    assert reconnects > 10, reconnects


def test_an_admin_lets_a_chat_stranger_in_through_the_api(users_server: Served) -> None:
    async def ask() -> str:
        async with open_store(users_server.data_dir) as store:
            p = await store.request_pairing("telegram", "777", "Eve (@eve)")
            assert p is not None
            return p.code

    code = anyio.run(ask)
    with users_server.client(ROOT_TOKEN) as root, users_server.client(ALICE) as alice:
        error(alice.get("/v1/pairings"), 403, "forbidden")
        error(alice.post(f"/v1/pairings/{code}", json={"decision": "approve"}), 403, "forbidden")
        waiting = root.get("/v1/pairings").json()
        assert [(p["code"], p["name"], p["status"]) for p in waiting] == [
            (code, "Eve (@eve)", "pending")
        ]
        ok = root.post(f"/v1/pairings/{code.lower()}", json={"decision": "approve"})
        assert ok.status_code == 200 and ok.json()["decided_by"] == "root", ok.text
        error(root.post(f"/v1/pairings/{code}", json={"decision": "deny"}), 404, "not_found")
        error(root.post(f"/v1/pairings/{code}", json={"decision": "maybe"}), 422, "invalid_request")
