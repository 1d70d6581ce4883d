"""bridge.yaml, the config of `agentproc serve`: real files in tmp_path, real
bundled profiles, an environment passed in as a dict.

Every bad input is checked for the three things a person needs to fix it: the
file and line, the field, and what to do. Tokens are checked never to show,
in errors, reprs or the banner.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from pydantic import SecretStr

from bridge.errors import BridgeError
from bridge.server.config import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    ServerConfig,
    TurnLimits,
    User,
    load_config,
)
from bridge.server.errors import ConfigError, ServerError
from bridge.store.records import Route

ALICE = "alice-0123456789abcdef"
BOB = "bob-fedcba9876543210ff"
TOKENS = {"ALICE_TOKEN": ALICE, "BOB_TOKEN": BOB}


def write(folder: Path, text: str, name: str = "bridge.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def error_of(path: Path, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=TOKENS if env is None else env)
    return caught.value


def only_problem(path: Path, env: dict[str, str] | None = None) -> str:
    error = error_of(path, env)
    assert len(error.problems) == 1, error.problems
    return error.problems[0]


def assert_problem(problem: str, path: Path, line: int, field: str, *words: str) -> None:
    """The problem names the file, the line and the field, and says ``words``."""
    assert problem.startswith(f"{path}:{line}: field '{field}': "), problem
    for word in words:
        assert word in problem, (word, problem)


def real(path: Path | str) -> str:
    return os.path.realpath(path)


# --- defaults --------------------------------------------------------------------------------


def check_defaults(config: ServerConfig, folder: Path) -> None:
    assert (config.host, config.port) == (DEFAULT_HOST, DEFAULT_PORT) == ("127.0.0.1", 8787)
    assert config.is_loopback
    assert config.store == "sqlite"
    assert config.data_dir is None
    assert config.users == ()
    assert config.turns == TurnLimits()
    assert config.http_enabled
    assert not config.exposes_api_without_users
    (echo,) = config.routes
    assert echo.name == echo.title == "echo"
    assert echo.route == Route("bundled:echo", real(folder), "echo")
    assert echo.route.name == "echo"
    assert echo.profile.cwd == str(folder.resolve())
    assert config.default_route is echo


def test_no_file_serves_echo_on_loopback_from_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(None, env={})
    assert config.path is None
    check_defaults(config, tmp_path)


@pytest.mark.parametrize(
    "text",
    ["", "# only a comment\n", "---\n", "~\n", "\n\n", "listen:\nusers:\nroutes:\nturns:\n"],
    ids=["empty", "comment", "document-start", "null", "blank-lines", "empty-sections"],
)
def test_an_empty_file_means_all_defaults(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    config = load_config(path, env={})
    assert config.path == path.resolve()
    check_defaults(config, tmp_path)


def test_the_turn_limits_default_to_the_dispatchers() -> None:
    limits = TurnLimits()
    assert limits.max_running == 16
    assert limits.busy_policy == "queue"
    assert limits.queue_limit == 5
    assert limits.max_per_user is limits.max_waiting is limits.session_idle_secs is None
    assert limits.shutdown_grace_secs == 10
    assert limits.keep_turns == 200


# --- a full file -----------------------------------------------------------------------------

FULL = """
listen: "[::1]:9000"
data_dir: ./data
store: memory
users:
  - name: alice
    token_env: ALICE_TOKEN
    admin: true
    telegram: 123456789
    slack: U0123ABC
    discord: "80351110224678912"
  - name: bob.smith
    token_env: BOB_TOKEN
  - name: carol
routes:
  claude: {profile: claude-code, cwd: ~/app, title: "Claude on app"}
  echo: {profile: echo}
turns:
  max_running: 4
  busy_policy: collect
  queue_limit: 3
  max_per_user: 2
  max_waiting: 10
  session_idle_secs: 3600
  shutdown_grace_secs: 2.5
  keep_turns: 50
channels:
  http: {}
"""


def test_a_full_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / "app").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    path = write(tmp_path, FULL)
    config = load_config(path, env=TOKENS)

    assert (config.host, config.port, config.is_loopback) == ("::1", 9000, True)
    assert str(config.listen) == "[::1]:9000"
    assert config.data_dir == (tmp_path / "data").resolve()
    assert config.store == "memory"

    alice, bob, carol = config.users
    assert alice == User(
        "alice",
        SecretStr(ALICE),
        admin=True,
        platform_ids={"telegram": "123456789", "slack": "U0123ABC", "discord": "80351110224678912"},
    )
    assert alice.token is not None and alice.token.get_secret_value() == ALICE
    assert (bob.name, bob.admin, dict(bob.platform_ids)) == ("bob.smith", False, {})
    assert carol.token is None

    claude, echo = config.routes
    assert config.default_route is claude
    assert claude.route == Route("bundled:claude-code", real(home / "app"), "claude")
    assert claude.title == "Claude on app"
    assert claude.profile.display_name == "claude-code"
    assert claude.profile.cwd == str((home / "app").resolve())
    assert echo.route == Route("bundled:echo", real(tmp_path), "echo")
    assert config.route_named("echo") is echo
    assert config.route_named("nope") is None

    assert config.turns == TurnLimits(
        max_running=4,
        busy_policy="collect",
        queue_limit=3,
        max_per_user=2,
        max_waiting=10,
        session_idle_secs=3600,
        shutdown_grace_secs=2.5,
        keep_turns=50,
    )
    assert config.http_enabled


def test_the_banner_names_address_store_routes_and_users(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        listen: 0.0.0.0:9000
        store: memory
        users:
          - {name: alice, token_env: ALICE_TOKEN, admin: true}
          - {name: carol}
        routes:
          main: {profile: echo, title: Echo for everyone}
          llm: {profile: llm}
        """,
    )
    banner = load_config(path, env=TOKENS).describe().splitlines()
    assert banner == [
        "HTTP API and web chat: http://0.0.0.0:9000 (reachable from other machines)",
        "store: memory (nothing is kept when the bridge stops)",
        f"route main (default): 'Echo for everyone', bundled:echo in {real(tmp_path)}",
        f"route llm: bundled:llm in {real(tmp_path)}",
        "users: alice (admin), carol",
    ]


