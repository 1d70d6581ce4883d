"""Checking ``channels.telegram.webhook``: the URL Telegram calls, and its secret.

The rules, and why:

- ``url`` is ``https://``: Telegram calls nothing else. ``http://`` is
  accepted only when the host is this machine (127.0.0.0/8, ``::1``,
  ``localhost``), which only a Bot API server running here can reach: a
  local ``telegram-bot-api`` (which may call plain HTTP), or the tests' fake.
  ``api.telegram.org`` refuses such a URL when the bridge starts.
- It names a host, and no ``user:password@``, ``?query`` or ``#fragment``:
  its path is where the bridge's HTTP server takes the updates, so it must be
  one the server can route (letters, digits, ``-``, ``.``, ``_``, ``~`` and
  ``/``) and not one of the bridge's own (the page, ``/v1/...``,
  ``/static/...``, ``/healthz``, ``/metrics``, ``/openapi.json``).
- With Telegram's own Bot API, its port is one Telegram calls: 443, 80, 88
  or 8443 (a local Bot API server calls any).
- The secret comes from the variable ``secret_env`` names, never the file.
  Telegram takes 1 to 256 characters of ``A-Z``, ``a-z``, ``0-9``, ``_`` and
  ``-``; the bridge also wants at least 16, since whoever has the secret can
  send the bot updates as anyone, an admin included.

:class:`~bridge.server.config_check.Check` hands the section to
:func:`check_webhook`, which records the problems with their lines;
:func:`webhook_of` and :func:`url_problem` are the rules alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import SecretStr

from bridge.channels.telegram_webhook import Webhook
from bridge.turn.profile_yaml import Loc

from .config_models import MIN_TOKEN_CHARS, SECRET_KEYS, Listen, TelegramWebhookEntry

if TYPE_CHECKING:
    from .config_check import Check

__all__ = ["TELEGRAM_PORTS", "WEBHOOK_NEEDS_HTTP", "check_webhook", "url_problem", "webhook_of"]

#: Said of a webhook in a config that turns the HTTP server off.
WEBHOOK_NEEDS_HTTP = (
    "needs the HTTP server, where Telegram sends the updates, and channels.http.enabled: "
    "false turns it off; turn it on, or leave out webhook to poll"
)

#: The ports api.telegram.org sends webhook requests to.
TELEGRAM_PORTS = (443, 80, 88, 8443)

#: What Telegram allows in a webhook secret (setWebhook's ``secret_token``).
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]+")
_MAX_SECRET_CHARS = 256
_PATH_RE = re.compile(r"(/[A-Za-z0-9._~-]+)+/?")
#: Paths the bridge's HTTP app serves itself.
_OWN_PATHS = ("/healthz", "/metrics", "/openapi.json", "/docs", "/redoc")
_OWN_PREFIXES = ("/v1", "/static")
_NEW_SECRET = "make one with `openssl rand -hex 32`"
_EXAMPLE = "url: https://bot.example.com/telegram/webhook, secret_env: HOOK_SECRET"
_SECRET_IN_FILE = (
    "the webhook's secret must not be written in the file: put it in an environment "
    "variable and name it with secret_env"
)


def check_webhook(check: Check, raw: object, loc: Loc, api_base: str) -> Webhook | None:
    """The webhook the section ``raw`` (at ``loc``) describes, or None with
    its problems recorded in ``check``."""
    if isinstance(raw, dict):
        for key in SECRET_KEYS:
            if key in raw:
                check.add((*loc, key), _SECRET_IN_FILE, key=True)
        raw = {k: v for k, v in raw.items() if k not in SECRET_KEYS}
    what = "a field of `channels.telegram.webhook`"
    entry = check.validate(TelegramWebhookEntry, raw, loc, what, _EXAMPLE)
    if entry is None:
        return None
    webhook, problems = webhook_of(entry, api_base, check.env)
    for name, text in problems:
        check.add((*loc, name), text)
    return webhook


def webhook_of(
    entry: TelegramWebhookEntry, api_base: str, env: Mapping[str, str]
) -> tuple[Webhook | None, list[tuple[str, str]]]:
    """The webhook ``entry`` describes, or None and its problems, each as
    (the field of ``webhook`` it is about, what is wrong)."""
    problems: list[tuple[str, str]] = []
    wrong = url_problem(entry.url, api_base)
    if wrong is not None:
        problems.append(("url", wrong))
    secret = _secret(entry.secret_env, env, problems)
    if problems or secret is None:
        return None, problems
    return Webhook(entry.url, secret, entry.max_connections), []


def url_problem(url: str, api_base: str) -> str | None:
    """What is wrong with ``url`` as the webhook's URL, or None."""
    example = "like https://bot.example.com/telegram/webhook"
    if any(c.isspace() for c in url):
        return f"must be a URL without spaces, {example}"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError as exc:
        return f"is not a valid URL ({exc}); write one {example}"
    if parts.scheme not in ("https", "http") or not host:
        return f"must be an https:// URL with a host, {example}"
    local = Listen(host, 1).is_loopback
    if parts.scheme == "http" and not local:
        return (
            f"must be https:// (Telegram calls webhooks only over HTTPS), {example}; put a "
            "TLS reverse proxy in front of the bridge. http:// is accepted only for this "
            "machine's own addresses (a local Bot API server)"
        )
    if parts.username is not None or parts.password is not None:
        return "must not hold a user name or password; the secret goes in secret_env"
    if parts.query or parts.fragment:
        return (
            "must not have a ?query or #fragment: its path alone is where the bridge "
            f"takes updates, {example}"
        )
    path = parts.path
    if not path or path == "/":
        return f"needs a path, where the bridge takes the updates, {example}"
    if not _PATH_RE.fullmatch(path) or any(s in (".", "..") for s in path.split("/")):
        return (
            f"has the path {path!r}; use letters, digits, '-', '.', '_' and '~' between "
            f"slashes, {example}"
        )
    bare = path.rstrip("/")
    if bare in _OWN_PATHS or any(bare == p or bare.startswith(p + "/") for p in _OWN_PREFIXES):
        return (
            f"has the path {path!r}, which the bridge's HTTP API serves itself; "
            "pick another, like /telegram/webhook"
        )
    telegram = urlsplit(api_base).hostname == "api.telegram.org"
    effective = port if port is not None else (443 if parts.scheme == "https" else 80)
    if telegram and not local and effective not in TELEGRAM_PORTS:
        return (
            f"has the port {effective}, and Telegram calls webhooks only on ports "
            f"{', '.join(map(str, TELEGRAM_PORTS))}; let the reverse proxy listen on one "
            "of them and forward to the bridge"
        )
    return None


