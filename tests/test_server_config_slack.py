"""``channels.slack`` in bridge.yaml: its secrets from the environment, one
way to receive, and every mistake named by file, line and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bridge.server.config import load_config
from bridge.server.errors import ConfigError

BOT = "xoxb-1234-5678-abcdefABCDEF"
APP = "xapp-1-A0123-456-abcdef0123456789"
SIGNING = "8f742231b10e8888abcd99yyyzzz85a5"
ENV = {"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": APP, "SLACK_SIGNING_SECRET": SIGNING}
SOCKET = "{bot_token_env: SLACK_BOT_TOKEN, app_token_env: SLACK_APP_TOKEN"


def write(folder: Path, text: str) -> Path:
    path = folder / "bridge.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problem_of(path: Path, env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env)
    return str(caught.value.detail if hasattr(caught.value, "detail") else caught.value)


def test_a_slack_app_by_socket_mode(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        routes:
          echo: {{profile: echo}}
          other: {{profile: echo, cwd: /}}
        users:
          - {{name: ann, slack: U0ANN, admin: true}}
        channels:
          slack: {SOCKET}, route: other, access: allowlist}}
        """,
    )
    config = load_config(path, env=ENV)
    s = config.slack
    assert s is not None and s.route.name == "other" and s.access == "allowlist"
    assert s.api_base == "https://slack.com/api/" and not s.by_events_api
    assert s.bot_token.get_secret_value() == BOT and s.app_token is not None
    for shown in (repr(config), config.describe()):
        assert BOT not in shown and APP not in shown
    assert "slack: route other, access allowlist" in config.describe()
    assert "Socket Mode" in config.describe()
    assert config.users[0].platform_ids["slack"] == "U0ANN"


def test_a_slack_app_by_the_events_api(tmp_path: Path) -> None:
    section = (
        "{bot_token_env: SLACK_BOT_TOKEN, signing_secret_env: SLACK_SIGNING_SECRET, "
        "events_path: /hooks/slack, api_base: 'http://127.0.0.1:9/api'}"
    )
    config = load_config(write(tmp_path, f"channels:\n  slack: {section}\n"), env=ENV)
    s = config.slack
    assert s is not None and s.by_events_api and s.events_path == "/hooks/slack"
    assert s.api_base == "http://127.0.0.1:9/api/" and s.access == "pairing"
    assert SIGNING not in repr(config) and "events by HTTP to /hooks/slack" in config.describe()


@pytest.mark.parametrize(
    ("section", "env", "field", "words"),
    [
        (SOCKET + "}", {}, "bot_token_env", "SLACK_BOT_TOKEN, which holds the Slack app's bot"),
        (
            SOCKET + "}",
            {**ENV, "SLACK_BOT_TOKEN": "xapp-wrong-kind"},
            "bot_token_env",
            "does not look like a Slack bot token (it starts with xoxb-)",
        ),
        (
            SOCKET + "}",
            {**ENV, "SLACK_APP_TOKEN": ""},
            "app_token_env",
            "SLACK_APP_TOKEN, which holds the Slack app's app-level token, is empty",
        ),
        (
            "{bot_token_env: SLACK_BOT_TOKEN}",
            ENV,
            "slack",
            "app_token_env (Socket Mode",
        ),
        (
            SOCKET + ", signing_secret_env: SLACK_SIGNING_SECRET}",
            ENV,
            "slack",
            "one of the two",
        ),
        (SOCKET + ", bot_token: xoxb-1}", ENV, "bot_token", "must not be written in the file"),
        (SOCKET + ", route: nope}", ENV, "route", "no route named 'nope'"),
        (SOCKET + ", access: everyone}", ENV, "access", "pairing"),
        (SOCKET + ", api_base: ftp://x}", ENV, "api_base", "http:// or https://"),
        (SOCKET + ", events_path: hooks}", ENV, "events_path", "must be a path starting with /"),
        (SOCKET + ", acess: open}", ENV, "acess", "access"),
        (SOCKET + ", app_token_env: 42}", ENV, "app_token_env", ""),
        ("[1, 2]", ENV, "slack", ""),
        ("just text", ENV, "slack", ""),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None,
)
def test_a_bad_slack_section_names_the_field(
    tmp_path: Path, section: str, env: dict[str, str], field: str, words: str
) -> None:
    path = write(tmp_path, f"channels:\n  slack: {section}\n")
    problem = problem_of(path, env)
    where = "channels.slack" if field == "slack" else f"channels.slack.{field}"
    assert f"field '{where}" in problem, problem
    assert words in problem, problem
    assert "bridge.yaml:2" in problem, problem
    for secret in (BOT, APP, SIGNING, "xapp-wrong-kind"):
        assert secret not in problem


def test_the_events_api_needs_the_http_server(tmp_path: Path) -> None:
    section = "{bot_token_env: SLACK_BOT_TOKEN, signing_secret_env: SLACK_SIGNING_SECRET}"
    path = write(tmp_path, f"channels:\n  http: {{enabled: false}}\n  slack: {section}\n")
    assert "the Events API needs the HTTP server" in problem_of(path, ENV)
