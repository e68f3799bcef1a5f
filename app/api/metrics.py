"""Prometheus metrics: HTTP traffic by route and status, and the security event counters."""

import os
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import Scope

from app.core.events import SecurityEvent

_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """Owns one registry, so that several apps (tests, benchmarks) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ("method", "route"),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.security_events = Counter(
            "auth_security_events_total",
            "Security events by name (logins, registrations, refreshes, revocations...).",
            ("event",),
            registry=self.registry,
        )
        self.logins = Counter(
            "auth_logins_total", "Login attempts by outcome.", ("outcome",), registry=self.registry
        )
        self.registrations = Counter(
            "auth_registrations_total", "Accounts registered.", registry=self.registry
        )
        self.refreshes = Counter(
            "auth_refreshes_total",
            "Refresh attempts by outcome.",
            ("outcome",),
            registry=self.registry,
        )
        self.active_sessions = Gauge(
            "auth_active_sessions",
            "Live sessions in the session store.",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        # labels() takes a lock and builds a key on every call, so the children every event
        # and request counts into are looked up once. The (method, route, status) series seen
        # are few, bounded by the route table, and kept as they appear.
        outcome_counters: dict[SecurityEvent, Counter] = {
            SecurityEvent.LOGIN_SUCCEEDED: self.logins.labels(outcome="success"),
            SecurityEvent.LOGIN_FAILED: self.logins.labels(outcome="failure"),
            SecurityEvent.REGISTERED: self.registrations,
            SecurityEvent.REFRESHED: self.refreshes.labels(outcome="success"),
            SecurityEvent.REFRESH_REJECTED: self.refreshes.labels(outcome="rejected"),
            SecurityEvent.REFRESH_REUSE_DETECTED: self.refreshes.labels(outcome="reuse_detected"),
        }
        self._event_counters: dict[SecurityEvent, tuple[Counter, ...]] = {
            event: (
                self.security_events.labels(event=event.value),
                *((outcome_counters[event],) if event in outcome_counters else ()),
            )
            for event in SecurityEvent
        }
        self._request_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in _KNOWN_METHODS:
            method = "OTHER"
        series = self._request_series.get((method, route, status))
        if series is None:
            series = (
                self.requests.labels(method=method, route=route, status=str(status)),
                self.latency.labels(method=method, route=route),
            )
            self._request_series[(method, route, status)] = series
        series[0].inc()
        series[1].observe(seconds)

    def emit(self, event: SecurityEvent, **fields: object) -> None:
        for counter in self._event_counters[event]:
            counter.inc()

    async def render(self, count_active_sessions: Callable[[], Awaitable[int]]) -> bytes:
        """The exposition text, with the gauges read from the stores first.

        Under several workers (PROMETHEUS_MULTIPROC_DIR set, as run.py does) every worker writes
        its samples to that folder and the answer adds up all of them.
        """
        self.active_sessions.set(await count_active_sessions())
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            merged = CollectorRegistry()
            MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)


def route_template(scope: Scope) -> str:
    """The matched route's template, never the raw path, so that ids and junk URLs do not create
    new series; the router leaves the matched route in the scope."""
    return str(getattr(scope.get("route"), "path", "unmatched"))
