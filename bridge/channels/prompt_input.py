"""The terminal chat's input at a terminal: line editing, history and paste,
with prompt_toolkit (the library Python REPLs use).

Imported only when ``agentproc chat`` runs at a terminal, so no other command
pays for it. :class:`PromptLines` reads one message per prompt while the
conversation's events are printed above the prompt (``patch_stdout``):

- Enter sends; a pasted block (bracketed paste) is inserted as it is, newlines
  included, so several pasted lines are one message;
- the arrow keys and Ctrl-R walk the input history, kept in ``chat_history``
  in the data folder (in memory when that folder cannot be written);
- Ctrl-C at the prompt raises :class:`KeyboardInterrupt` from :meth:`read`
  (the terminal is in raw mode, so no SIGINT is sent); Ctrl-D on an empty
  line is the end of input.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout

__all__ = ["HISTORY_FILENAME", "PromptLines"]

#: The input history's file, in the data folder.
HISTORY_FILENAME = "chat_history"


def _history(folder: Path | None) -> History:
    if folder is not None and os.access(folder, os.W_OK):
        return FileHistory(str(folder / HISTORY_FILENAME))
    return InMemoryHistory()


class PromptLines:
    """Lines typed at a terminal, read while output goes on above the prompt.

    Use :meth:`open`; ``out`` and ``err`` are where to write while it is open
    (text written to them appears above the prompt). ``prompt`` is called
    for the prompt's text each time it is drawn; call :meth:`prompt_changed`
    when its answer changes.
    """

    interactive = True

    def __init__(self, prompt: Callable[[], str], out: TextIO, err: TextIO, history: History):
        self._prompt = prompt
        self.out = out
        self.err = err
        self._session: PromptSession[str] = PromptSession(history=history, multiline=False)

    @classmethod
    @contextmanager
    def open(cls, prompt: Callable[[], str], data_folder: Path | None) -> Iterator[PromptLines]:
        stderr_is_terminal = sys.stderr.isatty()
        original_err = sys.stderr
        with patch_stdout(raw=True):
            # Notes go above the prompt too, unless stderr was sent elsewhere.
            err = sys.stderr if stderr_is_terminal else original_err
            lines = cls(prompt, sys.stdout, err, _history(data_folder))
            try:
                yield lines
            finally:
                sys.stdout.flush()

    async def read(self) -> str | None:
        """The next message, or None at the end of input (Ctrl-D)."""
        try:
            return await self._session.prompt_async(
                self._prompt, handle_sigint=False, set_exception_handler=False
            )
        except EOFError:
            return None

    def prompt_changed(self) -> None:
        app = self._session.app
        if app.is_running:
            app.invalidate()
