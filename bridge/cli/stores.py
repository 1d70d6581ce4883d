"""Opening the SQLite store from a command (``sessions``, ``pairing``): the
``--data-dir`` option, read-only or writing opens, and running one piece of
async work on it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:
    from bridge.store.sqlite import SQLiteStore

T = TypeVar("T")


def _check_data_dir(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value == "":
        raise click.BadParameter("an empty value names no folder", ctx=ctx, param=param)
    return value


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    callback=_check_data_dir,
    help="Folder of the store (default: $AGENTPROC_DATA_DIR or the user data folder).",
)


def folder_of(data_dir: str | None) -> Path:
    from bridge.store.sqlite import default_data_dir

    folder = default_data_dir() if data_dir is None else Path(data_dir).expanduser()
    return folder.absolute()


def open_sqlite(data_dir: str | None, *, read_only: bool) -> SQLiteStore:
    """The store in the data folder; read-only ones create and change nothing.
    An OSError from looking at the folder becomes a StoreError naming it."""
    from bridge.store.errors import StoreError
    from bridge.store.sqlite import DATA_DIR_ENV, open_store

    folder = folder_of(data_dir)
    try:
        if folder.exists() and not folder.is_dir():
            raise StoreError(
                f"the data folder {folder} is a file, not a folder",
                hint=f"give --data-dir or {DATA_DIR_ENV} a folder (it is created when missing)",
            )
        return open_store(folder, read_only=read_only)
    except OSError as exc:
        raise StoreError(
            f"cannot read the data folder {folder}: {exc.strerror or exc}",
            hint=f"check its permissions, or set {DATA_DIR_ENV} to another folder",
        ) from exc


def run_on(
    data_dir: str | None, work: Callable[[SQLiteStore], Awaitable[T]], *, read_only: bool
) -> T:
    """Run ``work`` on the store, opened read-only or for writing."""
    import anyio

    async def go() -> T:
        async with open_sqlite(data_dir, read_only=read_only) as store:
            return await work(store)

    return anyio.run(go)


def read(data_dir: str | None, work: Callable[[SQLiteStore], Awaitable[T]]) -> T:
    return run_on(data_dir, work, read_only=True)


def write(data_dir: str | None, work: Callable[[SQLiteStore], Awaitable[T]]) -> T:
    """Writes create the store when it is missing, and upgrade an old one."""
    return run_on(data_dir, work, read_only=False)
