"""Prometheus metrics of one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

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
OUTBOX_DEPTH = Gauge("cb_outbox_depth", "Pushes waiting in the outbox", registry=REGISTRY)
OUTBOX_SENT = Counter("cb_outbox_sent_total", "Pushes sent, by channel and way", ["channel", "via"], registry=REGISTRY)
OUTBOX_FAILURES = Counter(
    "cb_outbox_failures_total", "Failed push attempts, by channel", ["channel"], registry=REGISTRY
)
OUTBOX_DEAD = Counter(
    "cb_outbox_dead_total", "Pushes given up (dead), by channel", ["channel"], registry=REGISTRY
)
TICKETS = Counter("cb_tickets_total", "Tickets created, by kind", ["kind"], registry=REGISTRY)
