"""The shape of ``bridge.yaml``: the models of its entries and the checks of single values.

:mod:`bridge.server.config` reads the file and reports problems with their
lines; this module only says what a valid entry is. The models are pydantic
with ``extra="forbid"``, so a misspelt key is an error rather than a setting
quietly left at its default, and they reuse the profile's strict number and
boolean types (:mod:`bridge.turn.profile`): YAML's ``"5"`` is not 5 and
``yes`` in quotes is not true.

Nothing here reads the environment or the disk: tokens, profiles and folders
are looked up by the loader, which knows the file's folder and lines.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from bridge.conversations.dispatcher import DEFAULT_MAX_RUNNING, DEFAULT_SHUTDOWN_GRACE
from bridge.conversations.policies import BusyPolicy, Caps
from bridge.store.rules import DEFAULT_KEEP_TURNS
from bridge.turn.profile import Count, Flag, OptionalCount, OptionalSeconds, Seconds
from bridge.turn.profile_files import ENV_NAME_RE
from bridge.turn.profile_yaml import show_value

__all__ = [
    "CHANNELS",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "LATER_CHANNELS",
    "MIN_TOKEN_CHARS",
    "NAME_RE",
    "PLATFORMS",
    "SECRET_KEYS",
    "STORES",
    "TOP_FIELDS",
    "DiscordChannel",
    "HttpChannel",
    "Listen",
    "RouteEntry",
    "TelegramChannel",
    "TelegramWebhookEntry",
    "TurnLimits",
    "UserEntry",
    "parse_listen",
    "parse_store",
]

#: Where ``agentproc serve`` listens without a ``listen`` key: this machine only.
DEFAULT_HOST = "127.0.0.1"
#: 8787: free on most machines, easy to type, and not 8080/8000 that dev servers take.
DEFAULT_PORT = 8787

#: The keys of the top level, in the order the file is described.
TOP_FIELDS = ("listen", "data_dir", "store", "users", "routes", "turns", "channels", "bot")

#: What a user or route name may be: safe in a URL path, a log line and a file name.
NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")

#: The platforms a user entry can name an id on (the channels that will use them).
PLATFORMS = ("telegram", "slack", "discord")

#: Channels this version serves, and the ones a later version adds.
CHANNELS = ("http", "telegram", "slack", "discord")
LATER_CHANNELS: tuple[str, ...] = ()

#: ``sqlite``: ``sessions.db`` in the data folder; ``memory``: nothing is kept.
STORES = ("sqlite", "memory")

#: Keys that would hold a secret in the file itself; each gets its own error
#: saying to move the secret to the environment.
SECRET_KEYS = ("token", "bearer_token", "api_token", "api_key", "secret", "password")

#: A bearer token shorter than this is guessable; 16 characters of hex are 64
#: bits, and ``openssl rand -hex 32`` gives 64 characters.
MIN_TOKEN_CHARS = 16

_HOSTNAME_RE = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")


# --- single values -------------------------------------------------------------------------


def _name(kind: str) -> AfterValidator:
    def check(value: str) -> str:
        if not NAME_RE.fullmatch(value):
            raise ValueError(
                f"{show_value(value)} is not a valid {kind} name: use 1 to 64 letters, "
                "digits, '.', '_' or '-'"
            )
        return value

    return AfterValidator(check)


def _text(what: str) -> BeforeValidator:
    """Refuse what YAML read as something other than text (with how to quote
    it), empty text and NUL."""

    def check(value: object) -> object:
        if isinstance(value, bool | int | float):
            raise ValueError(f"must be {what} (got {show_value(value)}); quote it to make it text")
        if isinstance(value, str):
            if not value.strip():
                raise ValueError(f"must be {what}, not empty")
            if "\0" in value:
                raise ValueError("must not contain a NUL character")
        return value

    return BeforeValidator(check)


def _env_name(value: object) -> object:
    """``token_env`` names a variable; it never shows the value, which might be the
    token itself written in the wrong place."""
    if value is None:
        return value
    if not isinstance(value, str) or not ENV_NAME_RE.fullmatch(value):
        raise ValueError(
            "must be the name of an environment variable (letters, digits and '_', not "
            "starting with a digit), like ALICE_TOKEN; the variable holds the token, the "
            "file only names it"
        )
    return value


def _platform_id(value: object) -> object:
    """A platform id as text: Telegram's are numbers, Slack's and Discord's text."""
    if value is None:
        return value
    if isinstance(value, bool | float):
        raise ValueError(
            f"must be a user id, a whole number or text (got {show_value(value)}); "
            'quote it to be sure it is read as written, like "80351110224678912"'
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and (not value.strip() or value != value.strip() or "\0" in value):
        raise ValueError("must be a user id, without blanks around it")
    return value


Text = Annotated[str, _text("text"), Field(strict=True)]
PathText = Annotated[str, _text("a path"), Field(strict=True)]
PlatformId = Annotated[str | None, BeforeValidator(_platform_id)]

#: The dispatcher's own defaults for what a config leaves out.
_CAPS = Caps()


class UserEntry(BaseModel):
    """One person who may use the bridge: their HTTP token (by variable) and the
    ids that are them on each platform."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[Text, _name("user")]
    token_env: Annotated[str | None, BeforeValidator(_env_name)] = None
    admin: Flag = False
    telegram: PlatformId = None
    slack: PlatformId = None
    discord: PlatformId = None

    def platform_ids(self) -> dict[str, str]:
        ids = {"telegram": self.telegram, "slack": self.slack, "discord": self.discord}
        return {platform: value for platform, value in ids.items() if value is not None}


class RouteEntry(BaseModel):
    """One agent the bridge offers: a profile, the folder it runs in, a title."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: PathText
    cwd: PathText | None = None
    title: Text | None = None


class TurnLimits(BaseModel):
    """The dispatcher's limits (see :class:`bridge.conversations.dispatcher.Dispatcher`):
    how many turns run at once and what happens to messages that arrive meanwhile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_running: Count = Field(default=DEFAULT_MAX_RUNNING, ge=1)
    busy_policy: BusyPolicy = _CAPS.policy
    queue_limit: Count = Field(default=_CAPS.queue_limit, ge=1)
    max_per_user: OptionalCount = Field(default=None, ge=1)
    max_waiting: OptionalCount = Field(default=None, ge=1)
    session_idle_secs: OptionalSeconds = Field(default=None, gt=0, allow_inf_nan=False)
    shutdown_grace_secs: Seconds = Field(default=DEFAULT_SHUTDOWN_GRACE, ge=0, allow_inf_nan=False)
    keep_turns: Count = Field(default=DEFAULT_KEEP_TURNS, ge=1)


class HttpChannel(BaseModel):
    """The HTTP API and the web chat page."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: Flag = True


class TelegramWebhookEntry(BaseModel):
    """Where Telegram sends the bot's updates instead of being polled: the
    public URL, the variable holding the secret Telegram sends with each, and
    how many updates it may send at once. The URL itself is checked by
    :mod:`bridge.server.config_webhook`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: Text
    secret_env: Annotated[str, BeforeValidator(_env_name)]
    max_connections: Count = Field(default=1, ge=1, le=100)


class TelegramChannel(BaseModel):
    """A Telegram bot: its token (by variable), the Bot API server, the route
    it talks to, who it answers, whether it reads whole groups, and how it
    receives (long polling, or a webhook)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token_env: Annotated[str, BeforeValidator(_env_name)]
    api_base: Text = "https://api.telegram.org"
    route: Text | None = None
    access: Literal["pairing", "allowlist", "open", "disabled"] = "pairing"
    groups: Literal["mention", "all"] = "mention"
    poll_timeout: Count = Field(default=30, ge=1, le=50)
    #: A :class:`TelegramWebhookEntry`, validated on its own so that its
    #: problems are told with its own fields.
    webhook: object = None


class DiscordChannel(BaseModel):
    """A Discord bot: its token (by variable), the API it talks to, the
    route, who it answers, and whether a mention in a text channel starts a
    thread (``threads: true``) or is answered in the channel itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token_env: Annotated[str, BeforeValidator(_env_name)]
    api_base: Text = "https://discord.com/api"
    route: Text | None = None
    access: Literal["pairing", "allowlist", "open", "disabled"] = "pairing"
    threads: Flag = True


# --- listen --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listen:
    """The address the HTTP API listens on."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT

    @property
    def is_loopback(self) -> bool:
        """True when only this machine can connect: 127.0.0.0/8, ::1 or localhost."""
        if self.host.lower().rstrip(".") == "localhost":
            return True
        try:
            address = ipaddress.ip_address(self.host)
        except ValueError:
            return False  # a name that may resolve to anything
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return address.ipv4_mapped.is_loopback
        return address.is_loopback

    @property
    def url(self) -> str:
        return f"http://{self}"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_listen(value: object) -> Listen:
    """``host:port``, ``[v6]:port`` or a bare port; ValueError saying what to write."""
    example = f"like {DEFAULT_HOST}:{DEFAULT_PORT}, [::1]:{DEFAULT_PORT} or {DEFAULT_PORT}"
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"must be host:port, {example} (got {show_value(value) or 'a list'})")
    if isinstance(value, int):
        return Listen(DEFAULT_HOST, _port(str(value)))
    text = value.strip()
    if _digits(text):
        return Listen(DEFAULT_HOST, _port(text))
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ValueError(f"must be [IPv6 address]:port, {example} (got {show_value(text)})")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{show_value(host)} is not an IPv6 address") from None
        return Listen(host, _port(rest[1:]))
    host, colon, port = text.rpartition(":")
    if not colon:
        raise ValueError(f"needs a port: write {text}:{DEFAULT_PORT}, {example}")
    if ":" in host:
        raise ValueError(f"put an IPv6 address in brackets, like [::1]:{DEFAULT_PORT}")
    if not host:
        raise ValueError(
            f"needs a host: 0.0.0.0:{port} listens on every interface, "
            f"{DEFAULT_HOST}:{port} on this machine only"
        )
    if not _HOSTNAME_RE.fullmatch(host) or len(host) > 253:
        raise ValueError(f"{show_value(host)} is not an IP address or host name")
    return Listen(host, _port(port))


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _port(text: str) -> int:
    if not _digits(text.lstrip("-")):
        raise ValueError(f"the port must be a number from 1 to 65535 (got {show_value(text)})")
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError(f"the port must be from 1 to 65535 (got {port})")
    return port


# --- store ---------------------------------------------------------------------------------


def parse_store(value: object) -> Literal["sqlite", "memory"]:
    """``sqlite`` or ``memory``; ValueError otherwise. A URL is never shown in
    the message: it may hold a password."""
    if value == "sqlite" or value == "memory":
        return value
    if isinstance(value, str) and value.lower().startswith(("postgresql:", "postgres:")):
        raise ValueError(
            "PostgreSQL is not supported yet by this version of agentproc; "
            "use `store: sqlite` (sessions.db in the data folder)"
        )
    shown = "a URL" if isinstance(value, str) and "://" in value else show_value(value)
    raise ValueError(
        f"must be sqlite (sessions.db in the data folder) or memory (nothing kept), "
        f"not {shown or 'a list or mapping'}"
    )
