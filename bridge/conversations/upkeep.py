"""The dispatcher's background work, one task each: reading back what other
processes sharing the store wrote, and renewing the leases of the turns
running here.

Split from :mod:`.dispatcher` (which admits messages and routes events) and
:mod:`.lane` (which runs one conversation's turns).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from .dispatcher import Dispatcher

__all__ = ["poll", "renew_leases"]

log = logging.getLogger("bridge.conversations")


async def poll(d: Dispatcher) -> None:
    """One task per dispatcher: read back what other processes wrote, for
    the conversations this one serves or reads, and show the hub's observers
    any events it jumped over (see :meth:`Hub.fill_gaps`)."""
    seen = -1
    failing = ""
    while True:
        await anyio.sleep(d._poll_secs)
        try:
            await d.hub.fill_gaps()
            version = await d.store.version()
            if version == seen:
                continue
            # One read says which conversations moved; only those are read.
            heads = await d.store.heads({*d._served, *d.hub.watched()})
            for cid, head in heads.items():
                if head > d.hub.known(cid):
                    await d.hub.refresh(cid)
            seen = version
            failing = ""
        except Exception as exc:  # tried again at the next poll; said once
            d.store_errors += 1
            if str(exc) != failing:
                failing = str(exc)
                log.warning("cannot read what other processes wrote: %s", exc)


async def renew_leases(d: Dispatcher) -> None:
    """One task per dispatcher: every third of the lease, renew the lease of
    each conversation whose turn runs here; a lease found lost stops its turn."""
    while True:
        await anyio.sleep(d._lease_secs / 3)
        for job in list(d._jobs.values()):
            try:
                ok = await d.store.heartbeat(job.conversation, d.owner, lease_secs=d._lease_secs)
            except Exception as exc:
                d.store_errors += 1
                log.warning(
                    "conversation %s: cannot renew its lease: %s",
                    job.conversation,
                    exc,
                    extra={"conversation": job.conversation, "turn": job.turn},
                )
                continue
            if not ok:
                job.fire("cancel", "this bridge lost the conversation to another one")
