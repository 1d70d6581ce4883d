"""Loading the bot a config names: ``bot: mybot.py:bot`` or ``bot: package.module:bot``.

The part before the colon is a Python file (a path ending in ``.py``,
relative to the config file's folder) or an importable module name; the part
after it is the name of the :class:`~bridge.channels.bot.Bot` in it
(``bot`` when left out). A file is loaded with its folder first on the
import path, so it can import the modules beside it.

Loading runs the file: a mistake in it is the user's code failing, and is
reported as the exception and the line of their file where it happened,
not as a traceback through the bridge.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path

from bridge.channels.bot import Bot

__all__ = ["BotLoadError", "load_bot"]


class BotLoadError(ValueError):
    """The bot cannot be loaded; the message says why, in plain words."""


def load_bot(spec: str, folder: Path) -> Bot:
    """The :class:`Bot` that ``spec`` names (see the module docstring)."""
    where, colon, name = spec.strip().rpartition(":")
    if not colon or (len(where) == 1 and where.isalpha()):  # "mybot.py", or a Windows drive
        where, name = spec.strip(), "bot"
    name = name or "bot"
    if not where:
        raise BotLoadError(f"{spec!r} names no file or module; write FILE.py:NAME or module:NAME")
    if not name.isidentifier():
        raise BotLoadError(f"{name!r} is not a Python name; write FILE.py:NAME or module:NAME")
    module = _from_file(where, folder) if where.endswith(".py") else _from_module(where)
    found = getattr(module, name, None)
    if found is None:
        defined = sorted(k for k, v in vars(module).items() if isinstance(v, Bot))
        also = f"; it defines {', '.join(defined)}" if defined else ""
        raise BotLoadError(f"{where} has no {name!r}{also}")
    if not isinstance(found, Bot):
        raise BotLoadError(
            f"{where}:{name} is a {type(found).__name__}, not a Bot "
            "(from bridge.channels.bot import Bot; bot = Bot())"
        )
    return found


def _from_file(where: str, folder: Path) -> object:
    path = (folder / Path(where).expanduser()).resolve()
    if not path.is_file():
        raise BotLoadError(f"no bot file {path}")
    module_name = f"agentproc_bot_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has one
        raise BotLoadError(f"{path} cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pydantic look their module up
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(module_name, None)
        if not isinstance(exc, Exception):
            raise
        raise BotLoadError(f"loading {path} failed: {_failure(exc, path)}") from None
    return module


def _from_module(where: str) -> object:
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        if exc.name and where.startswith(exc.name):
            raise BotLoadError(
                f"no module named {where!r}; name a file (FILE.py:NAME) or install the module"
            ) from None
        raise BotLoadError(f"importing {where} failed: {_failure(exc, None)}") from None
    except Exception as exc:
        raise BotLoadError(f"importing {where} failed: {_failure(exc, None)}") from None


def _failure(exc: Exception, path: Path | None) -> str:
    """``Error: message (FILE, line N)``, naming the user's last line in it."""
    said = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f"{type(exc).__name__}: {exc.msg} (line {exc.lineno})"
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if path is None or Path(f.filename) == path]
    if own:
        last = own[-1]
        return f"{said} ({Path(last.filename).name}, line {last.lineno})"
    return said
