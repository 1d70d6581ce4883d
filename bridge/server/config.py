"""``bridge.yaml``: the config of ``agentproc serve``, read and checked.

The file is written by hand, like a profile, and is read the same way
(:mod:`bridge.turn.profile_yaml`): YAML with the line of every key, pydantic
models that refuse unknown keys (:mod:`bridge.server.config_models`), and
every problem found reported at once as ``FILE:LINE: field 'x': what is wrong``
in one :class:`~bridge.server.errors.ConfigError`. Nothing else escapes
:func:`load_config`: YAML, pydantic and OS errors are converted here.

Everything that can be looked up at start-up is: each user's token is read
from the environment variable the file names (secrets never live in the
file), each route's profile is loaded and its folder checked. A server that
starts from a :class:`ServerConfig` does not discover a typo at its first
request. Whether to refuse a config is the server's decision where it is about
exposure (:attr:`ServerConfig.exposes_api_without_users`); the loader only
says what the file means.

Tokens are held as :class:`pydantic.SecretStr`, so they show as ``**********``
in reprs, and no message names one: a problem with a token names its user
and its variable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from bridge.channels.bot import Bot
from bridge.channels.telegram_webhook import Webhook
from bridge.store.records import Route
from bridge.turn.errors import ProfileError
from bridge.turn.profile import Profile
from bridge.turn.profile_yaml import SCHEMA_HINT, Lines, parse_yaml

from .bot_loading import BotLoadError, load_bot
from .config_check import Check
from .config_models import DEFAULT_HOST, DEFAULT_PORT, Listen, TurnLimits
from .config_slack import SlackConfig
from .errors import ConfigError

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MAX_CONFIG_BYTES",
    "DiscordConfig",
    "Listen",
    "RouteConfig",
    "ServerConfig",
    "TurnLimits",
    "User",
    "load_config",
]

#: A config is a few dozen lines; a bigger file is almost surely the wrong one,
#: and refusing it keeps a mistake from reading a huge file into memory.
MAX_CONFIG_BYTES = 1024 * 1024

#: Named in messages when there is no config file.
NO_FILE = "(no config file)"


@dataclass(frozen=True, slots=True)
class User:
    """A person who may use the bridge.

    ``token`` is their HTTP bearer token, read from the variable the file
    names (None: they cannot use HTTP); ``platform_ids`` maps a platform
    (``telegram``, ``slack``, ``discord``) to the id that is them there.
    """

    name: str
    token: SecretStr | None = None
    admin: bool = False
    platform_ids: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """One agent the bridge offers: its name, the store's :class:`Route` for it,
    the loaded profile (its ``cwd`` set to where the route runs it) and a title
    for people."""

    name: str
    route: Route
    profile: Profile = field(repr=False, compare=False)
    title: str = ""


@dataclass(frozen=True, slots=True)
class TelegramConfig:
    """The Telegram channel: the bot's token (from the variable the file
    names), the Bot API server, the route it talks to, who it answers
    (``access``), whether it reads every message of a group, how long one
    ``getUpdates`` waits, and the webhook Telegram sends updates to instead
    (None: long polling)."""

    token: SecretStr = field(repr=False)
    api_base: str
    route: RouteConfig
    access: Literal["pairing", "allowlist", "open", "disabled"] = "pairing"
    groups_read_all: bool = False
    poll_timeout: int = 30
    webhook: Webhook | None = None


@dataclass(frozen=True, slots=True)
class DiscordConfig:
    """The Discord channel: the bot's token (from the variable the file
    names), the API base (REST at ``api_base/v10``; the gateway's URL comes
    from ``GET /gateway/bot``), the route, who it answers, and whether a
    mention in a text channel starts a thread (or is answered in place)."""

    token: SecretStr = field(repr=False)
    api_base: str
    route: RouteConfig
    access: Literal["pairing", "allowlist", "open", "disabled"] = "pairing"
    threads: bool = True


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What ``agentproc serve`` runs, as read from ``bridge.yaml``.

    ``path`` is the config file (None: no file, all defaults); ``data_dir``
    where ``sessions.db`` lives (None: the default data folder); ``routes``
    has at least one entry, and the first is the default.
    """

    path: Path | None
    listen: Listen = field(default_factory=Listen)
    data_dir: Path | None = None
    store: Literal["sqlite", "memory"] = "sqlite"
    users: tuple[User, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    turns: TurnLimits = field(default_factory=TurnLimits)
    http_enabled: bool = True
    telegram: TelegramConfig | None = None
    slack: SlackConfig | None = None
    discord: DiscordConfig | None = None
    #: The bot whose handlers the chat channels ask before the agent
    #: (``bot: mybot.py:bot``), and how the file named it.
    bot: Bot | None = field(default=None, repr=False, compare=False)
    bot_spec: str = ""

    @property
    def host(self) -> str:
        return self.listen.host

    @property
    def port(self) -> int:
        return self.listen.port

    @property
    def is_loopback(self) -> bool:
        """True when only this machine can reach the HTTP API."""
        return self.listen.is_loopback

    @property
    def default_route(self) -> RouteConfig:
        return self.routes[0]

    @property
    def exposes_api_without_users(self) -> bool:
        """True when the HTTP API would be reachable beyond this machine with no
        token to check: the server refuses to start such a config."""
        return (
            self.http_enabled
            and not self.is_loopback
            and not any(user.token is not None for user in self.users)
        )

    def user_by_token(self, token: str) -> User | None:
        """The user whose token is ``token``, or None.

        Every user's token is compared, in constant time and without stopping at
        a match, so the time taken says nothing about which token was close.
        The comparison is of SHA-256 digests, which also hides the length.
        """
        given = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        found: User | None = None
        for user in self.users:
            if user.token is None:
                continue
            expected = hashlib.sha256(user.token.get_secret_value().encode("utf-8")).digest()
            if hmac.compare_digest(given, expected) and found is None:
                found = user
        return found if token else None

    def route_named(self, name: str) -> RouteConfig | None:
        """The route called ``name``, or None."""
        for route in self.routes:
            if route.name == name:
                return route
        return None

    def with_overrides(
        self,
        *,
        host: str | None = None,
        port: int | None = None,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> ServerConfig:
        """This config with the command line's ``--host``, ``--port`` and
        ``--data-dir`` in place of the file's (None: keep the file's)."""
        listen = Listen(
            self.listen.host if host is None else host,
            self.listen.port if port is None else port,
        )
        folder = self.data_dir if data_dir is None else Path(data_dir).expanduser().absolute()
        return dataclasses.replace(self, listen=listen, data_dir=folder)

    def describe(self) -> str:
        """A few lines for the start-up banner: where it listens, the store, the
        routes and who may use it (names only)."""
        from bridge.store.sqlite_files import STORE_FILENAME, default_data_dir

        if self.http_enabled:
            reach = "this machine only" if self.is_loopback else "reachable from other machines"
            out = [f"HTTP API and web chat: {self.listen.url} ({reach})"]
        else:
            out = ["HTTP API: off (channels.http.enabled is false)"]
        if self.store == "memory":
            out.append("store: memory (nothing is kept when the bridge stops)")
        else:
            folder = self.data_dir if self.data_dir is not None else default_data_dir()
            out.append(f"store: sqlite, {folder / STORE_FILENAME}")
        for index, rc in enumerate(self.routes):
            default = " (default)" if index == 0 else ""
            title = f" {rc.title!r}," if rc.title != rc.name else ""
            out.append(f"route {rc.name}{default}:{title} {rc.route.profile} in {rc.route.cwd}")
        if self.bot is not None:
            own = ", ".join(f"/{name}" for name in self.bot.commands) or "no commands"
            out.append(f"bot: {self.bot_spec} ({own}); what its handlers leave goes to the agent")
        if self.telegram is not None:
            t = self.telegram
            out.append(
                f"telegram: route {t.route.name}, access {t.access}, groups "
                f"{'read whole' if t.groups_read_all else 'only when mentioned'}, "
                f"Bot API {t.api_base}, "
                + (f"updates by webhook to {t.webhook.url}" if t.webhook else "long polling")
            )
        if self.slack is not None:
            sl = self.slack
            how = f"events by HTTP to {sl.events_path}" if sl.by_events_api else "Socket Mode"
            out.append(
                f"slack: route {sl.route.name}, access {sl.access}, Web API {sl.api_base}, {how}"
            )
        if self.discord is not None:
            dc = self.discord
            out.append(
                f"discord: route {dc.route.name}, access {dc.access}, "
                + ("a mention starts a thread" if dc.threads else "answered in the channel")
                + f", API {dc.api_base}"
            )
        if self.users:
            names = [f"{u.name} (admin)" if u.admin else u.name for u in self.users]
            out.append(f"users: {', '.join(names)}")
        else:
            out.append("users: none (no tokens: anyone who can connect may use the API)")
        return "\n".join(out)


def load_config(
    path: str | os.PathLike[str] | None, *, env: Mapping[str, str] | None = None
) -> ServerConfig:
    """Read and check the config file ``path`` (None: the defaults, as if an
    empty file in the current directory).

    ``env`` is where ``token_env`` variables are read (default ``os.environ``).
    Raises :class:`~bridge.server.errors.ConfigError` listing every problem
    found, each as ``FILE:LINE: field 'x': ...``; nothing else.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    if path is None:
        return _build({}, Lines(), NO_FILE, None, environ)
    file = Path(path)
    label = os.fspath(path)
    text = _read(file, label)
    try:
        data, lines = parse_yaml(
            text, label, None, depth=4, empty_ok=True, example=f"listen: {Listen()}"
        )
    except ProfileError as exc:  # parse_yaml speaks for profiles; this is a config
        raise ConfigError(
            _headline(label, len(exc.problems)),
            problems=exc.problems,
            path=label,
            hint=Check.HINT if exc.hint == SCHEMA_HINT else exc.hint,
        ) from exc
    return _build(data, lines, label, file, environ)


def _read(file: Path, label: str) -> str:
    """The text of the config file; ConfigError when it cannot be had."""
    try:
        with file.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"config file not found: {label}",
            path=label,
            hint="check the path; without a config file, `agentproc serve` serves the "
            f"bundled echo profile on {Listen()}",
        ) from exc
    except IsADirectoryError as exc:
        raise ConfigError(
            f"config {label} is a folder, not a file",
            path=label,
            hint=f"name the file inside it, like {file / 'bridge.yaml'}",
        ) from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read config {label}: {getattr(exc, 'strerror', None) or exc}",
            path=label,
            hint="check that the file exists and is readable",
        ) from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"config {label} is larger than {MAX_CONFIG_BYTES // 1024} KiB; "
            "is this the right file?",
            path=label,
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise invalid(
            label, [(line, f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save it as UTF-8")]
        ) from exc


def _headline(label: str, count: int) -> str:
    return f"invalid config {label}: {count} problem{'s' if count != 1 else ''}"


def invalid(label: str, problems: list[tuple[int, str]]) -> ConfigError:
    """The error for the config ``label``, listing ``problems`` (``(line, text)``) by line."""
    problems = sorted(problems, key=lambda p: p[0])
    return ConfigError(
        _headline(label, len(problems)),
        problems=tuple(f"{label}:{line}: {text}" for line, text in problems),
        path=label,
        hint=Check.HINT,
    )


def _build(
    data: dict[Any, Any],
    lines: Lines,
    label: str,
    file: Path | None,
    env: Mapping[str, str],
) -> ServerConfig:
    """Check every section of ``data`` and assemble the config, or raise with
    every problem found."""
    source = file.resolve() if file is not None else None
    folder = source.parent if source is not None else Path.cwd()
    check = Check(lines, folder, env)
    check.top_level_keys(data)
    listen = check.listen(data.get("listen"))
    data_dir = check.data_dir(data.get("data_dir"))
    store = check.store(data.get("store"))
    users = tuple(
        User(entry.name, token, entry.admin, entry.platform_ids())
        for entry, token in check.users(data.get("users"))
    )
    routes = tuple(
        RouteConfig(name, route, profile, title)
        for name, route, profile, title in check.routes(data.get("routes"))
    )
    turns = check.turns(data.get("turns"))
    http_enabled = check.channels(data.get("channels"))
    telegram = None
    if check.telegram is not None and routes:
        entry, token, webhook = check.telegram
        route = routes[0] if entry.route is None else _named(routes, entry.route)
        if route is None:
            check.add(
                ("channels", "telegram", "route"),
                f"no route named {entry.route!r}; the routes are "
                + ", ".join(r.name for r in routes),
            )
        else:
            telegram = TelegramConfig(
                token,
                entry.api_base.rstrip("/"),
                route,
                entry.access,
                entry.groups == "all",
                entry.poll_timeout,
                webhook,
            )
    slack = _slack(check, routes)
    discord = None
    if check.discord is not None and routes:
        dentry, dtoken = check.discord
        droute = routes[0] if dentry.route is None else _named(routes, dentry.route)
        if droute is None:
            check.add(
                ("channels", "discord", "route"),
                f"no route named {dentry.route!r}; the routes are "
                + ", ".join(r.name for r in routes),
            )
        else:
            base = dentry.api_base.rstrip("/")
            discord = DiscordConfig(dtoken, base, droute, dentry.access, dentry.threads)
    chat = check.telegram is not None or check.slack is not None or check.discord is not None
    bot = _bot(check, data.get("bot"), folder, chat=chat)
    if check.problems or not routes:
        raise invalid(label, check.problems or [(lines.top, "no route could be set up")])
    return ServerConfig(
        path=source,
        listen=listen,
        data_dir=data_dir,
        store=store,
        users=users,
        routes=routes,
        turns=turns,
        http_enabled=http_enabled,
        telegram=telegram,
        slack=slack,
        discord=discord,
        bot=bot,
        bot_spec=str(data["bot"]) if bot is not None else "",
    )


def _bot(check: Check, value: object, folder: Path, *, chat: bool) -> Bot | None:
    """The bot ``bot:`` names, loaded (its file runs now, not at the first message)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        check.add(("bot",), "must be FILE.py:NAME or module:NAME, like `bot: mybot.py:bot`")
        return None
    if not chat:
        check.add(
            ("bot",),
            "a bot's handlers run on chat channels, and none is configured; "
            "add one under `channels` (like telegram) or remove `bot`",
        )
        return None
    try:
        return load_bot(value, folder)
    except BotLoadError as exc:
        check.add(("bot",), str(exc))
        return None


def _slack(check: Check, routes: tuple[RouteConfig, ...]) -> SlackConfig | None:
    if check.slack is None or not routes:
        return None
    entry, bot_token, app_token, secret = check.slack
    route = routes[0] if entry.route is None else _named(routes, entry.route)
    if route is None:
        names = ", ".join(r.name for r in routes)
        check.add(
            ("channels", "slack", "route"),
            f"no route named {entry.route!r}; the routes are {names}",
        )
        return None
    api_base = entry.api_base if entry.api_base.endswith("/") else entry.api_base + "/"
    return SlackConfig(
        bot_token, api_base, route, entry.access, app_token, secret, entry.events_path
    )


def _named(routes: tuple[RouteConfig, ...], name: str) -> RouteConfig | None:
    return next((r for r in routes if r.name == name), None)
