"""Checking the sections of ``bridge.yaml`` against its lines, the environment and the disk.

:class:`Check` walks the parsed file one section at a time and collects every
problem as ``(line, "field 'x': what is wrong")`` instead of stopping at the
first, so one run of ``agentproc serve`` shows all there is to fix. Each
entry (a user, a route) is validated on its own, so a bad user does not hide a
route whose profile fails to load. :mod:`bridge.server.config` turns what it
returns into the config, or its problems into one error; finding a route's
profile and folder is :mod:`bridge.server.config_routes`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError

from bridge.channels.telegram_webhook import Webhook
from bridge.store.records import Route
from bridge.turn.profile import Profile
from bridge.turn.profile_yaml import Lines, Loc, did_you_mean, pydantic_problem

from .config_discord import check_discord
from .config_models import (
    CHANNELS,
    LATER_CHANNELS,
    MIN_TOKEN_CHARS,
    NAME_RE,
    SECRET_KEYS,
    TOP_FIELDS,
    DiscordChannel,
    HttpChannel,
    Listen,
    RouteEntry,
    TelegramChannel,
    TurnLimits,
    UserEntry,
    parse_listen,
    parse_store,
)
from .config_routes import (
    expand_path,
    find_profile,
    load_route_profile,
    path_is,
    route_folder,
    settle_route,
)
from .config_slack import EVENTS_NEED_HTTP, check_slack
from .config_slack import Checked as SlackChecked
from .config_webhook import WEBHOOK_NEEDS_HTTP, check_webhook

Model = TypeVar("Model", bound=BaseModel)

#: What a config without ``routes`` serves.
DEFAULT_ROUTES: Mapping[str, Any] = {"echo": {"profile": "echo"}}

_TELEGRAM_SECRET = (
    "the bot token must not be written in the file: put it in an environment variable "
    "and name it with token_env"
)
_BOT_TOKEN_RE = re.compile(r"[0-9]+:[A-Za-z0-9_-]+")
_SECRET_IN_FILE = (
    "a secret written in the file; put the token in an environment variable and name it "
    "with token_env in the user's entry (like `token_env: ALICE_TOKEN`), so the file can be "
    "shared and kept in version control"
)
_NEW_TOKEN = "make one with `openssl rand -hex 32`"


class Check:
    """One pass over a parsed config: the file's lines, its folder (relative
    paths start there), the environment tokens are read from, and every
    problem found so far."""

    HINT = (
        "fix each line named above; every key is optional, and an empty file serves the "
        "bundled echo profile on this machine"
    )

    def __init__(self, lines: Lines, folder: Path, env: Mapping[str, str]) -> None:
        self.lines = lines
        self.folder = folder
        self.env = env
        self.problems: list[tuple[int, str]] = list(lines.problems)

    # --- recording problems ----------------------------------------------------------------

    def line(self, loc: Loc, *, key: bool = False) -> int:
        """The line of the key (``key``) or value at ``loc``, else of the nearest
        enclosing entry that has one."""
        if key and loc in self.lines.keys:
            return self.lines.keys[loc]
        for end in range(len(loc), 0, -1):
            if loc[:end] in self.lines.values:
                return self.lines.values[loc[:end]]
        return self.lines.top

    def add(self, loc: Loc, text: str, *, key: bool = False) -> None:
        self.problems.append((self.line(loc, key=key), f"field '{self.lines.label(loc)}': {text}"))

    def validate(
        self, model: type[Model], value: object, loc: Loc, what: str, example: str
    ) -> Model | None:
        """``value`` as ``model``, or None with its problems recorded. ``what``
        names the model's fields in "not WHAT" (``a field of a `users` entry``)."""
        if not isinstance(value, dict):
            self.add(loc, f"must be a mapping (like `{example}`), not {_kind(value)}")
            return None
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            for err in exc.errors():
                full: Loc = (*loc, *err["loc"])
                if err["type"] == "extra_forbidden":
                    self.add(
                        full, f"not {what}{did_you_mean(full[-1], model.model_fields)}", key=True
                    )
                elif err["type"] == "missing":
                    self.problems.append(
                        (
                            self.line(loc, key=True),
                            f"field '{self.lines.label(full)}': is required but missing",
                        )
                    )
                else:
                    self.problems.append(
                        pydantic_problem({**err, "loc": full}, self.lines, model.model_fields)
                    )
            return None

    # --- the sections ----------------------------------------------------------------------

    def top_level_keys(self, data: Mapping[Any, Any]) -> None:
        for key in data:
            if key in TOP_FIELDS:
                continue
            if key in SECRET_KEYS:
                self.add((key,), _SECRET_IN_FILE, key=True)
            elif not isinstance(key, str):
                self.add((key,), "keys must be text", key=True)
            else:
                guess = did_you_mean(key, TOP_FIELDS) or f"; the keys are {', '.join(TOP_FIELDS)}"
                self.add((key,), f"not a config key{guess}", key=True)

    def listen(self, value: object) -> Listen:
        if value is None:
            return Listen()
        try:
            return parse_listen(value)
        except ValueError as exc:
            self.add(("listen",), str(exc))
            return Listen()

    def store(self, value: object) -> Literal["sqlite", "memory"]:
        if value is None:
            return "sqlite"
        try:
            return parse_store(value)
        except ValueError as exc:
            self.add(("store",), str(exc))
            return "sqlite"

    def data_dir(self, value: object) -> Path | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip() or "\0" in value:
            self.add(("data_dir",), "must be the path of a folder, like ~/agentproc-data")
            return None
        path = expand_path(value, self.folder)
        if path_is(path, "exists") and not path_is(path, "is_dir"):
            self.add(("data_dir",), f"{path} is a file, not a folder; name a folder for the store")
        return Path(os.path.realpath(path))  # the folder may not exist yet: it is made on use

    def users(self, value: object) -> Iterator[tuple[UserEntry, SecretStr | None]]:
        """Each valid user entry and its token, checking names, tokens and
        platform ids for clashes between users."""
        if value is None:
            return
        if not isinstance(value, list):
            self.add(("users",), f"must be a list (like `- name: alice`), not {_kind(value)}")
            return
        names: dict[str, int] = {}
        tokens: dict[str, tuple[str, int]] = {}
        platform_ids: dict[tuple[str, str], str] = {}
        for index, raw in enumerate(value):
            loc: Loc = ("users", index)
            if isinstance(raw, dict):
                raw = dict(raw)
                for key in SECRET_KEYS:
                    if key in raw:
                        del raw[key]  # refused here, with its own message, never shown
                        self.add((*loc, key), _SECRET_IN_FILE, key=True)
                # Checked before the entry is validated, so a clash is seen even
                # when the entry has other problems.
                name = raw.get("name")
                if isinstance(name, str) and name in names:
                    self.add(
                        (*loc, "name"),
                        f"user {name!r} is also on line {names[name]}; each user needs a name "
                        "of their own",
                    )
                    continue
                if isinstance(name, str):
                    names[name] = self.line((*loc, "name"))
            entry = self.validate(UserEntry, raw, loc, "a field of a `users` entry", "name: alice")
            if entry is None:
                continue
            for platform, pid in entry.platform_ids().items():
                other = platform_ids.setdefault((platform, pid), entry.name)
                if other != entry.name:
                    self.add(
                        (*loc, platform),
                        f"user {other!r} has the same {platform} id; one id is one person",
                    )
            token = self._token(entry, (*loc, "token_env"), tokens)
            yield entry, token

    def _token(
        self, entry: UserEntry, loc: Loc, seen: dict[str, tuple[str, int]]
    ) -> SecretStr | None:
        """The user's token from the environment, checked; never shown."""
        var = entry.token_env
        if var is None:
            return None
        token = self.env.get(var, "")
        who = f"user {entry.name!r}"
        if not token:
            state = "is empty" if var in self.env else "is not set"
            if _looks_like_a_token(var):
                self.add(
                    loc,
                    f"the variable named here, for the token of {who}, {state}, and its name "
                    "looks like a token itself: token_env takes the name of a variable (like "
                    "ALICE_TOKEN) that holds the token",
                )
            else:
                self.add(
                    loc,
                    f"the environment variable {var}, which holds the HTTP token of {who}, "
                    f"{state}; set it before starting the bridge ({_NEW_TOKEN})",
                )
            return None
        if len(token) < MIN_TOKEN_CHARS:
            self.add(
                loc,
                f"the token in {var} ({who}) is shorter than {MIN_TOKEN_CHARS} characters, "
                f"too easy to guess; {_NEW_TOKEN}",
            )
            return None
        if not all("!" <= c <= "~" for c in token):
            self.add(
                loc,
                f"the token in {var} ({who}) holds a space, a control character or a "
                "character outside ASCII, which an Authorization header cannot carry; "
                f"{_NEW_TOKEN}",
            )
            return None
        line = self.line(loc)
        if token in seen:
            other, other_line = seen[token]
            self.add(
                loc,
                f"{who} has the same token as user {other!r} (line {other_line}); each "
                f"user needs their own ({_NEW_TOKEN})",
            )
            return None
        seen[token] = (entry.name, line)
        return SecretStr(token)

    def routes(self, value: object) -> Iterator[tuple[str, Route, Profile, str]]:
        """Each route that can be served: its name, store route, profile and title."""
        if value is None:
            value = DEFAULT_ROUTES
        if not isinstance(value, dict):
            self.add(
                ("routes",),
                f"must be a mapping (like `echo: {{profile: echo}}`), not {_kind(value)}",
            )
            return
        if not value:
            self.add(
                ("routes",),
                "has no routes; add one (like `echo: {profile: echo}`), or leave `routes` out "
                "to serve the bundled echo profile",
            )
            return
        served: dict[Route, str] = {}
        for name, raw in value.items():
            loc: Loc = ("routes", name)
            if not isinstance(name, str) or not NAME_RE.fullmatch(name):
                self.add(
                    loc,
                    "is not a valid route name: use 1 to 64 letters, digits, '.', '_' or '-'",
                    key=True,
                )
                continue
            entry = self.validate(RouteEntry, raw, loc, "a field of a route", "profile: echo")
            if entry is None:
                continue
            found = self._route(name, entry, loc)
            if found is None:
                continue
            route, profile = found
            if route in served:
                self.add(
                    loc,
                    f"runs the same profile in the same folder as route {served[route]!r}, so "
                    "the two would share their conversations; give one another cwd or remove it",
                    key=True,
                )
                continue
            served[route] = name
            yield name, route, profile, entry.title or name

    def _route(self, name: str, entry: RouteEntry, loc: Loc) -> tuple[Route, Profile] | None:
        """The route's store :class:`Route` and its profile, or None with the
        problem recorded at the field it is about."""
        try:
            target, ref, bundled = find_profile(entry.profile, self.folder)
            profile = load_route_profile(target)
        except ValueError as exc:
            self.add((*loc, "profile"), str(exc))
            return None
        folder: Path | None = None
        if entry.cwd is not None:
            try:
                folder = route_folder(entry.cwd, self.folder)
            except ValueError as exc:
                self.add((*loc, "cwd"), str(exc))
                return None
        elif bundled or profile.runs_in_caller_cwd:
            # A bundled profile's own folder is inside the installed package; like
            # `agentproc chat`, it runs where it was started: here, the config's folder.
            folder = self.folder
        return settle_route(name, ref, profile, folder, self.folder, self.env)

    def turns(self, value: object) -> TurnLimits:
        if value is None:
            return TurnLimits()
        limits = self.validate(
            TurnLimits, value, ("turns",), "a field of `turns`", "max_running: 16"
        )
        return limits or TurnLimits()

    def channels(self, value: object) -> bool:
        """Whether the HTTP API is on (it is unless ``http: {enabled: false}``)."""
        if value is None:
            return True
        if not isinstance(value, dict):
            self.add(("channels",), f"must be a mapping (like `http: {{}}`), not {_kind(value)}")
            return True
        enabled = True
        for key, raw in value.items():
            loc: Loc = ("channels", key)
            if key == "http":
                if raw is not None:
                    http = self.validate(
                        HttpChannel, raw, loc, "a field of `channels.http`", "enabled: false"
                    )
                    enabled = http.enabled if http is not None else enabled
            elif key == "telegram":
                self.telegram_channel(raw, loc)
            elif key == "slack":
                self.slack = check_slack(self, raw, loc)
            elif key == "discord":
                self.discord = check_discord(self, raw, loc)
            elif key in LATER_CHANNELS:
                self.add(
                    loc,
                    f"the {key} channel is not available in this version of agentproc; "
                    f"remove it (this version serves {', '.join(CHANNELS)})",
                    key=True,
                )
            else:
                guess = did_you_mean(key, (*CHANNELS, *LATER_CHANNELS))
                served = f"; this version serves {', '.join(CHANNELS)}"
                self.add(loc, f"not a channel{guess or served}", key=True)
        if not enabled and self.telegram is not None and self.telegram[2] is not None:
            self.add(("channels", "telegram", "webhook"), WEBHOOK_NEEDS_HTTP, key=True)
        if not enabled and self.slack is not None and self.slack[3] is not None:
            self.add(("channels", "slack", "signing_secret_env"), EVENTS_NEED_HTTP, key=True)
        return enabled

    #: The Slack section and its secrets, once checked (see config_slack).
    slack: SlackChecked | None = None

    #: The Telegram section, its bot token and its webhook (None: polling),
    #: once checked (see telegram_channel).
    telegram: tuple[TelegramChannel, SecretStr, Webhook | None] | None = None
    #: The Discord section and its bot token, once checked (see config_discord).
    discord: tuple[DiscordChannel, SecretStr] | None = None

    def telegram_channel(self, raw: object, loc: Loc) -> None:
        hook_raw, api_base = None, ""
        if isinstance(raw, dict):
            for key in SECRET_KEYS:
                if key in raw:
                    self.add((*loc, key), _TELEGRAM_SECRET, key=True)
            raw = {k: v for k, v in raw.items() if k not in SECRET_KEYS}
            hook_raw, api_base = raw.get("webhook"), str(raw.get("api_base") or "")
        entry = self.validate(
            TelegramChannel, raw, loc, "a field of `channels.telegram`", "token_env: BOT_TOKEN"
        )
        webhook = None
        if hook_raw is not None:  # checked even when the rest is not: all problems at once
            api_base = entry.api_base if entry is not None else api_base
            webhook = check_webhook(self, hook_raw, (*loc, "webhook"), api_base)
        if entry is None or (hook_raw is not None and webhook is None):
            return
        var = entry.token_env
        token = self.env.get(var, "")
        where = (*loc, "token_env")
        if not token:
            state = "is empty" if var in self.env else "is not set"
            self.add(
                where,
                f"the environment variable {var}, which holds the Telegram bot token, {state}; "
                "set it to the token @BotFather gave you before starting the bridge",
            )
            return
        if not _BOT_TOKEN_RE.fullmatch(token):
            self.add(
                where,
                f"the value of {var} does not look like a Telegram bot token (digits, a "
                "colon, then letters, digits, '-' or '_'); copy it again from @BotFather",
            )
            return
        if not entry.api_base.startswith(("http://", "https://")):
            self.add((*loc, "api_base"), "must be an http:// or https:// URL")
            return
        self.telegram = (entry, SecretStr(token), webhook)


# --- helpers -------------------------------------------------------------------------------


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "empty (null)"
    return "a single value"


def _looks_like_a_token(name: str) -> bool:
    """Whether a ``token_env`` value looks like a token pasted where its
    variable's name belongs, and so must not be shown: long, with digits, and
    not the usual upper-case variable name."""
    return len(name) >= MIN_TOKEN_CHARS and any(c.isdigit() for c in name) and not name.isupper()
