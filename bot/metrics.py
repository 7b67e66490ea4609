"""Prometheus metrics: of this process, or of every worker of `serve --workers N`.

With several workers the parent sets PROMETHEUS_MULTIPROC_DIR to a fresh directory before
starting them: prometheus_client then keeps each worker's values in files there, and /metrics
adds up every worker's (and those of workers that exited), whichever worker answers the scrape.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

REGISTRY = CollectorRegistry()
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

MESSAGES = Counter(
    "cb_messages_total", "Inbound messages by WeChat type and intent", ["type", "intent"], registry=REGISTRY
)
REPLY_LATENCY = Histogram(
    "cb_reply_seconds",
    "Time from request to passive reply on /wechat",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
REJECTED = Counter("cb_rejected_total", "Requests refused, by reason", ["reason"], registry=REGISTRY)
DUPLICATES = Counter("cb_duplicates_total", "WeChat retries answered from the first answer", registry=REGISTRY)
OUTBOX_DEPTH = Gauge(  # the same table seen by every worker: the latest reading of a live one
    "cb_outbox_depth", "Pushes waiting in the outbox", multiprocess_mode="livemostrecent", registry=REGISTRY
)
OUTBOX_SENT = Counter("cb_outbox_sent_total", "Pushes sent, by channel and way", ["channel", "via"], registry=REGISTRY)
OUTBOX_FAILURES = Counter(
    "cb_outbox_failures_total", "Failed push attempts, by channel", ["channel"], registry=REGISTRY
)
OUTBOX_MAYBE_DELIVERED = Counter(  # WeCom/WeChat take no idempotency key: the retry may deliver it twice
    "cb_outbox_maybe_delivered_total", "Push attempts that timed out after sending (maybe delivered), by channel",
    ["channel"], registry=REGISTRY,
)
OUTBOX_DEAD = Counter(
    "cb_outbox_dead_total", "Pushes given up (dead), by channel", ["channel"], registry=REGISTRY
)
TICKETS = Counter("cb_tickets_total", "Tickets created, by kind", ["kind"], registry=REGISTRY)


def exposition_registry() -> CollectorRegistry:
    """What /metrics shows: every worker's values when they share a multiprocess directory,
    else this process's."""
    path = os.environ.get(MULTIPROC_ENV)
    if not path:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    return registry
