"""Questions a handler is waiting on: :meth:`Thread.await_choice`'s answers.

A handler asks with buttons where the platform has them and with a numbered
list where it does not. Either way the answer comes back through the
channel worker: a button press carries ``choice:TOKEN:INDEX``; a text reply
in the thread is matched by :func:`pick` (the option's number, or its label
typed out). :class:`Choices` holds the open questions of one channel and
hands each answer to the handler waiting for it, once.

Who may answer: the person the handler is serving (or anyone the channel
lets in, when the question says so), and admins.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio

__all__ = ["CHOICE", "Answer", "Choices", "Question", "choice_data", "pick"]

#: The prefix of a choice button's data: ``choice:TOKEN:INDEX``.
CHOICE = "choice"

_NUMBER = re.compile(r"\s*#?(\d{1,3})[.)]?\s*")


def choice_data(token: str, index: int) -> str:
    return f"{CHOICE}:{token}:{index}"


def pick(text: str, options: Sequence[str]) -> int | None:
    """The option a text reply names: its number (``2``, ``#2``, ``2.``)
    or its label (case and surrounding spaces aside); None for neither."""
    number = _NUMBER.fullmatch(text)
    if number is not None:
        n = int(number.group(1))
        return n - 1 if 1 <= n <= len(options) else None
    wanted = " ".join(text.split()).casefold()
    for i, option in enumerate(options):
        if " ".join(option.split()).casefold() == wanted:
            return i
    return None


@dataclass(frozen=True, slots=True)
class Answer:
    index: int
    #: The answerer's config name (or ``id:PLATFORM_ID``).
    by: str


@dataclass
class Question:
    """One open question: where, its options, who may answer."""

    thread: str
    options: tuple[str, ...]
    #: Platform ids that may answer; empty: anyone the channel lets in.
    askees: frozenset[str]
    token: str = field(default_factory=lambda: secrets.token_hex(4))
    answered: anyio.Event = field(default_factory=anyio.Event)
    answer: Answer | None = None

    def may_answer(self, user_id: str, admin: bool) -> bool:
        return admin or not self.askees or user_id in self.askees

    def settle(self, answer: Answer) -> bool:
        if self.answer is not None:
            return False
        self.answer = answer
        self.answered.set()
        return True


class Choices:
    """The open questions of one channel."""

    def __init__(self) -> None:
        self._open: dict[str, Question] = {}

    def ask(
        self, thread: str, options: Sequence[str], askees: frozenset[str] = frozenset()
    ) -> Question:
        question = Question(thread, tuple(options), askees)
        while question.token in self._open:  # pragma: no cover - 32 random bits
            question.token = secrets.token_hex(4)
        self._open[question.token] = question
        return question

    def close(self, question: Question) -> None:
        self._open.pop(question.token, None)

    def waiting(self, thread: str) -> bool:
        """Whether a question is open in ``thread`` (then the thread's text
        replies are read, even in a group the bot does not read whole)."""
        return any(q.thread == thread for q in self._open.values())

    def press(self, data: str, user_id: str, by: str, *, admin: bool) -> str:
        """A choice button pressed; the note to show the presser."""
        _, _, rest = data.partition(":")
        token, _, number = rest.partition(":")
        question = self._open.get(token)
        if question is None or not number.isdigit() or int(number) >= len(question.options):
            return "This question is closed."
        if not question.may_answer(user_id, admin):
            return "This question is for someone else."
        if not question.settle(Answer(int(number), by)):
            return "It was answered already."
        return f"You chose: {question.options[int(number)]}"

    def reply(self, thread: str, text: str, user_id: str, by: str, *, admin: bool) -> bool:
        """A text reply in ``thread``: True when it answered a question
        (the newest open one there that the sender may answer and that it
        names), and is then not a message for anyone else."""
        for question in reversed(list(self._open.values())):
            if question.thread != thread or not question.may_answer(user_id, admin):
                continue
            index = pick(text, question.options)
            if index is not None and question.settle(Answer(index, by)):
                return True
        return False