def test_the_http_channel_can_be_turned_off(tmp_path: Path) -> None:
    path = write(tmp_path, "listen: 0.0.0.0:8787\nchannels:\n  http: {enabled: false}\n")
    config = load_config(path, env={})
    assert not config.http_enabled
    assert not config.exposes_api_without_users
    assert "HTTP API: off" in config.describe()


# --- listen ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "host", "port", "loopback"),
    [
        ("8787", "127.0.0.1", 8787, True),
        ("'9000'", "127.0.0.1", 9000, True),
        ("127.0.0.1:9000", "127.0.0.1", 9000, True),
        ("127.8.9.10:1", "127.8.9.10", 1, True),
        ("localhost:65535", "localhost", 65535, True),
        ('"[::1]:8787"', "::1", 8787, True),
        ('"[::ffff:127.0.0.1]:80"', "::ffff:127.0.0.1", 80, True),
        ("0.0.0.0:8787", "0.0.0.0", 8787, False),
        ('"[::]:8787"', "::", 8787, False),
        ("192.168.1.5:80", "192.168.1.5", 80, False),
        ("bridge.example.com:443", "bridge.example.com", 443, False),
    ],
    ids=lambda v: str(v),
)
def test_listen_forms(tmp_path: Path, value: str, host: str, port: int, loopback: bool) -> None:
    config = load_config(write(tmp_path, f"listen: {value}\n"), env={})
    assert (config.host, config.port, config.is_loopback) == (host, port, loopback)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("0", "from 1 to 65535 (got 0)"),
        ("70000", "from 1 to 65535 (got 70000)"),
        ("-1", "from 1 to 65535"),
        ("127.0.0.1:0", "from 1 to 65535 (got 0)"),
        ("127.0.0.1:70000", "from 1 to 65535 (got 70000)"),
        ("127.0.0.1:http", "must be a number from 1 to 65535 (got 'http')"),
        ("localhost", "needs a port: write localhost:8787"),
        ("::1:8787", "put an IPv6 address in brackets, like [::1]:8787"),
        ('"[::1]"', "must be [IPv6 address]:port"),
        ('"[nothost]:80"', "'nothost' is not an IPv6 address"),
        (":8787", "needs a host: 0.0.0.0:8787 listens on every interface"),
        ("'bad host!:80'", "'bad host!' is not an IP address or host name"),
        ("true", "must be host:port, like 127.0.0.1:8787"),
        ("[8787]", "must be host:port"),
    ],
    ids=lambda v: str(v),
)
def test_bad_listen(tmp_path: Path, value: str, words: str) -> None:
    path = write(tmp_path, f"store: sqlite\nlisten: {value}\n")
    assert_problem(only_problem(path), path, 2, "listen", words)


def test_loopback_without_users_is_not_the_loaders_business(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "listen: 127.0.0.1:8787\n"), env={})
    assert not config.exposes_api_without_users


@pytest.mark.parametrize(
    ("users", "exposed"),
    [
        ("", True),
        ("users: [{name: carol}]", True),
        ("users: [{name: alice, token_env: ALICE_TOKEN}]", False),
    ],
    ids=["no-users", "users-without-tokens", "a-user-with-a-token"],
)
def test_beyond_loopback_the_config_says_whether_anyone_checks_tokens(
    tmp_path: Path, users: str, exposed: bool
) -> None:
    config = load_config(write(tmp_path, f"listen: 0.0.0.0:8787\n{users}\n"), env=TOKENS)
    assert config.exposes_api_without_users is exposed


# --- users and tokens ------------------------------------------------------------------------


