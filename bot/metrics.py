"""What the server counts for Prometheus, and the text ``GET /metrics`` answers with.

Counters and histograms are kept in this process, or, when ``PROMETHEUS_MULTIPROC_DIR`` names
a directory in the environment the server starts with (several worker processes), in files
there that every worker writes and any worker's scrape adds up (prometheus-client's
multiprocess mode). Gauges would need a rule for combining processes; the only ones here
(the outbox's depth, the database being up) are read from the database at scrape time, so
they are right whichever process answers.

Labels take values from short fixed lists (channels, reply kinds, route patterns, job names),
never from what a citizen typed: the number of series stays small.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Sequence

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from handlers.messages import Reply
from storage.applications import OutboxDepth

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# A "_created" series beside every counter would double the scrape for nothing.
disable_created_metrics()  # type: ignore[no-untyped-call]
CONFIDENCE_BUCKETS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)

UPDATES = Counter("motcua_updates", "Citizens' messages handled, per channel; 'unavailable': "
                  "the database was away and the message must come again",
                  ["channel", "outcome"])
REPLIES = Counter("motcua_replies", "Replies given, per channel and kind (procedure, clarify, "
                  "decline, handed_over, status, lookup_failed, lookup_refused, menu, …)",
                  ["channel", "kind"])
CONFIDENCE = Histogram("motcua_match_confidence", "Score of the best match (0-1) of a typed "
                       "question answered with a procedure or asked back (clarify)",
                       ["kind"], buckets=CONFIDENCE_BUCKETS)
HANDOVERS = Counter("motcua_handovers", "Conversations passed to staff", ["channel"])
LOOKUPS = Counter("motcua_status_lookups", "Status lookups by outcome: found, failed (no "
                  "application matches code and phone), refused (too many failures)",
                  ["outcome"])
SENT = Counter("motcua_messages_sent", "Messages a channel's API accepted (replies, outbox)",
               ["channel"])
THROTTLED = Counter("motcua_channel_throttled", "HTTP 429 answers received from a channel's "
                    "API", ["channel"])
OUTBOX = Counter("motcua_outbox_messages", "Outbox messages tried or closed, per channel and "
                 "outcome (sent, retry, throttled, blocked, undeliverable, expired, "
                 "unreachable)", ["channel", "outcome"])
REFUSED = Counter("motcua_requests_refused", "Requests refused with 429 for going over a rate "
                  "limit, per limit", ["limit"])
JOBS = Counter("motcua_job_runs", "Periodic job runs, per job and outcome (ok, failed, "
               "skipped: another instance had the slot)", ["job", "outcome"])
LATENCY = Histogram("motcua_request_duration_seconds", "Time to answer an HTTP request, per "
                    "route pattern, method and status class", ["route", "method", "status"])


def reply_kind(reply: Reply) -> str:
    """A reply's kind as counted: its intent, with a hand-over and a refused lookup told
    apart ("repeated": the same replies given again to a message sent again)."""
    if reply.intent == "staff" and reply.detail == "handed_over":
        return "handed_over"
    if reply.intent == "lookup_failed" and reply.detail == "refused":
        return "lookup_refused"
    return reply.intent or "repeated"


_LOOKUP_OUTCOMES = {"status": "found", "lookup_failed": "failed", "lookup_refused": "refused"}


def observe_turn(channel: str, replies: Sequence[Reply]) -> None:
    """Count one message a channel had answered by the conversation core."""
    UPDATES.labels(channel, "answered").inc()
    for reply in replies:
        kind = reply_kind(reply)
        REPLIES.labels(channel, kind).inc()
        if reply.score is not None:
            CONFIDENCE.labels(reply.intent).observe(reply.score)
        if kind == "handed_over":
            HANDOVERS.labels(channel).inc()
        if kind in _LOOKUP_OUTCOMES:
            LOOKUPS.labels(_LOOKUP_OUTCOMES[kind]).inc()


def observe_unavailable(channel: str) -> None:
    """Count a message left unanswered because the database was away."""
    UPDATES.labels(channel, "unavailable").inc()


class _Scraped(Collector):
    """The gauges read from the database for one scrape."""

    def __init__(self, depth: OutboxDepth | None, now: dt.datetime) -> None:
        self.depth, self.now = depth, now

    def collect(self) -> Iterator[Metric]:
        depth = self.depth
        yield GaugeMetricFamily("motcua_database_up",
                                "1 when the database answered this scrape, else 0",
                                value=0 if depth is None else 1)
        if depth is None:
            return
        yield GaugeMetricFamily("motcua_outbox_pending", "Unsent outbox messages",
                                value=depth.pending)
        yield GaugeMetricFamily("motcua_outbox_due", "Unsent outbox messages due now",
                                value=depth.due)
        age = 0.0 if depth.oldest is None else (self.now - depth.oldest).total_seconds()
        yield GaugeMetricFamily("motcua_outbox_oldest_seconds",
                                "Age of the oldest unsent outbox message (0: none)",
                                value=max(0.0, age))


def render(depth: OutboxDepth | None, *, now: dt.datetime) -> bytes:
    """The exposition text: this process's (or all workers') counters and histograms, and
    the outbox's depth as read now (``None``: the database did not answer)."""
    if os.environ.get(MULTIPROC_ENV):
        counted = CollectorRegistry()
        MultiProcessCollector(counted)  # type: ignore[no-untyped-call]
    else:
        counted = REGISTRY
    scraped = CollectorRegistry()
    scraped.register(_Scraped(depth, now))
    return generate_latest(counted) + generate_latest(scraped)
