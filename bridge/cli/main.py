"""The ``agentproc`` command: parse options, call the library, map errors to exit codes.

Heavy imports (pydantic, anyio) happen inside the commands, so ``--help`` and
``--version`` answer at once.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

from agentproc import __version__

if TYPE_CHECKING:
    from collections.abc import Callable

    from agentproc.wire import Attachment, PermissionDecision, PermissionRequest
    from bridge.turn.errors import LaunchError
    from bridge.turn.machine import TurnResult
    from bridge.turn.profile import Profile
    from bridge.turn.profile_cache import ProfileView
    from bridge.turn.request import TurnRequest


def _fail(message: str, code: int, hint: str = "") -> NoReturn:
    click.echo(f"error: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
    sys.exit(code)


class _Group(click.Group):
    """Maps every error the library reports to its message and exit code, once."""

    def invoke(self, ctx: click.Context) -> Any:
        from bridge.errors import BridgeError

        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            if ctx.invoked_subcommand == "run" and "--json" in sys.argv[1:]:
                # --json promises one JSON object on stdout, also for a bad command line.
                from bridge.turn.machine import failed_result

                _print_json(failed_result(exc.format_message(), 2))
            raise
        except BridgeError as exc:
            _fail(exc.detail, exc.exit_code, exc.hint)
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            sys.exit(141)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="agentproc")
def main() -> None:
    """Put any agent program behind a chat.

    An agent is any executable: per turn it gets the message in AGENT_* variables
    and prints its reply. A profile (YAML) says how to start it.
    """


def _parse_env(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="'--env'")
        out[name] = value
    return out


def _check_urls(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    from bridge.turn.attachments import URL_EXAMPLES, url_problem

    for value in values:
        problem = url_problem(value)
        if problem:
            raise click.BadParameter(
                f"{value!r}: {problem}. Give a URL or an absolute path, like {URL_EXAMPLES}",
                ctx=ctx,
                param=param,
            )
    return values


def _attachments(
    image: tuple[str, ...], file: tuple[str, ...], attach: tuple[str, ...]
) -> list[Attachment]:
    from agentproc.wire import Attachment
    from bridge.turn.attachments import attachment_for_url

    out = [Attachment("image", url) for url in image]
    out += [Attachment("file", url) for url in file]
    out += [attachment_for_url(url) for url in attach]
    return out


@main.command()
@click.argument("profile")
@click.option("-m", "--message", help="The message of the turn.")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the message from standard input.")
@click.option("--session", "session_id", default="", help="Resume this agent session id.")
@click.option("--session-name", default="default", show_default=True, help="AGENT_SESSION_NAME.")
@click.option("--from", "from_user", default="", help="Who sends the message (AGENT_FROM_USER).")
@click.option(
    "--image-url",
    multiple=True,
    callback=_check_urls,
    metavar="URL",
    help="Attach an image by URL or absolute path (repeatable).",
)
@click.option(
    "--file-url",
    multiple=True,
    callback=_check_urls,
    metavar="URL",
    help="Attach a file by URL or absolute path (repeatable).",
)
@click.option(
    "--attach",
    multiple=True,
    callback=_check_urls,
    metavar="URL",
    help="Attach a URL or absolute path; its type is guessed from the name (repeatable).",
)
@click.option("--cwd", type=click.Path(), help="Working directory for the agent.")
@click.option("--env", "env_items", multiple=True, metavar="NAME=VALUE", help="Extra variable.")
@click.option(
    "--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds for the turn."
)
@click.option("--no-stream", is_flag=True, help="Turn streaming off (AGENT_STREAMING=0).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the result.")
def run(
    profile: str,
    message: str | None,
    from_stdin: bool,
    session_id: str,
    session_name: str,
    from_user: str,
    image_url: tuple[str, ...],
    file_url: tuple[str, ...],
    attach: tuple[str, ...],
    cwd: str | None,
    env_items: tuple[str, ...],
    timeout: float | None,
    no_stream: bool,
    as_json: bool,
) -> None:
    """Run one turn of PROFILE and print the reply.

    PROFILE is a profile file or folder, or a bundled profile's name (see
    `agentproc profiles list`); bundled:NAME always means the bundled one,
    even when a file or folder called NAME is in the current directory.

    Streamed text is printed as it arrives. The final reply is printed after
    it only when it says something else (then under a "--- final reply ---"
    line on stderr), or when nothing streamed. Errors go to stderr and the
    exit status is the turn's exit code (124 timeout, 130 cancelled, 127/126
    command not found / not executable, 1 agent error, 2 usage or profile
    error).
    """
    if (message is None) == (not from_stdin):
        raise click.UsageError("give the message with -m TEXT or --stdin (exactly one of them)")
    extra_env = _parse_env(env_items)
    attachments = _attachments(image_url, file_url, attach)

    from bridge.errors import BridgeError
    from bridge.turn.bundled import load_profile_arg
    from bridge.turn.machine import failed_result
    from bridge.turn.request import TurnRequest

    # The profile is loaded, and its command looked up, before the message is
    # read: nobody types a long message into --stdin for an agent that cannot start.
    try:
        prof, cwd = load_profile_arg(profile, cwd, cached=True)
        problem = cannot_start(prof, cwd, extra_env)
        if problem is not None:
            raise problem
    except BridgeError as exc:
        if as_json:
            _print_json(
                failed_result(exc.detail, exc.exit_code, session_id=session_id, hint=exc.hint)
            )
            sys.exit(exc.exit_code)
        raise
    if from_stdin:
        # surrogateescape: bytes that are not UTF-8 reach the agent unchanged.
        message = sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
    assert message is not None

    printed: list[str] = []

    def on_partial(text: str) -> None:
        printed.append(text)
        sys.stdout.write(text)
        sys.stdout.flush()

    request = TurnRequest(
        message,
        session_id=session_id,
        session_name=session_name,
        from_user=from_user,
        attachments=attachments,
        cwd=cwd,
        env=extra_env,
        timeout=timeout,
        streaming=False if no_stream else None,
    )
    show = None if as_json else on_partial
    if prof.permission:
        result = _run_with_permission(prof, request, show, from_stdin, as_json)
    else:
        # Nothing to answer while the agent runs: no event loop needed, which
        # saves most of this command's start-up time.
        from bridge.turn.runner_sync import run_request_blocking

        def on_signal(count: int) -> None:
            if count == 1 and not as_json:
                sys.stderr.write("\nagentproc: cancelling (again to kill now)\n")
                sys.stderr.flush()

        result = run_request_blocking(prof, request, on_partial=show, on_signal=on_signal)
    if as_json:
        _print_json(result)
    else:
        _print_human(result, printed)
    sys.exit(result.exit_code)


def _run_with_permission(
    prof: Profile | ProfileView,
    request: TurnRequest,
    on_partial: Callable[[str], None] | None,
    from_stdin: bool,
    as_json: bool,
) -> TurnResult:
    """One turn on the event loop, asking the terminal when the agent wants a tool."""
    import anyio
    import anyio.abc

    from bridge.channels.terminal import StdinLines, ask_permission, deny_without_terminal
    from bridge.turn.machine import failed_result

    async def on_permission(req: PermissionRequest) -> PermissionDecision:
        if from_stdin:
            return deny_without_terminal(req, "stdin carried the message")
        if not sys.stdin.isatty():
            return deny_without_terminal(req, "stdin is not a terminal")
        return await ask_permission(StdinLines(), req)

    async def go() -> TurnResult:
        from bridge.turn.runner import run_request

        cancel = anyio.Event()
        turn_scope = anyio.CancelScope()

        async def watch_signals(*, task_status: anyio.abc.TaskStatus[None]) -> None:
            # The first Ctrl-C (or SIGTERM) stops the agent gently: SIGTERM,
            # then SIGKILL after kill_grace_secs. A second one kills it now.
            import signal

            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                task_status.started()
                async for _ in signals:
                    if not cancel.is_set():
                        cancel.set()
                        if not as_json:
                            click.echo("\nagentproc: cancelling (again to kill now)", err=True)
                    else:
                        turn_scope.cancel()

        result: TurnResult | None = None
        async with anyio.create_task_group() as tg:
            await tg.start(watch_signals)
            with turn_scope:
                result = await run_request(
                    prof, request, on_partial=on_partial, on_permission=on_permission, cancel=cancel
                )
            tg.cancel_scope.cancel()
        if result is None:
            return failed_result(
                "cancelled: the agent was killed", 130, session_id=request.session_id
            )
        return result

    return anyio.run(go)


def cannot_start(
    prof: Profile | ProfileView, cwd: str | None = None, extra_env: dict[str, str] | None = None
) -> LaunchError | None:
    """Why ``prof``'s agent cannot start here at all (command not found, not
    executable, working directory missing), or None. Problems of one turn's
    input are not looked at: they belong to that turn."""
    from bridge.turn.errors import LaunchError
    from bridge.turn.launch import build_plan, preflight
    from bridge.turn.request import TurnRequest

    try:
        plan = build_plan(prof, TurnRequest("(start-up check)", cwd=cwd, env=extra_env))
    except LaunchError:
        return None
    try:
        preflight(plan)
    except LaunchError as exc:
        return exc
    return None


def _print_json(result: TurnResult) -> None:
    sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _print_human(result: TurnResult, printed: list[str]) -> None:
    from bridge.channels.terminal import write_reply

    write_reply(sys.stdout, sys.stderr, printed, result.reply)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if result.session_captured:
        click.echo(f"agentproc:session:{result.session_id}", err=True)
    if result.error is not None:
        click.echo(f"error: {result.error}", err=True)
        if result.hint:
            click.echo(f"hint: {result.hint}", err=True)


@main.command()
@click.argument("profiles", nargs=-1, required=True)
def validate(profiles: tuple[str, ...]) -> None:
    """Check profile files (or folders holding profile.yaml, or bundled profile
    names, or bundled:NAME) without running them."""
    from bridge.turn.bundled import load_profile_arg
    from bridge.turn.errors import LaunchError, ProfileError
    from bridge.turn.launch import build_plan, preflight
    from bridge.turn.request import TurnRequest

    failed = 0
    for path in profiles:
        try:
            prof, _ = load_profile_arg(path)
        except ProfileError as exc:
            failed += 1
            click.echo(f"error: {exc.detail}", err=True)
            if exc.hint:
                click.echo(f"hint: {exc.hint}", err=True)
            continue
        label = f" ({prof.name})" if prof.name else ""
        click.echo(f"ok: {path}{label}")
        for note in prof.load_warnings:
            click.echo(f"warning: {note}", err=True)
        try:
            preflight(build_plan(prof, TurnRequest("validate")))
        except LaunchError as exc:
            click.echo(
                f"warning: {path}: {exc} — the profile is valid but would not start here", err=True
            )
    if failed:
        sys.exit(2)


@main.command()
def schema() -> None:
    """Print the JSON Schema of the profile format."""
    from bridge.turn.profile import Profile

    click.echo(json.dumps(Profile.model_json_schema(), indent=2, ensure_ascii=False))


def _register() -> None:
    # Commands that live in their own modules; importing them is cheap (click
    # only), their heavy imports happen when they run.
    from .conversations import chat
    from .sessions import sessions

    main.add_command(chat)
    main.add_command(sessions)


_register()

from .batch import batch  # noqa: E402 - cheap: click only until it runs

main.add_command(batch)

from .profiles import profiles as profiles_group  # noqa: E402 - cheap: click only

main.add_command(profiles_group)

from .serve import serve  # noqa: E402 - cheap: click only until it runs

main.add_command(serve)

from .pairing import pairing  # noqa: E402 - cheap: click only until it runs

main.add_command(pairing)
