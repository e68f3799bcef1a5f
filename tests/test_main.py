"""The app factory's wiring around the routes: CORS for the configured origins only, and
FastAPI's native OpenTelemetry, off unless OPENTELEMETRY_ENABLED (on, the global providers)."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.core.config import Settings
from tests.conftest import make_settings, serve
from tests.factories import Api
from tests.routes import HEALTH, LOGIN, ME, ROOT


@pytest.fixture(scope="module")
def exported_spans() -> Iterator[InMemorySpanExporter]:
    """The process's global tracer provider, as an operator's OpenTelemetry set-up installs it.

    OpenTelemetry accepts one global provider per process and cannot uninstall it: shut down
    at the end, it records nothing more. Apps with telemetry off, as in every other test,
    never ask for it.
    """
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        pytest.fail("another global tracer provider was installed first")
    yield exporter
    provider.shutdown()
    exporter.clear()


def _server_routes(exporter: InMemorySpanExporter) -> list[object]:
    return [
        span.attributes.get("http.route")
        for span in exporter.get_finished_spans()
        if span.kind is trace.SpanKind.SERVER and span.attributes is not None
    ]


async def test_requests_are_not_traced_by_default(
    tmp_path: Path, exported_spans: InMemorySpanExporter
) -> None:
    exported_spans.clear()
    async with serve(make_settings(f"sqlite:///{tmp_path}/auth.db")) as (_, api):
        assert (await api.client.get(HEALTH)).status_code == 200
    assert _server_routes(exported_spans) == []


async def test_telemetry_off_never_looks_for_providers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reason it is off: FastAPI asks for all three providers on every request unless all
    three signals are off."""
    asked: list[str] = []

    def recorded(name: str, original: Callable[[], object]) -> Callable[[], object]:
        def provider() -> object:
            asked.append(name)
            return original()

        return provider

    for module, name in (
        (trace, "get_tracer_provider"),
        (metrics, "get_meter_provider"),
        (_logs, "get_logger_provider"),
    ):
        monkeypatch.setattr(module, name, recorded(name, getattr(module, name)))
    async with serve(make_settings(f"sqlite:///{tmp_path}/auth.db")) as (_, api):
        assert (await api.client.get(HEALTH)).status_code == 200
    assert asked == []
    # The same request to an app with telemetry on does ask: the recording works.
    enabled = make_settings(f"sqlite:///{tmp_path}/auth.db", OPENTELEMETRY_ENABLED=True)
    async with serve(enabled) as (_, api):
        assert (await api.client.get(HEALTH)).status_code == 200
    assert set(asked) == {"get_tracer_provider", "get_meter_provider", "get_logger_provider"}


async def test_requests_are_traced_when_enabled(
    tmp_path: Path, exported_spans: InMemorySpanExporter
) -> None:
    exported_spans.clear()
    settings = make_settings(f"sqlite:///{tmp_path}/auth.db", OPENTELEMETRY_ENABLED=True)
    async with serve(settings) as (_, api):
        assert (await api.client.get(HEALTH)).status_code == 200
        assert (await api.client.get(ME)).status_code == 401
    assert _server_routes(exported_spans) == [HEALTH, ME]


async def test_cors_allows_configured_origins_only(api: Api, settings: Settings) -> None:
    allowed = settings.BACKEND_CORS_ORIGINS[0]
    preflight = await api.client.options(
        LOGIN,
        headers={"Origin": allowed, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == allowed
    exposed = await api.client.get(HEALTH, headers={"Origin": allowed})
    exposed_names = exposed.headers["access-control-expose-headers"].lower()
    for name in ("retry-after", "ratelimit", "ratelimit-policy", "x-request-id"):
        assert name in exposed_names
    evil = await api.client.options(
        LOGIN,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in evil.headers
    simple = await api.client.get(ROOT, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers
