"""FastAPI's native OpenTelemetry: off unless OPENTELEMETRY_ENABLED, then on the global providers."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import make_settings, serve


@pytest.fixture(scope="module")
def exported_spans() -> Iterator[InMemorySpanExporter]:
    """The process's global tracer provider, as an operator's OpenTelemetry set-up installs it.

    OpenTelemetry accepts one global provider per process; apps with telemetry off, as in
    every other test, ignore it.
    """
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        pytest.fail("another global tracer provider was installed first")
    yield exporter
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
        assert (await api.client.get("/health")).status_code == 200
    assert _server_routes(exported_spans) == []


async def test_requests_are_traced_when_enabled(
    tmp_path: Path, exported_spans: InMemorySpanExporter
) -> None:
    exported_spans.clear()
    settings = make_settings(f"sqlite:///{tmp_path}/auth.db", OPENTELEMETRY_ENABLED=True)
    async with serve(settings) as (_, api):
        assert (await api.client.get("/health")).status_code == 200
        assert (await api.client.get("/api/v1/users/me")).status_code == 401
    assert _server_routes(exported_spans) == ["/health", "/api/v1/users/me"]
