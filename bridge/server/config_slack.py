"""``channels.slack``: checked, and what the server builds the channel from.

::

    channels:
      slack:
        bot_token_env: SLACK_BOT_TOKEN       # xoxb-..., every Web API call
        app_token_env: SLACK_APP_TOKEN       # xapp-..., Socket Mode (the default)
        # or, the HTTP Events API instead of Socket Mode:
        # signing_secret_env: SLACK_SIGNING_SECRET
        # events_path: /slack/events
        api_base: https://slack.com/api/    # tests point it at a fake on loopback
        route: claude
        access: pairing                      # pairing | allowlist | open | disabled

Secrets come from the environment: the file names the variables. Exactly
one way to receive: an app token (Socket Mode) or a signing secret (the
Events API, served on the bridge's HTTP server, which must then be on).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr

from bridge.turn.profile_yaml import Loc

from .config_models import SECRET_KEYS, Text, _env_name

if TYPE_CHECKING:
    from .config import RouteConfig
    from .config_check import Check

__all__ = ["SlackChannel", "SlackConfig", "check_slack"]

EnvName = Annotated[str, BeforeValidator(_env_name)]

_SECRET = (
    "tokens and secrets must not be written in the file: put each in an environment "
    "variable and name it with bot_token_env, app_token_env or signing_secret_env"
)
_WHERE = "the Slack app's settings (api.slack.com/apps)"


class SlackChannel(BaseModel):
    """A Slack app: its tokens (by variable), how it receives, the Web API
    base, the route it talks to and who it answers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bot_token_env: EnvName
    app_token_env: EnvName | None = None
    signing_secret_env: EnvName | None = None
    events_path: Text = "/slack/events"
    api_base: Text = "https://slack.com/api/"
    route: Text | None = None
    access: Literal["pairing", "allowlist", "open", "disabled"] = "pairing"


@dataclass(frozen=True, slots=True)
class SlackConfig:
    """The Slack channel as the server builds it: the bot token, and the app
    token (Socket Mode) or the signing secret (the Events API on
    ``events_path``)."""

    bot_token: SecretStr = field(repr=False)
    api_base: str
    route: RouteConfig
    access: Literal["pairing", "allowlist", "open", "disabled"] = "pairing"
    app_token: SecretStr | None = field(default=None, repr=False)
    signing_secret: SecretStr | None = field(default=None, repr=False)
    events_path: str = "/slack/events"

    @property
    def by_events_api(self) -> bool:
        return self.signing_secret is not None


#: A checked section: the entry, and its bot token, app token, signing secret.
Checked = tuple[SlackChannel, SecretStr, SecretStr | None, SecretStr | None]


#: Why a signing secret needs the HTTP server.
EVENTS_NEED_HTTP = (
    "the Events API needs the HTTP server, where Slack sends the events, and "
    "channels.http.enabled: false turns it off; turn it on, or use app_token_env"
)
_SECRET_FIELDS = (*SECRET_KEYS, "bot_token", "app_token", "signing_secret")


def check_slack(check: Check, raw: object, loc: Loc) -> Checked | None:
    """``channels.slack`` checked, its secrets read from the environment; None
    with every problem recorded on ``check``."""
    if isinstance(raw, dict):
        for key in _SECRET_FIELDS:
            if key in raw:
                check.add((*loc, key), _SECRET, key=True)
        raw = {k: v for k, v in raw.items() if k not in _SECRET_FIELDS}
    entry = check.validate(
        SlackChannel, raw, loc, "a field of `channels.slack`", "bot_token_env: SLACK_BOT_TOKEN"
    )
    if entry is None:
        return None
    ok = True
    if (entry.app_token_env is None) == (entry.signing_secret_env is None):
        check.add(
            loc,
            "say how Slack sends events: app_token_env (Socket Mode, no public URL needed) "
            "or signing_secret_env (the HTTP Events API), one of the two",
        )
        ok = False
    if not entry.api_base.startswith(("http://", "https://")):
        check.add((*loc, "api_base"), "must be an http:// or https:// URL")
        ok = False
    if not entry.events_path.startswith("/") or "?" in entry.events_path:
        check.add((*loc, "events_path"), "must be a path starting with /, like /slack/events")
        ok = False
    bot = _secret(check, (*loc, "bot_token_env"), entry.bot_token_env, "bot token", "xoxb-")
    app = secret = None
    if entry.app_token_env is not None:
        where = (*loc, "app_token_env")
        app = _secret(check, where, entry.app_token_env, "app-level token", "xapp-")
        ok = ok and app is not None
    if entry.signing_secret_env is not None:
        where = (*loc, "signing_secret_env")
        secret = _secret(check, where, entry.signing_secret_env, "signing secret", "")
        ok = ok and secret is not None
    if not ok or bot is None:
        return None
    return entry, bot, app, secret


def _secret(check: Check, loc: Loc, var: str, what: str, prefix: str) -> SecretStr | None:
    value = check.env.get(var, "")
    if not value:
        state = "is empty" if var in check.env else "is not set"
        check.add(
            loc,
            f"the environment variable {var}, which holds the Slack app's {what}, {state}; "
            f"set it to the {what} from {_WHERE} before starting the bridge",
        )
        return None
    if prefix and not value.startswith(prefix):
        check.add(
            loc,
            f"the value of {var} does not look like a Slack {what} (it starts with {prefix}); "
            f"copy it again from {_WHERE}",
        )
        return None
    if any(c.isspace() for c in value):
        check.add(loc, f"the value of {var} holds spaces or line breaks; copy the {what} again")
        return None
    return SecretStr(value)
