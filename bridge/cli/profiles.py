"""``agentproc profiles``: the profiles that ship with agentproc.

``list`` shows them, ``show NAME`` prints one, ``init NAME [DIR]`` copies one
out to edit. Everything is read from the installed package: no network.
``import FILE [DEST]`` converts a profile written in the reference
implementation's format into a native one.
"""

from __future__ import annotations

import click


@click.group()
def profiles() -> None:
    """The bundled profiles: agent CLIs and examples, runnable by name.

    Any of them runs with `agentproc run NAME -m TEXT`, in the current directory
    unless --cwd says otherwise. Write bundled:NAME to reach one even when a
    local file or folder has that name.
    """


@profiles.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
def list_profiles(as_json: bool) -> None:
    """List the bundled profiles: name, tags and description."""
    from bridge.turn.bundled import list_bundled

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
    from bridge.turn.bundled import find_bundled, resolve_profile_arg

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
    from bridge.turn.bundled import copy_bundled

    target = copy_bundled(name, dest)
    click.echo(f"copied {name} to {target}")
    click.echo(f"run it: agentproc run {target} -m 'hello'")


@profiles.command("import")
@click.argument("file", type=click.Path(dir_okay=True))
@click.argument("dest", required=False, type=click.Path())
@click.option("--force", is_flag=True, help="Replace the destination file if it exists.")
def import_profile(file: str, dest: str | None, force: bool) -> None:
    """Convert FILE, a profile in the reference format (fields under `agentproc:`),
    into a native profile.yaml.

    DEST is a folder (the file is DEST/profile.yaml) or a .yaml file; by default
    a new folder named after the profile in the current directory. The agent's
    own files stay where they are: the new profile points at them. FILE itself
    runs as it is too (`agentproc run FILE`); importing makes the file native,
    so nothing is ignored any more and it can be edited with the native fields.
    """
    import os
    import re
    from pathlib import Path

    from bridge.turn.errors import ProfileError
    from bridge.turn.profile import (
        PROFILE_FILE_NAMES,
        load_profile,
        load_profile_text,
        native_profile_text,
        resolve_profile_path,
    )

    source = resolve_profile_path(file)
    profile = load_profile(source)
    if not profile.is_reference_format:
        raise ProfileError(
            f"{source} is already a native profile: there is nothing to import",
            path=str(source),
            hint=f"run it as it is: agentproc run {file} -m 'hello'",
        )
    if dest is None:
        folder_name = re.sub(r"[^A-Za-z0-9._-]+", "-", profile.display_name).strip(".-")
        target = Path(folder_name or "imported-profile") / PROFILE_FILE_NAMES[0]
    elif dest.endswith((".yaml", ".yml")):
        target = Path(dest)
    else:
        target = Path(dest) / PROFILE_FILE_NAMES[0]
    if target.is_dir():
        raise ProfileError(
            f"cannot write the profile to {target}: it is a folder",
            path=str(target),
            hint="name a .yaml file or a folder for DEST",
        )
    if target.exists() and not force:
        raise ProfileError(
            f"cannot write the profile to {target}: the file exists",
            path=str(target),
            hint="name another DEST, or pass --force to replace it",
        )
    text, notes = native_profile_text(profile, target.parent)
    load_profile_text(text, source=target)  # what is written must load
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        raise ProfileError(
            f"cannot write the profile to {target}: {exc.strerror or exc}",
            path=str(target),
            hint="check that the folder is writable",
        ) from exc
    click.echo(f"imported {source} to {target}")
    for note in notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"run it: agentproc run {target.parent} -m 'hello'")