def test_duplicate_user_names(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        users:
          - name: alice
            token_env: ALICE_TOKEN
          - name: alice
            admin: yes-please
        """,
    )
    assert_problem(
        only_problem(path), path, 4, "users[1].name", "'alice' is also on line 2", "of their own"
    )


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ("listen: 8787\nstore: sqlite\nlisten: 9000\n", 3, "listen", "also set on line 1"),
        (
            "users:\n  - name: alice\n    admin: true\n    admin: false\n",
            4,
            "users[0].admin",
            "also set on line 3",
        ),
        (
            "routes:\n  echo: {profile: echo, profile: llm}\n",
            2,
            "routes.echo.profile",
            "duplicate key",
        ),
        (
            "routes:\n  echo: {profile: echo}\n  echo: {profile: echo}\n",
            3,
            "routes.echo",
            "also set on line 2",
        ),
    ],
    ids=["top-level", "in-a-user", "in-a-route", "route-name"],
)
def test_duplicate_keys(tmp_path: Path, text: str, line: int, field: str, words: str) -> None:
    path = write(tmp_path, text)
    assert_problem(only_problem(path), path, line, field, "duplicate key", words)


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ("listen: 8787\nroute:\n  echo: {profile: echo}\n", 2, "route", "did you mean 'routes'?"),
        ("zzzzzz: 1\n", 1, "zzzzzz", "the keys are listen, data_dir, store, users, routes"),
        ("users:\n  - name: a\n    admn: true\n", 3, "users[0].admn", "did you mean 'admin'?"),
        (
            "users:\n  - name: a\n    tokenenv: X\n",
            3,
            "users[0].tokenenv",
            "did you mean 'token_env'?",
        ),
        ("routes:\n  e:\n    profile: echo\n    cdw: .\n", 4, "routes.e.cdw", "'cwd'?"),
        ("turns:\n  max_runing: 3\n", 2, "turns.max_runing", "did you mean 'max_running'?"),
        ("channels:\n  http: {enable: false}\n", 2, "channels.http.enable", "'enabled'?"),
    ],
    ids=["top-level", "no-suggestion", "user", "user-token-env", "route", "turns", "http"],
)
def test_misspelt_keys_get_a_suggestion(
    tmp_path: Path, text: str, line: int, field: str, words: str
) -> None:
    path = write(tmp_path, text)
    assert_problem(only_problem(path), path, line, field, "not a", words)


@pytest.mark.parametrize("key", ["token", "password", "api_key"])
def test_a_literal_token_is_refused_and_never_shown(tmp_path: Path, key: str) -> None:
    secret = "s3cr3t-in-the-file-0123456789"
    path = write(tmp_path, f"users:\n  - name: alice\n    {key}: {secret}\n")
    error = error_of(path)
    assert_problem(
        only_problem(path),
        path,
        3,
        f"users[0].{key}",
        "put the token in an environment variable and name it with token_env",
    )
    assert secret not in str(error) and secret not in repr(error)


def test_a_token_at_the_top_level_is_refused_too(tmp_path: Path) -> None:
    path = write(tmp_path, "token: abcdefabcdefabcdef0123\n")
    assert_problem(only_problem(path), path, 1, "token", "name it with token_env")
    assert "abcdefabcdefabcdef0123" not in str(error_of(path))


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({}, "ALICE_TOKEN, which holds the HTTP token of user 'alice', is not set"),
        ({"ALICE_TOKEN": ""}, "ALICE_TOKEN, which holds the HTTP token of user 'alice', is empty"),
        ({"ALICE_TOKEN": "short-tok"}, "shorter than 16 characters"),
        ({"ALICE_TOKEN": "has a space in it 0123"}, "an Authorization header cannot carry"),
        ({"ALICE_TOKEN": "tab\tseparated0123456"}, "a control character"),
        ({"ALICE_TOKEN": "ünïcödé-0123456789abc"}, "outside ASCII"),
    ],
    ids=["missing", "empty", "short", "space", "control", "non-ascii"],
)
def test_bad_tokens(tmp_path: Path, env: dict[str, str], words: str) -> None:
    path = write(tmp_path, "users:\n  - name: alice\n    token_env: ALICE_TOKEN\n")
    error = error_of(path, env)
    (problem,) = error.problems
    assert_problem(problem, path, 3, "users[0].token_env", words, "openssl rand -hex 32")
    for value in env.values():
        if value:
            assert value not in str(error)


def test_two_users_with_one_token(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        users:
          - name: alice
            token_env: ALICE_TOKEN
          - name: bob
            token_env: BOB_TOKEN
        """,
    )
    error = error_of(path, {"ALICE_TOKEN": ALICE, "BOB_TOKEN": ALICE})
    (problem,) = error.problems
    assert_problem(
        problem, path, 5, "users[1].token_env", "same token as user 'alice' (line 3)", "their own"
    )
    assert ALICE not in str(error)


@pytest.mark.parametrize(
    "value",
    ["alice-0123456789abcdef", "a3f9c2e4b5d6e7f80123", "'1234567890123456789'", "not a name"],
    ids=["not-a-name", "a-name-like-a-token", "a-number", "spaces"],
)
def test_token_env_that_holds_a_token_is_never_shown(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"users:\n  - name: alice\n    token_env: {value}\n")
    error = error_of(path, {})
    (problem,) = error.problems
    assert_problem(problem, path, 3, "users[0].token_env", "ALICE_TOKEN", "holds the token")
    assert value.strip("'") not in str(error)


@pytest.mark.parametrize(
    ("entry", "field", "words"),
    [
        ("{name: 'bad name'}", "users[0].name", "not a valid user name: use 1 to 64 letters"),
        ("{name: ''}", "users[0].name", "must be text, not empty"),
        ("{name: 42}", "users[0].name", "quote it"),
        (f"{{name: {'x' * 65}}}", "users[0].name", "1 to 64"),
        ("{admin: true}", "users[0].name", "is required but missing"),
        ("{name: a, admin: 'yes'}", "users[0].admin", "must be true or false, not text"),
        ("{name: a, telegram: true}", "users[0].telegram", "must be a user id"),
        ("{name: a, discord: 1.5}", "users[0].discord", "quote it"),
        ("alice", "users[0]", "must be a mapping (like `name: alice`), not a single value"),
    ],
    ids=["spaces", "empty", "number", "too-long", "no-name", "admin-text", "id-bool", "id-float",
         "not-a-mapping"],
)  # fmt: skip
def test_bad_user_entries(tmp_path: Path, entry: str, field: str, words: str) -> None:
    path = write(tmp_path, f"users:\n  - {entry}\n")
    assert_problem(only_problem(path), path, 2, field, words)


