"""Prometheus metrics: what the service is doing, for the operator's monitoring.

With several workers each process writes its figures to files in
PROMETHEUS_MULTIPROC_DIR, which the supervisor (app/server.py) creates and removes; the
worker that answers `GET /metrics` adds them all up. prometheus-client chooses between
in-memory and file-backed values when it is first imported, so the supervisor sets the
variable before it starts any worker.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

STREAMS_OPEN = Gauge(
    "sprintboard_streams_open",
    "Live streams open (SSE and WebSocket, pages and integrations).",
    multiprocess_mode="livesum",
)
EVENTS = Counter("sprintboard_events", "Events committed by this service.")
DELIVERIES = Counter(
    "sprintboard_deliveries", "Frames queued to streams (one per stream per event)."
)
FANOUT_LAG = Histogram(
    "sprintboard_fanout_lag_seconds",
    "From an event's commit to its frame queued on every stream of the instance.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
HTTP_REQUESTS = Counter(
    "sprintboard_http_requests",
    "Requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "sprintboard_http_request_duration_seconds",
    "Time to answer a request (to the start of the body, for a stream).",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


@contextlib.contextmanager
def counting(gauge: Gauge) -> Iterator[None]:
    """One more on `gauge` for as long as the `with` lasts."""
    gauge.inc()
    try:
        yield
    finally:
        gauge.dec()


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus's text format, of every worker, and their content type."""
    if os.environ.get(MULTIPROC_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def is_loopback(address: str | None) -> bool:
    """127.0.0.0/8 or ::1, also written as an IPv4-mapped IPv6 address."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback
