"""``agentproc serve`` as a process: starting, refusing, draining, logging, metrics."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import httpx
from helpers import check_stderr, cli
from serve_kit import serving
from test_http_api import ALICE, TOKENS, USERS, error, follow, profile, sse


def test_with_no_config_it_serves_the_echo_agent_and_the_page(tmp_path: Path) -> None:
    with serving(tmp_path) as served, served.client() as c:
        assert served.url.startswith("http://127.0.0.1:")
        page = c.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
        assert [r["name"] for r in c.get("/v1/routes").json()] == ["echo"]
        banner = served.stderr
        assert "open to anyone on this machine" in banner and served.url in banner
    check_stderr(served.stderr)


def test_check_validates_a_config_and_exits(tmp_path: Path) -> None:
    (tmp_path / "bridge.yaml").write_text(USERS + "routes:\n  echo: {profile: echo}\n")
    ok = cli("serve", "--check", "--config", tmp_path / "bridge.yaml", env=TOKENS)
    assert ok.code == 0 and "ok" in ok.out and "alice" in ok.out, ok
    assert ALICE not in ok.out + ok.err
    (tmp_path / "bad.yaml").write_text("listen: 127.0.0.1:8787\nroutse: {}\n")
    bad = cli("serve", "--check", "--config", tmp_path / "bad.yaml")
    assert bad.code == 2, bad
    assert "bad.yaml:2:" in bad.err and "routes" in bad.err, bad.err
    check_stderr(bad.err)
    missing = cli("serve", "--config", tmp_path / "nope.yaml")
    assert missing.code == 2 and "nope.yaml" in missing.err, missing
    check_stderr(missing.err)


def test_it_refuses_to_listen_beyond_loopback_without_users(tmp_path: Path) -> None:
    run = cli("serve", "--host", "0.0.0.0", "--port", "0", "--data-dir", tmp_path)
    assert run.code != 0 and "refusing to listen on 0.0.0.0" in run.err, run
    assert "users" in run.err
    check_stderr(run.err)


def test_a_config_that_serves_nothing_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bridge.yaml").write_text("channels:\n  http: {enabled: false}\n")
    run = cli("serve", "--config", tmp_path / "bridge.yaml", "--data-dir", tmp_path)
    assert run.code == 1 and "nothing to serve" in run.err, run
    check_stderr(run.err)


def test_a_port_in_use_is_a_plain_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = cli("serve", "--port", str(port), "--data-dir", tmp_path)
    assert run.code == 1 and "the port is in use" in run.err and "--port" in run.err, run
    check_stderr(run.err)


def streaming(c: httpx.Client) -> str:
    """A new conversation whose first turn (message "one") has begun to stream."""
    conv = c.post("/v1/conversations").json()["id"]
    c.post(f"/v1/conversations/{conv}/messages", json={"text": "one"})
    for _, type_, _event in sse(c, conv, turn=1):
        if type_ == "turn.partial":
            break
    return str(conv)


def test_sigterm_drains_running_turns_and_loses_nothing(tmp_path: Path) -> None:
    slow = profile(
        tmp_path,
        "slow",
        'echo "AGENT_PARTIAL:\\"working\\""\nsleep 1\necho "done $AGENT_MESSAGE"\n',
    )
    config = f"routes:\n  slow: {{profile: ./{slow}}}\nturns: {{shutdown_grace_secs: 20}}\n"
    data = tmp_path / "data"
    with serving(tmp_path, config, data_dir=data) as served, served.client() as c:
        conv = streaming(c)
        served.proc.send_signal(signal.SIGTERM)
        refused = c.post(f"/v1/conversations/{conv}/messages", json={"text": "two"})
        error(refused, 503, "shutting_down")
        assert refused.headers["retry-after"]
        assert served.wait() == 0
    check_stderr(served.stderr)
    with serving(tmp_path, config, data_dir=data) as again, again.client() as c:
        turns = c.get(f"/v1/conversations/{conv}/turns").json()
    assert [(t["status"], t["reply"]) for t in turns] == [("ok", "done one")]


def test_a_second_signal_stops_running_turns_at_once(tmp_path: Path) -> None:
    slow = profile(tmp_path, "slow", 'echo "AGENT_PARTIAL:\\"working\\""\nsleep 60\n')
    config = f"routes:\n  slow: {{profile: ./{slow}}}\nturns: {{shutdown_grace_secs: 60}}\n"
    data = tmp_path / "data"
    with serving(tmp_path, config, data_dir=data) as served, served.client() as c:
        conv = streaming(c)
        served.proc.send_signal(signal.SIGTERM)
        for _ in range(100):
            if "draining" in served.stderr:
                break
            time.sleep(0.05)
        served.proc.send_signal(signal.SIGINT)
        assert served.wait() == 0
    assert "stopping the running turns now" in served.stderr
    check_stderr(served.stderr)
    with serving(tmp_path, config, data_dir=data) as again, again.client() as c:
        turns = c.get(f"/v1/conversations/{conv}/turns").json()
    assert [t["status"] for t in turns] == ["cancelled"]


def test_a_restart_answers_what_was_waiting(tmp_path: Path) -> None:
    slow = profile(tmp_path, "slow", 'sleep 2\necho "done $AGENT_MESSAGE"\n')
    config = f"routes:\n  slow: {{profile: ./{slow}}}\nturns: {{shutdown_grace_secs: 0.2}}\n"
    data = tmp_path / "data"
    with serving(tmp_path, config, data_dir=data) as served, served.client() as c:
        conv = c.post("/v1/conversations").json()["id"]
        c.post(f"/v1/conversations/{conv}/messages", json={"text": "one"})
        c.post(f"/v1/conversations/{conv}/messages", json={"text": "two"})
        assert served.stop() == 0
    with serving(tmp_path, config, data_dir=data) as again, again.client() as c:
        assert follow(c, conv, 2)["reply"] == "done two"
        turns = c.get(f"/v1/conversations/{conv}/turns").json()
    assert [t["status"] for t in turns] == ["cancelled", "ok"], turns
    assert "took up 1 conversation" in again.stderr


def test_json_logs_name_the_conversation_and_turn(tmp_path: Path) -> None:
    with serving(tmp_path, args=("--log-format", "json")) as served, served.client() as c:
        conv = c.post("/v1/conversations").json()["id"]
        c.post(f"/v1/conversations/{conv}/messages", json={"text": "hi"})
        follow(c, conv, 1)
        assert served.stop() == 0
    lines = [json.loads(line) for line in served.stderr.splitlines() if line.startswith("{")]
    about = [x for x in lines if x.get("conversation") == conv]
    assert [x["turn"] for x in about] == [1, 1], about
    assert {"time", "level", "logger", "message"} <= set(about[0])
    assert "ended: ok" in about[-1]["message"]


def test_metrics_count_turns_and_need_a_token(tmp_path: Path) -> None:
    config = USERS + "routes:\n  echo: {profile: echo}\n"
    with serving(tmp_path, config, env=TOKENS, token=ALICE) as served:
        with served.client(token="") as anon:
            error(anon.get("/metrics"), 401, "unauthenticated")
        with served.client() as c:
            conv = c.post("/v1/conversations").json()["id"]
            c.post(f"/v1/conversations/{conv}/messages", json={"text": "hi"})
            follow(c, conv, 1)
            text = c.get("/metrics").text
    for line in (
        'agentproc_turns_total{route="echo",status="ok"} 1.0',
        'agentproc_messages_accepted_total{route="echo"} 1.0',
        'agentproc_turn_duration_seconds_count{route="echo"} 1.0',
        "agentproc_queue_depth 0.0",
        "agentproc_running_turns 0.0",
        "agentproc_approvals_pending 0.0",
        "agentproc_store_errors_total 0.0",
    ):
        assert line in text, line
    assert "agentproc_subscribers" in text