def _secret(var: str, env: Mapping[str, str], problems: list[tuple[str, str]]) -> SecretStr | None:
    """The secret from the environment, checked; never shown."""
    secret = env.get(var, "")
    if not secret:
        state = "is empty" if var in env else "is not set"
        problems.append(
            (
                "secret_env",
                f"the environment variable {var}, which holds the webhook's secret, {state}; "
                f"set it before starting the bridge ({_NEW_SECRET})",
            )
        )
        return None
    if not _SECRET_RE.fullmatch(secret):
        problems.append(
            (
                "secret_env",
                f"the secret in {var} holds a character Telegram does not allow: only A-Z, "
                f"a-z, 0-9, '_' and '-' ({_NEW_SECRET})",
            )
        )
        return None
    if len(secret) < MIN_TOKEN_CHARS:
        problems.append(
            (
                "secret_env",
                f"the secret in {var} is shorter than {MIN_TOKEN_CHARS} characters, too easy "
                f"to guess for what it guards (it lets a request write as anyone); {_NEW_SECRET}",
            )
        )
        return None
    if len(secret) > _MAX_SECRET_CHARS:
        problems.append(
            (
                "secret_env",
                f"the secret in {var} is longer than the {_MAX_SECRET_CHARS} characters "
                f"Telegram takes; {_NEW_SECRET}",
            )
        )
        return None
    return SecretStr(secret)