def test_users_must_be_a_list(tmp_path: Path) -> None:
    path = write(tmp_path, "users:\n  alice: {}\n")
    assert_problem(only_problem(path), path, 2, "users", "must be a list (like `- name: alice`)")


def test_one_platform_id_is_one_person(tmp_path: Path) -> None:
    path = write(tmp_path, "users:\n  - {name: a, telegram: 42}\n  - {name: b, telegram: '42'}\n")
    assert_problem(only_problem(path), path, 3, "users[1].telegram", "user 'a' has the same")


# --- tokens never show -----------------------------------------------------------------------


def test_tokens_never_show_in_repr_or_the_banner(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        users:
          - {name: alice, token_env: ALICE_TOKEN, admin: true}
          - {name: bob, token_env: BOB_TOKEN}
        """,
    )
    config = load_config(path, env=TOKENS)
    shown = [repr(config), str(config), config.describe(), repr(config.users), str(config.users)]
    for text in shown:
        assert ALICE not in text and BOB not in text
    assert "alice (admin), bob" in config.describe()


def test_tokens_never_show_in_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        users:
          - {name: alice, token_env: ALICE_TOKEN, admn: true}
          - {name: bob, token_env: BOB_TOKEN}
          - {name: bob2, token_env: BOB_TOKEN}
        """,
    )
    error = error_of(path)
    assert len(error.problems) == 2
    for text in (str(error), repr(error), error.detail, error.hint, *error.problems):
        assert ALICE not in text and BOB not in text


@pytest.mark.parametrize(
    ("given", "who"),
    [
        (ALICE, "alice"),
        (BOB, "bob"),
        ("", None),
        (ALICE[:-1], None),
        (ALICE + "x", None),
        (ALICE.upper(), None),
        ("wrong-token-0123456789", None),
        ("ünïcödé", None),
    ],
    ids=["alice", "bob", "empty", "prefix", "longer", "upper-case", "wrong", "non-ascii"],
)
def test_user_by_token(tmp_path: Path, given: str, who: str | None) -> None:
    path = write(
        tmp_path,
        """
        users:
          - {name: carol}
          - {name: alice, token_env: ALICE_TOKEN}
          - {name: bob, token_env: BOB_TOKEN}
        """,
    )
    user = load_config(path, env=TOKENS).user_by_token(given)
    assert (user.name if user is not None else None) == who


# --- routes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ("routes:\n  'bad name': {profile: echo}\n", 2, "routes.bad name", "1 to 64 letters"),
        ("routes:\n  a/b: {profile: echo}\n", 2, "routes.a/b", "not a valid route name"),
        ("routes:\n  echo: {profile: ecoh}\n", 2, "routes.echo.profile", "did you mean 'echo'?"),
        (
            "routes:\n  echo: {profile: 'bundled:nope'}\n",
            2,
            "routes.echo.profile",
            "no bundled profile named 'nope'; the bundled profiles are: ",
        ),
        ("routes:\n  echo: {profile: zzzzzz}\n", 2, "routes.echo.profile", "echo, "),
        (
            "routes:\n  echo: {profile: ./nowhere/}\n",
            2,
            "routes.echo.profile",
            "relative paths start at the config's folder",
        ),
        ("routes:\n  echo:\n    cwd: .\n", 2, "routes.echo.profile", "required but missing"),
        ("routes:\n  echo: echo\n", 2, "routes.echo", "must be a mapping (like `profile: echo`)"),
        ("routes: {}\n", 1, "routes", "leave `routes` out to serve the bundled echo profile"),
        ("routes:\n  - echo\n", 2, "routes", "must be a mapping"),
        (
            "routes:\n  a: {profile: echo}\n  b: {profile: 'bundled:echo'}\n",
            3,
            "routes.b",
            "same profile in the same folder as route 'a'",
        ),
    ],
    ids=["name-space", "name-slash", "misspelt", "bundled-prefix", "unknown", "missing-path",
         "no-profile", "not-a-mapping", "empty", "a-list", "same-route-twice"],
)  # fmt: skip
def test_bad_routes(tmp_path: Path, text: str, line: int, field: str, words: str) -> None:
    path = write(tmp_path, text)
    assert_problem(only_problem(path), path, line, field, words)


