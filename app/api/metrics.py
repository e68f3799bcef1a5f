"""Prometheus metrics: HTTP traffic by route and status, and the security event counters."""

import os
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.events import SecurityEvent

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
        for event in SecurityEvent:
            self.security_events.labels(event=event.value)

    def emit(self, event: SecurityEvent, **fields: object) -> None:
        self.security_events.labels(event=event.value).inc()
        if event is SecurityEvent.LOGIN_SUCCEEDED:
            self.logins.labels(outcome="success").inc()
        elif event is SecurityEvent.LOGIN_FAILED:
            self.logins.labels(outcome="failure").inc()
        elif event is SecurityEvent.REGISTERED:
            self.registrations.inc()
        elif event is SecurityEvent.REFRESHED:
            self.refreshes.labels(outcome="success").inc()
        elif event in (SecurityEvent.REFRESH_REJECTED, SecurityEvent.REFRESH_REUSE_DETECTED):
            self.refreshes.labels(outcome=event.value.removeprefix("refresh_")).inc()

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


def _route_template(scope: Scope) -> str:
    # Label by the matched route's template, never the raw path, so that ids and junk URLs do
    # not create new series; the router leaves the matched route in the scope.
    return str(getattr(scope.get("route"), "path", "unmatched"))


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = _route_template(scope)
            method = scope["method"]
            self.metrics.requests.labels(method=method, route=route, status=str(status)).inc()
            self.metrics.latency.labels(method=method, route=route).observe(
                time.perf_counter() - started
            )
