"""``agentproc profiles``: the profiles that ship with agentproc.

``list`` shows them, ``show NAME`` prints one, ``init NAME [DIR]`` copies one
out to edit. Everything is read from the installed package: no network.
"""

from __future__ import annotations

import click


@click.group()
def profiles() -> None:
    """The bundled profiles: agent CLIs and examples, runnable by name.

    Any of them runs with `agentproc run NAME -m TEXT`, in the current directory
    unless --cwd says otherwise.
    """


@profiles.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
def list_profiles(as_json: bool) -> None:
    """List the bundled profiles: name, tags and description."""
    from .bundled import list_bundled

    found = list_bundled()
    if as_json:
        import json

        data = [
            {
                "name": b.name,
                "description": b.description,
                "tags": list(b.tags),
                "path": str(b.file),
            }
            for b in found
        ]
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    width = max((len(b.name) for b in found), default=4)
    for b in found:
        tags = f" [{', '.join(b.tags)}]" if b.tags else ""
        click.echo(f"{b.name:<{width}}  {b.description}{tags}")


@profiles.command("show")
@click.argument("name")
@click.option("--readme", is_flag=True, help="Print the profile's README instead.")
def show_profile(name: str, readme: bool) -> None:
    """Print the bundled profile NAME (its profile.yaml), or its README."""
    from .bundled import find_bundled, resolve_profile_arg

    found = find_bundled(name)
    if found is None:
        resolve_profile_arg(name)  # raises the "not found" error with the names
        raise click.UsageError(f"{name!r} is a path, not a bundled profile name")
    if readme:
        path = found.folder / "README.md"
        if not path.is_file():
            raise click.ClickException(f"the profile {name} has no README.md")
        click.echo(path.read_text(encoding="utf-8"), nl=False)
        return
    click.echo(f"# {found.file}")
    click.echo(found.file.read_text(encoding="utf-8"), nl=False)


@profiles.command("init")
@click.argument("name")
@click.argument("dest", required=False, type=click.Path())
def init_profile(name: str, dest: str | None) -> None:
    """Copy the bundled profile NAME to DEST (default ./NAME) to edit it.

    Run the copy with `agentproc run DEST -m TEXT`.
    """
    from .bundled import copy_bundled

    target = copy_bundled(name, dest)
    click.echo(f"copied {name} to {target}")
    click.echo(f"run it: agentproc run {target} -m 'hello'")
