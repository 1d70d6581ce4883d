"""``GET /metrics``: what the bridge is doing, in the Prometheus text format.

Counts come from the conversation log as this process writes it (a hub
observer sees every event it stores), so they count this process's work
only: two bridges on one database each report their own. Gauges are read
when scraped. Each app gets a registry of its own, so two servers in one
process (tests) never mix their numbers.

========================================  =================================
``agentproc_turns_total``                 turns ended, by route and status
``agentproc_turn_duration_seconds``       how long turns ran, by route
``agentproc_messages_accepted_total``     messages written to the log, by route
``agentproc_queue_depth``                 messages waiting for a turn
``agentproc_running_turns``               turns running in this process
``agentproc_subscribers``                 event-stream readers connected
``agentproc_approvals_pending``           permission requests not yet answered
``agentproc_store_errors_total``          store operations that failed
========================================  =================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from bridge.conversations.dispatcher import Dispatcher
from bridge.store.records import CONVERSATION_CANCEL, MESSAGE, TURN_COMPLETED, TURN_QUEUED, Event

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

#: Turn durations, in seconds: from a second's tenth to an hour.
_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class Metrics:
    """The metrics of one server: observes ``dispatcher``'s log and renders
    the registry with :meth:`render`. ``api_store_errors`` counts store
    failures the HTTP API answered 503 for (read from ``api_store_errors``)."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        route_name: Callable[[Event], str],
        api_store_errors: Callable[[], int] = lambda: 0,
    ) -> None:
        self.registry = CollectorRegistry()
        self._route_name = route_name
        self._d = dispatcher
        self.api_store_errors = api_store_errors
        self._waiting: dict[str, int] = {}  # conversation -> messages waiting
        self.turns = Counter(
            "agentproc_turns",
            "Turns ended, by route and how they ended.",
            ["route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "agentproc_turn_duration_seconds",
            "How long turns ran, from start to end.",
            ["route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.accepted = Counter(
            "agentproc_messages_accepted",
            "Messages written to the log.",
            ["route"],
            registry=self.registry,
        )
        self.registry.register(_Gauges(self))
        dispatcher.hub.observers.append(self.observe)

    def observe(self, event: Event, remote: bool) -> None:
        """A hub observer: the queue from every event seen; the counts from
        what this process wrote."""
        cid = event.conversation
        if event.type == MESSAGE:
            self._waiting[cid] = self._waiting.get(cid, 0) + 1
        elif event.type == TURN_QUEUED:
            self._take(cid, len(event.data.get("messages", ())))
        elif event.type == CONVERSATION_CANCEL:
            self._take(cid, len(event.data.get("dropped", ())))
        if remote:
            return
        if event.type == MESSAGE:
            self.accepted.labels(self._route_name(event)).inc()
        elif event.type == TURN_COMPLETED:
            route = self._route_name(event)
            self.turns.labels(route, str(event.data.get("status", ""))).inc()
            self.duration.labels(route).observe(float(event.data.get("duration_ms") or 0) / 1000)

    def _take(self, cid: str, n: int) -> None:
        left = self._waiting.get(cid, 0) - n
        if left > 0:
            self._waiting[cid] = left
        else:
            self._waiting.pop(cid, None)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Gauges(Collector):
    """The numbers read at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Any]:
        m = self._m
        d = m._d
        yield _gauge(
            "agentproc_queue_depth", "Messages waiting for a turn.", sum(m._waiting.values())
        )
        yield _gauge("agentproc_running_turns", "Turns running in this process.", d.running_turns)
        yield _gauge(
            "agentproc_subscribers", "Event-stream readers connected.", d.hub.subscribers()
        )
        yield _gauge(
            "agentproc_approvals_pending",
            "Permission requests not yet answered.",
            d.pending_approvals,
        )
        errors = CounterMetricFamily(
            "agentproc_store_errors", "Store operations that failed (retried or reported)."
        )
        errors.add_metric([], d.store_errors + m.api_store_errors())
        yield errors


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)
