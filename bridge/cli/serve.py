"""``agentproc serve``: parse options, load the config, run the server."""

from __future__ import annotations

import sys

import click


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="The bridge config (bridge.yaml). Without one: the echo agent, on 127.0.0.1:8787.",
)
@click.option("--host", help="Listen on this address instead of the config's.")
@click.option(
    "--port", type=click.IntRange(0, 65535), help="Listen on this port (0: any free one)."
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="Keep sessions.db here instead of the config's or the default data folder.",
)
@click.option("--check", is_flag=True, help="Only validate the config, then exit.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON object per log line.",
)
def serve(
    config_path: str | None,
    host: str | None,
    port: int | None,
    data_dir: str | None,
    check: bool,
    log_format: str,
) -> None:
    """Serve the HTTP API and the web chat page.

    Stop it with Ctrl-C or SIGTERM: it takes no new messages, gives running
    turns their grace, and loses nothing that was accepted.
    """
    import anyio

    from bridge.server.config import load_config
    from bridge.server.logs import setup_logging
    from bridge.server.serve import check_exposure
    from bridge.server.serve import serve as run_server

    config = load_config(config_path).with_overrides(host=host, port=port, data_dir=data_dir)
    check_exposure(config)
    if check:
        click.echo(f"{config.path or 'defaults'}: ok")
        click.echo(config.describe())
        return
    setup_logging(log_format)

    def ready(url: str) -> None:
        from urllib.parse import urlsplit

        # The port actually bound (``--port 0`` picks a free one).
        click.echo(config.with_overrides(port=urlsplit(url).port).describe(), err=True)
        if not config.users and config.http_enabled:
            click.echo(
                "note: no users are configured, so the API is open to anyone on this "
                "machine; add users with tokens to the config to require them",
                err=True,
            )
        if url:
            click.echo(f"agentproc serve: open {url}", err=True)
        else:
            click.echo("agentproc serve: running (the HTTP API is off)", err=True)
        click.echo(url or "ready")
        sys.stdout.flush()

    anyio.run(lambda: run_server(config, on_ready=ready))
