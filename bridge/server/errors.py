"""Errors of ``agentproc serve``, rooted in :class:`ServerError`.

::

    ServerError       the server cannot start or go on serving (a BridgeError, exit 1)
    └── ConfigError   the config file cannot be read or is invalid; nothing was
                      started (exit 2)

YAML, pydantic and OSError problems of reading the config are converted to
:class:`ConfigError` where the file is read (:mod:`bridge.server.config`), and
a profile a route names that does not load becomes one of its problems.
Messages never hold a secret: a token is named by its variable, never shown.
"""

from __future__ import annotations

from bridge.errors import BridgeError, FileProblems

__all__ = ["ConfigError", "ServerError"]


class ServerError(BridgeError):
    """Base of the errors of this package: the server cannot start or go on serving."""


class ConfigError(FileProblems, ServerError):
    """A config that cannot be used. ``problems`` lists every issue found,
    each already prefixed with ``FILE:LINE:``; ``path`` is the file (see
    :class:`FileProblems`)."""