def test_a_profile_path_is_relative_to_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = tmp_path / "conf"
    (config_dir / "agents" / "mine").mkdir(parents=True)
    (config_dir / "agents" / "mine" / "profile.yaml").write_text("command: ./agent.py\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write(config_dir, "routes:\n  mine: {profile: agents/mine}\n")
    (mine,) = load_config(path, env={}).routes
    # The profile decides where it runs (its own folder), as in `agentproc chat`.
    folder = (config_dir / "agents" / "mine").resolve()
    assert mine.route == Route(str(folder), real(folder))
    assert mine.route.name == mine.title == "mine"
    assert mine.profile.source == (config_dir / "agents" / "mine" / "profile.yaml").resolve()


def test_a_route_cwd_moves_a_profile_file_too(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    write(tmp_path, "command: ./agent.py\n", name="agent.yaml")
    path = write(tmp_path, "routes:\n  a: {profile: agent.yaml, cwd: work, title: Mine}\n")
    (route,) = load_config(path, env={}).routes
    assert route.route == Route(str((tmp_path / "agent.yaml").resolve()), real(tmp_path / "work"))
    assert route.title == "Mine"


def test_a_route_whose_profile_is_invalid_shows_the_profiles_problems(tmp_path: Path) -> None:
    write(tmp_path, "command: ./agent\ntimeout: 5\n", name="broken.yaml")
    path = write(tmp_path, "listen: 8787\nroutes:\n  broken: {profile: ./broken.yaml}\n")
    problem = only_problem(path)
    assert_problem(problem, path, 3, "routes.broken.profile", "the profile does not load")
    assert f"{tmp_path / 'broken.yaml'}:2: field 'timeout': not a profile field" in problem
    assert "did you mean 'timeout_secs'?" in problem


def test_a_profile_folder_without_a_profile(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    path = write(tmp_path, "routes:\n  e: {profile: empty}\n")
    assert_problem(
        only_problem(path), path, 2, "routes.e.profile", "no profile in folder", "profile.yaml"
    )


@pytest.mark.parametrize(
    ("cwd", "words"),
    [
        ("./missing", "does not exist; create it"),
        ("bridge.yaml", "is a file; cwd must be a folder"),
        ("''", "must be a path, not empty"),
        ("7", "must be a path (got 7); quote it"),
    ],
    ids=["missing", "a-file", "empty", "a-number"],
)
def test_bad_route_cwd(tmp_path: Path, cwd: str, words: str) -> None:
    path = write(tmp_path, f"routes:\n  echo:\n    profile: echo\n    cwd: {cwd}\n")
    assert_problem(only_problem(path), path, 4, "routes.echo.cwd", words)


# --- turns, store, data folder, channels -----------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("max_running: 0", "greater than or equal to 1 (got 0)"),
        ("max_running: true", "not a boolean"),
        ("busy_policy: qeue", "must be 'queue', 'reject', 'interrupt' or 'collect' (got 'qeue')"),
        ("queue_limit: '5'", "not text (got '5'); write the number without quotes"),
        ("max_per_user: 0", "greater than or equal to 1"),
        ("max_waiting: 1.5", "must be a valid integer"),
        ("session_idle_secs: 0", "greater than 0"),
        ("shutdown_grace_secs: -1", "greater than or equal to 0"),
        ("shutdown_grace_secs: .inf", "finite number"),
        ("keep_turns: 0", "greater than or equal to 1"),
    ],
    ids=lambda v: str(v).split(":")[0],
)
def test_bad_turn_limits(tmp_path: Path, entry: str, words: str) -> None:
    path = write(tmp_path, f"turns:\n  {entry}\n")
    field = "turns." + entry.split(":")[0]
    assert_problem(only_problem(path), path, 2, field, words)


def test_turns_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "turns: 5\n")
    assert_problem(only_problem(path), path, 1, "turns", "must be a mapping")


@pytest.mark.parametrize(
    ("value", "words", "hidden"),
    [
        ("postgresql://app:hunter2@db/bridge", "not supported yet", "hunter2"),
        ("postgres://app:hunter2@db/bridge", "use `store: sqlite`", "hunter2"),
        ("mysql://app:hunter2@db/bridge", "not a URL", "hunter2"),
        ("redis", "must be sqlite (sessions.db in the data folder) or memory", ""),
    ],
    ids=["postgresql", "postgres", "other-url", "other"],
)
def test_bad_store(tmp_path: Path, value: str, words: str, hidden: str) -> None:
    path = write(tmp_path, f"listen: 8787\nstore: {value}\n")
    problem = only_problem(path)
    assert_problem(problem, path, 2, "store", words)
    if hidden:
        assert hidden not in str(error_of(path))


def test_data_dir_is_relative_to_the_config_folder(tmp_path: Path) -> None:
    path = write(tmp_path, "data_dir: state\n")
    config = load_config(path, env={})
    assert config.data_dir == (tmp_path / "state").resolve()
    assert f"store: sqlite, {tmp_path.resolve() / 'state' / 'sessions.db'}" in config.describe()


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    path = write(tmp_path, "data_dir: bridge.yaml\n")
    assert_problem(only_problem(path), path, 1, "data_dir", "is a file, not a folder")


@pytest.mark.parametrize(
    ("channel", "words"),
    [
        ("telegarm", "not a channel; did you mean 'telegram'?"),
        ("matrix", "not a channel; this version serves http, telegram, slack, discord"),
    ],
    ids=lambda v: str(v).split(";")[0],
)
def test_channels_other_than_http(tmp_path: Path, channel: str, words: str) -> None:
    path = write(tmp_path, f"channels:\n  http: {{}}\n  {channel}:\n    token_env: X\n")
    assert_problem(only_problem(path), path, 3, f"channels.{channel}", words)


BOT = {"BOT_TOKEN": "123456:AAbcdefghij_klmnop-qr"}


