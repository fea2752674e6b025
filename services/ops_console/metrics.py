"""Reading a service's ``/metrics``: request rate, error rate and p95 latency between two scrapes.

Counters only grow, so a rate is the difference between two scrapes over the time between
them; a restarted service (a counter that went down) starts afresh. HTTP and bus traffic
are added together, as both are requests the service answered; the probes themselves
(``/livez``, ``/readyz``, ``/metrics`` and the bus ``ping``) are left out, or the console
would mostly measure its own polling. Errors are the failures of the service itself: HTTP
5xx and bus requests answered with an internal or unavailable problem; a refused or
invalid request is the caller's error, not the service's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from shared.errors import Problem, Unavailable

PROBE_ROUTES = frozenset({"/livez", "/readyz", "/metrics"})
SERVER_ERROR_OUTCOMES = frozenset(cls.type.rsplit(":", 1)[-1] for cls in (Problem, Unavailable))


def _is_probe_operation(operation: str) -> bool:
    return operation.endswith(".ping")


@dataclass
class Scrape:
    """The cumulative figures of one scrape."""

    at: float
    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound → cumulative count
    outbox_backlog: float | None = None
    ready: float | None = None


@dataclass(frozen=True)
class Rates:
    requests_per_second: float | None
    error_ratio: float | None
    p95_seconds: float | None


def parse(text: str, at: float) -> Scrape:
    scrape = Scrape(at=at)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "renkei_http_requests_total" and labels.get("route") not in PROBE_ROUTES:
                scrape.requests += sample.value
                if labels.get("status", "").startswith("5"):
                    scrape.errors += sample.value
            elif sample.name == "renkei_bus_requests_total" and not _is_probe_operation(labels.get("operation", "")):
                scrape.requests += sample.value
                if labels.get("outcome") in SERVER_ERROR_OUTCOMES:
                    scrape.errors += sample.value
            elif (sample.name == "renkei_http_request_duration_seconds_bucket" and labels.get("route") not in PROBE_ROUTES) or (sample.name == "renkei_bus_request_duration_seconds_bucket" and not _is_probe_operation(
                labels.get("operation", "")
            )):
                _add_bucket(scrape, labels["le"], sample.value)
            elif sample.name == "renkei_outbox_backlog":
                scrape.outbox_backlog = sample.value
            elif sample.name == "renkei_ready":
                scrape.ready = sample.value
    return scrape


def _add_bucket(scrape: Scrape, le: str, value: float) -> None:
    bound = math.inf if le in ("+Inf", "inf") else float(le)
    scrape.buckets[bound] = scrape.buckets.get(bound, 0.0) + value


def rates(previous: Scrape | None, current: Scrape) -> Rates:
    """The figures between two scrapes; without an earlier one (or after a restart), none."""
    if previous is None or current.at <= previous.at or current.requests < previous.requests:
        return Rates(None, None, None)
    elapsed = current.at - previous.at
    requests = current.requests - previous.requests
    errors = max(current.errors - previous.errors, 0.0)
    if requests <= 0:
        return Rates(0.0, None, None)
    delta = {bound: count - previous.buckets.get(bound, 0.0) for bound, count in current.buckets.items()}
    return Rates(requests / elapsed, errors / requests, quantile(0.95, delta))


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The ``q`` quantile of a cumulative histogram, interpolated within its bucket as
    Prometheus's ``histogram_quantile`` does; the highest finite bound when it falls in +Inf."""
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return bounds[-1]
