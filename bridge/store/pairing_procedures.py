"""The store's pairing methods, written once over a transaction (see
:mod:`bridge.store.procedures`; the rules are in :mod:`bridge.store.pairing`)."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TypeVar

from . import pairing as rules
from .records import PAIRING_APPROVED, PAIRING_PENDING, Pairing
from .transaction import Transaction

__all__ = ["PairingProcedures"]

T = TypeVar("T")


class PairingProcedures(abc.ABC):
    """Mixed into :class:`~bridge.store.procedures.TransactionStore`."""

    @abc.abstractmethod
    async def _read(self, work: Callable[[Transaction], T]) -> T: ...

    @abc.abstractmethod
    async def _write(self, work: Callable[[Transaction], T]) -> T: ...

    async def request_pairing(self, channel: str, user_id: str, name: str) -> Pairing | None:
        def work(tx: Transaction) -> Pairing | None:
            everyone = tx.pairings(channel, None)
            waiting = sum(
                1 for p in everyone if p.status == PAIRING_PENDING and rules.is_live(p, tx.now)
            )
            mine = [p for p in everyone if p.user_id == user_id]
            taken = {p.code for p in everyone}
            found, new = rules.request(
                mine, waiting, channel=channel, user_id=user_id, name=name, now=tx.now, taken=taken
            )
            if found is not None and new:
                tx.save_pairing(found)
            return found

        return await self._write(work)

    async def decide_pairing(self, code: str, *, approve: bool, by: str) -> Pairing | None:
        def work(tx: Transaction) -> Pairing | None:
            decided = rules.decide(
                tx.pairing(rules.normal_code(code)), approve=approve, by=by, now=tx.now
            )
            if decided is not None:
                tx.save_pairing(decided)
            return decided

        return await self._write(work)

    async def pairings(self, channel: str | None = None) -> list[Pairing]:
        def work(tx: Transaction) -> list[Pairing]:
            return [p for p in tx.pairings(channel, None) if rules.is_live(p, tx.now)]

        return await self._read(work)

    async def paired(self, channel: str, user_id: str) -> bool:
        def work(tx: Transaction) -> bool:
            return any(p.status == PAIRING_APPROVED for p in tx.pairings(channel, user_id))

        return await self._read(work)

    async def unpair(self, channel: str, user_id: str) -> bool:
        return await self._write(lambda tx: tx.delete_pairings(channel, user_id) > 0)