def test_a_telegram_bot_is_configured_with_its_token_from_the_environment(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        """
        routes:
          echo: {profile: echo}
          other: {profile: echo, cwd: /}
        channels:
          telegram: {token_env: BOT_TOKEN, route: other, access: allowlist, groups: all}
        """,
    )
    config = load_config(path, env=BOT)
    t = config.telegram
    assert t is not None and t.route.name == "other" and t.access == "allowlist"
    assert t.groups_read_all and t.api_base == "https://api.telegram.org"
    assert t.token.get_secret_value() == BOT["BOT_TOKEN"]
    for shown in (repr(config), config.describe()):
        assert BOT["BOT_TOKEN"] not in shown
    assert "telegram: route other, access allowlist" in config.describe()
    default = load_config(
        write(tmp_path, "channels:\n  telegram: {token_env: BOT_TOKEN}\n"), env=BOT
    )
    assert default.telegram is not None and default.telegram.route.name == "echo"
    assert default.telegram.access == "pairing" and not default.telegram.groups_read_all


@pytest.mark.parametrize(
    ("section", "env", "field", "words"),
    [
        (
            "{token_env: BOT_TOKEN}",
            {},
            "token_env",
            "BOT_TOKEN, which holds the Telegram bot token, is not set",
        ),
        (
            "{token_env: BOT_TOKEN}",
            {"BOT_TOKEN": "not a token"},
            "token_env",
            "does not look like a Telegram bot token",
        ),
        ("{token_env: BOT_TOKEN, token: 1:x}", BOT, "token", "must not be written in the file"),
        ("{token_env: BOT_TOKEN, route: nope}", BOT, "route", "no route named 'nope'"),
        ("{token_env: BOT_TOKEN, access: everyone}", BOT, "access", "pairing"),
        ("{token_env: BOT_TOKEN, api_base: ftp://x}", BOT, "api_base", "http:// or https://"),
        ("{token_env: BOT_TOKEN, poll_timeout: 0}", BOT, "poll_timeout", "1"),
        ("{token_env: BOT_TOKEN, acess: open}", BOT, "acess", "access"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None,
)
def test_a_bad_telegram_section_names_the_field(
    tmp_path: Path, section: str, env: dict[str, str], field: str, words: str
) -> None:
    path = write(tmp_path, f"channels:\n  telegram: {section}\n")
    problem = only_problem(path, env)
    assert f"field 'channels.telegram.{field}'" in problem, problem
    assert words in problem, problem
    assert BOT["BOT_TOKEN"] not in problem and "not a token" not in problem


DISCORD = {"DC_TOKEN": "MTAxNTk2NzI1.GaBcDe.abcdefghijklmnopqrstuvwxyz_0123-45"}


def test_a_discord_bot_is_configured_with_its_token_from_the_environment(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        """
        users:
          - {name: ann, discord: "80351110224678912"}
        routes:
          echo: {profile: echo}
          other: {profile: echo, cwd: /}
        channels:
          discord: {token_env: DC_TOKEN, route: other, access: allowlist, threads: false}
        """,
    )
    config = load_config(path, env=DISCORD)
    dc = config.discord
    assert dc is not None and dc.route.name == "other" and dc.access == "allowlist"
    assert not dc.threads and dc.api_base == "https://discord.com/api"
    assert dc.token.get_secret_value() == DISCORD["DC_TOKEN"]
    assert config.users[0].platform_ids == {"discord": "80351110224678912"}
    for shown in (repr(config), config.describe()):
        assert DISCORD["DC_TOKEN"] not in shown
    assert "discord: route other, access allowlist, answered in the channel" in config.describe()
    default = load_config(
        write(
            tmp_path,
            "channels:\n  discord: {token_env: DC_TOKEN, api_base: http://127.0.0.1:9/api/}\n",
        ),
        env=DISCORD,
    )
    assert default.discord is not None and default.discord.route.name == "echo"
    assert default.discord.access == "pairing" and default.discord.threads
    assert default.discord.api_base == "http://127.0.0.1:9/api"


@pytest.mark.parametrize(
    ("section", "env", "field", "words"),
    [
        (
            "{token_env: DC_TOKEN}",
            {},
            "token_env",
            "DC_TOKEN, which holds the Discord bot token, is not set",
        ),
        ("{token_env: DC_TOKEN}", {"DC_TOKEN": ""}, "token_env", "is empty"),
        (
            "{token_env: DC_TOKEN}",
            {"DC_TOKEN": "not a token"},
            "token_env",
            "does not look like a Discord bot token",
        ),
        ("{token_env: DC_TOKEN}", {"DC_TOKEN": "Bot a.b.c"}, "token_env", "without the prefix"),
        ("{token_env: 12abc}", DISCORD, "token_env", "the name of an environment variable"),
        (
            "{token_env: DC_TOKEN, token: a.b.c}",
            DISCORD,
            "token",
            "must not be written in the file",
        ),
        ("{token_env: DC_TOKEN, route: nope}", DISCORD, "route", "no route named 'nope'"),
        ("{token_env: DC_TOKEN, access: everyone}", DISCORD, "access", "pairing"),
        ("{token_env: DC_TOKEN, api_base: ftp://x}", DISCORD, "api_base", "http:// or https://"),
        (
            "{token_env: DC_TOKEN, api_base: 'https://discord.com/api/v10'}",
            DISCORD,
            "api_base",
            "adds /v10",
        ),
        ("{token_env: DC_TOKEN, api_base: 7}", DISCORD, "api_base", "quote it"),
        ("{token_env: DC_TOKEN, threads: 'yes'}", DISCORD, "threads", "must be true or false"),
        ("{token_env: DC_TOKEN, thread: false}", DISCORD, "thread", "threads"),
        ("[DC_TOKEN]", DISCORD, "", "must be a mapping"),
        ("{}", DISCORD, "token_env", "required"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None,
)
def test_a_bad_discord_section_names_the_field(
    tmp_path: Path, section: str, env: dict[str, str], field: str, words: str
) -> None:
    path = write(tmp_path, f"channels:\n  discord: {section}\n")
    problem = only_problem(path, env)
    name = "channels.discord" + (f".{field}" if field else "")
    assert f"field '{name}'" in problem, problem
    assert words in problem, problem
    assert DISCORD["DC_TOKEN"] not in problem and "not a token" not in problem


HOOK = {**BOT, "HOOK_SECRET": "hook-secret_0123456789abcdef"}
HOOK_URL = "https://bot.example.com/telegram/webhook"


def test_a_telegram_webhook_is_configured_with_its_secret_from_the_environment(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        f"""
        channels:
          telegram:
            token_env: BOT_TOKEN
            webhook:
              url: {HOOK_URL}
              secret_env: HOOK_SECRET
        """,
    )
    config = load_config(path, env=HOOK)
    assert config.telegram is not None and config.telegram.webhook is not None
    hook = config.telegram.webhook
    assert hook.url == HOOK_URL and hook.path == "/telegram/webhook"
    assert hook.secret.get_secret_value() == HOOK["HOOK_SECRET"] and hook.max_connections == 1
    for shown in (repr(config), config.describe()):
        assert HOOK["HOOK_SECRET"] not in shown
    assert f"updates by webhook to {HOOK_URL}" in config.describe()
    polling = load_config(
        write(tmp_path, "channels:\n  telegram: {token_env: BOT_TOKEN}\n"), env=BOT
    )
    assert polling.telegram is not None and polling.telegram.webhook is None
    assert "long polling" in polling.describe()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8787/telegram/hook",
        "http://localhost:8081/hook/",
        "http://[::1]:8787/a.b~c/d-e_f",
        "https://bot.example.com:8443/hook",
    ],
)
def test_webhook_urls_that_can_be_served(tmp_path: Path, url: str) -> None:
    section = f"{{token_env: BOT_TOKEN, webhook: {{url: '{url}', secret_env: HOOK_SECRET}}}}"
    config = load_config(write(tmp_path, f"channels:\n  telegram: {section}\n"), env=HOOK)
    assert config.telegram is not None and config.telegram.webhook is not None


@pytest.mark.parametrize(
    ("webhook", "env", "field", "words"),
    [
        (f"{{url: {HOOK_URL}}}", HOOK, "secret_env", "is required but missing"),
        (f"{{url: {HOOK_URL}, secret_env: HOOK_SECRET}}", BOT, "secret_env",
         "HOOK_SECRET, which holds the webhook's secret, is not set"),
        (f"{{url: {HOOK_URL}, secret_env: HOOK_SECRET}}", {**BOT, "HOOK_SECRET": "short-1"},
         "secret_env", "shorter than 16 characters"),
        (f"{{url: {HOOK_URL}, secret_env: HOOK_SECRET}}",
         {**BOT, "HOOK_SECRET": "has spaces and: colons 0123456789"},
         "secret_env", "a character Telegram does not allow"),
        (f"{{url: {HOOK_URL}, secret_env: HOOK_SECRET}}", {**BOT, "HOOK_SECRET": "x" * 257},
         "secret_env", "longer than the 256 characters"),
        (f"{{url: {HOOK_URL}, secret_env: HOOK_SECRET, secret: s3cret}}", HOOK, "secret",
         "must not be written in the file"),
        ("{url: http://bot.example.com/hook, secret_env: HOOK_SECRET}", HOOK, "url",
         "must be https://"),
        ("{url: http://10.0.0.5:8787/hook, secret_env: HOOK_SECRET}", HOOK, "url",
         "must be https://"),
        ("{url: bot.example.com/hook, secret_env: HOOK_SECRET}", HOOK, "url",
         "must be an https:// URL with a host"),
        ("{url: 'https://bot.example.com/a hook', secret_env: HOOK_SECRET}", HOOK, "url",
         "without spaces"),
        ("{url: 'https://[::1/hook', secret_env: HOOK_SECRET}", HOOK, "url",
         "is not a valid URL"),
        ("{url: 'https://bot.example.com', secret_env: HOOK_SECRET}", HOOK, "url",
         "needs a path"),
        ("{url: 'https://bot.example.com/v1/hook', secret_env: HOOK_SECRET}", HOOK, "url",
         "which the bridge's HTTP API serves itself"),
        ("{url: 'https://bot.example.com/{x}', secret_env: HOOK_SECRET}", HOOK, "url",
         "use letters, digits"),
        ("{url: 'https://bot.example.com/hook?k=1', secret_env: HOOK_SECRET}", HOOK, "url",
         "?query"),
        ("{url: 'https://me:pw@bot.example.com/hook', secret_env: HOOK_SECRET}", HOOK, "url",
         "user name or password"),
        ("{url: 'https://bot.example.com:8787/hook', secret_env: HOOK_SECRET}", HOOK, "url",
         "only on ports 443, 80, 88, 8443"),
        (f"{{url: {HOOK_URL}, secret_env: HOOK_SECRET, max_connections: 0}}", HOOK,
         "max_connections", "1"),
        (f"{{url: {HOOK_URL}, secret_env: HOOK_SECRET, sekret_env: X}}", HOOK, "sekret_env",
         "secret_env"),
        ("[https://bot.example.com/hook]", HOOK, "webhook", "must be"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 and "{" not in v else None,
)  # fmt: skip
def test_a_bad_telegram_webhook_names_the_field(
    tmp_path: Path, webhook: str, env: dict[str, str], field: str, words: str
) -> None:
    section = f"{{token_env: BOT_TOKEN, webhook: {webhook}}}"
    path = write(tmp_path, f"channels:\n  telegram: {section}\n")
    problem = only_problem(path, env)
    name = "channels.telegram.webhook" + ("" if field == "webhook" else f".{field}")
    assert_problem(problem, path, 2, name, words)
    assert "s3cret" not in problem and "0123456789abcdef" not in problem
    assert "colons" not in problem and BOT["BOT_TOKEN"] not in problem


def test_a_webhook_problem_is_on_its_own_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        channels:
          telegram:
            token_env: BOT_TOKEN
            webhook:
              url: http://bot.example.com/hook
              max_connections: 2
              secret_env: HOOK_SECRET
        """,
    )
    problems = error_of(path, BOT).problems
    assert len(problems) == 2, problems
    assert_problem(problems[0], path, 5, "channels.telegram.webhook.url", "must be https://")
    assert_problem(problems[1], path, 7, "channels.telegram.webhook.secret_env", "is not set")


def test_a_webhook_needs_the_http_server(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        channels:
          http: {{enabled: false}}
          telegram:
            token_env: BOT_TOKEN
            webhook: {{url: {HOOK_URL}, secret_env: HOOK_SECRET}}
        """,
    )
    problem = only_problem(path, HOOK)
    assert_problem(
        problem, path, 5, "channels.telegram.webhook", "channels.http.enabled: false turns it off"
    )


# --- the file itself -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("- listen: 8787\n", "a mapping of fields (like `listen: 127.0.0.1:8787`), not a list"),
        ("just text\n", "not a single value"),
    ],
    ids=["a-list", "a-scalar"],
)  # fmt: skip
def test_the_top_must_be_a_mapping(tmp_path: Path, text: str, words: str) -> None:
    path = write(tmp_path, text)
    problem = only_problem(path)
    assert problem.startswith(f"{path}:1: ")
    assert words in problem


def test_invalid_yaml_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "listen: 8787\nusers: [\n")
    error = error_of(path)
    (problem,) = error.problems
    assert problem.startswith(f"{path}:3:1: invalid YAML: ")
    assert "fix the YAML at that line and column" in error.hint


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_bytes(b"listen: 8787\nroutes: {caf\xe9: {profile: echo}}\n")
    assert only_problem(path) == f"{path}:2: not UTF-8 text (byte 0xe9); save it as UTF-8"


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    error = error_of(path)
    assert error.message == f"config file not found: {path}"
    assert "without a config file" in error.hint


