"""Attachments given as bare URLs: check them, and guess their type from the name."""

from __future__ import annotations

import posixpath
from urllib.parse import urlsplit

from agentproc.wire import Attachment

_TOP_TYPES = {"image": "image", "audio": "audio", "video": "video"}


def attachment_for_url(url: str) -> Attachment:
    """An :class:`Attachment` for ``url``: image, audio or video when the file
    name says so, else file; ``name`` and ``mime_type`` filled in when known."""
    path = urlsplit(url).path
    name = posixpath.basename(path) or None
    import mimetypes

    mime, _ = mimetypes.guess_type(path or url, strict=False)
    kind = _TOP_TYPES.get(mime.split("/", 1)[0], "file") if mime else "file"
    return Attachment(kind, url, name, mime)


#: A URL scheme (RFC 3986): a letter, then letters, digits, "+", "-" or ".".
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")

URL_EXAMPLES = "https://example.com/cat.png, file:///home/me/cat.png or /home/me/cat.png"


def url_problem(value: str) -> str:
    """What is wrong with an attachment URL ('' when nothing): a URL with a
    scheme (http and https with a host) or an absolute path, without blanks
    around it or control characters in it. The command line and batch files
    check with it."""
    import os

    if not value.strip():
        return "it is empty" if not value else "it is blank"
    if value != value.strip():
        return "it has spaces around it"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "it holds a control character (a newline or a tab, for instance)"
    if value.startswith("/"):
        return ""
    scheme, colon, rest = value.partition(":")
    if not colon or not scheme[:1].isalpha() or not set(scheme) <= _SCHEME_CHARS:
        local = os.path.abspath(value)
        if os.path.exists(local):
            return f"it is not a URL; for this local file give its absolute path: {local}"
        return "it is not a URL or an absolute path"
    if any(ch.isspace() for ch in value):
        return "a URL cannot hold spaces (write them as %20)"
    scheme = scheme.lower()
    if scheme in ("http", "https"):
        try:
            host = urlsplit(value).hostname
        except ValueError as exc:
            return f"it is not a valid URL ({exc})"
        if not host:
            return f"an {scheme} URL needs a host, like {scheme}://example.com/cat.png"
    elif scheme == "file":
        if not rest.lstrip("/"):
            return "a file URL needs a path, like file:///home/me/cat.png"
    elif not rest:
        return f"there is nothing after '{scheme}:'"
    return ""
