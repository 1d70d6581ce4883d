"""The HTTP channel: a JSON API over the conversation log, its event streams
and the web chat page, as one ASGI app (see :func:`.app.create_app`).

- :mod:`.models`: the request and response bodies (they also make the
  OpenAPI document);
- :mod:`.access`: who is calling (bearer tokens) and what they may touch;
- :mod:`.events`: a conversation's log as Server-Sent Events;
- :mod:`.app`: the routes.

The server (:mod:`bridge.server`) builds the app from its config and runs it;
this package knows nothing of config files.
"""