def test_a_folder(tmp_path: Path) -> None:
    error = error_of(tmp_path)
    assert error.message == f"config {tmp_path} is a folder, not a file"
    assert str(tmp_path / "bridge.yaml") in error.hint


def test_every_problem_is_reported_at_once_by_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        listen: localhost
        stor: sqlite
        users:
          - {name: alice, token_env: MISSING}
        routes:
          echo: {profile: ecoh}
        turns: {max_running: 0}
        channels: {telegram: {}}
        """,
    )
    error = error_of(path)
    lines = [int(p.split(":")[1]) for p in error.problems]
    assert lines == [1, 2, 4, 6, 7, 8]
    assert error.message == f"invalid config {path}: 6 problems"
    assert error.detail.splitlines()[1:] == [f"  {p}" for p in error.problems]
    assert "fix each line named above" in error.hint


def test_config_errors_are_server_errors_with_exit_code_2(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "listen: 0\n"))
    assert isinstance(error, ServerError) and isinstance(error, BridgeError)
    assert error.exit_code == 2
    assert error.path == str(tmp_path / "bridge.yaml")


@pytest.mark.parametrize(
    "text",
    [
        "listen: {a: 1}\n",
        "users: [[1, 2], {name: [x]}]\n",
        "routes: {echo: {profile: [echo]}}\n",
        "? [a, b]\n: 1\n",
        "a: &x [*x]\n",
        "data_dir: [1]\nstore: {}\nchannels: [http]\nturns: null\n",
        "1: 2\ntrue: false\n",
        "routes: {1: {profile: echo}}\n",
        "users: [{name: a, <<: {admn: true}}]\n",
    ],
    ids=lambda v: v.split("\n")[0],
)
def test_odd_yaml_gives_a_config_error_not_a_traceback(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    error = error_of(path)
    assert error.problems and all(p.startswith(f"{path}:") for p in error.problems)
