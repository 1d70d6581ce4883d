"""Attachments given as bare URLs: guess their type from the name."""

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
