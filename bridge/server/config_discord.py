"""Checking ``channels.discord``: the section, and the bot token it names.

The token is read from the variable ``token_env`` names, never from the
file; a secret written in the section is refused with the way to move it.
A Discord bot token is three parts of letters, digits, ``-`` and ``_``
joined by dots (the bot's id in base64, a time, a signature); one copied
with the ``Bot`` prefix of the ``Authorization`` header is told apart.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import SecretStr

from bridge.turn.profile_yaml import Loc

from .config_models import SECRET_KEYS, DiscordChannel

if TYPE_CHECKING:
    from .config_check import Check

__all__ = ["check_discord"]

_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_SECRET = (
    "the bot token must not be written in the file: put it in an environment variable "
    "and name it with token_env"
)
_WHERE = "the Developer Portal (your application, Bot, Reset Token)"


def check_discord(check: Check, raw: object, loc: Loc) -> tuple[DiscordChannel, SecretStr] | None:
    """The section and its token, or None with the problems added to ``check``."""
    if isinstance(raw, dict):
        for key in SECRET_KEYS:
            if key in raw:
                check.add((*loc, key), _SECRET, key=True)
        raw = {k: v for k, v in raw.items() if k not in SECRET_KEYS}
    entry = check.validate(
        DiscordChannel, raw, loc, "a field of `channels.discord`", "token_env: DISCORD_BOT_TOKEN"
    )
    if entry is None:
        return None
    ok = True
    base = urlsplit(entry.api_base)
    if base.scheme not in ("http", "https") or not base.hostname:
        check.add(
            (*loc, "api_base"),
            "must be an http:// or https:// URL, like https://discord.com/api (the REST "
            "calls go to it + /v10)",
        )
        ok = False
    elif entry.api_base.rstrip("/").endswith(("/v10", "/v9")):
        check.add(
            (*loc, "api_base"),
            "must not name the API version: write https://discord.com/api (the bridge adds /v10)",
        )
        ok = False
    var = entry.token_env
    token = check.env.get(var, "")
    where = (*loc, "token_env")
    if not token:
        state = "is empty" if var in check.env else "is not set"
        check.add(
            where,
            f"the environment variable {var}, which holds the Discord bot token, {state}; "
            f"set it to the bot's token from {_WHERE} before starting the bridge",
        )
        return None
    if token.lower().startswith("bot "):
        check.add(
            where,
            f"the value of {var} starts with 'Bot ': give the token alone, without the prefix "
            "of the Authorization header",
        )
        return None
    if not _TOKEN_RE.fullmatch(token):
        check.add(
            where,
            f"the value of {var} does not look like a Discord bot token (three parts of "
            f"letters, digits, '-' and '_' joined by dots); copy it again from {_WHERE}",
        )
        return None
    return (entry, SecretStr(token)) if ok else None
