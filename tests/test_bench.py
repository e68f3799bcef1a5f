"""The benchmark's own settings still pass the service's production checks: a benchmark that
cannot start measures nothing, and no test would notice otherwise (it asserts nothing)."""

from pathlib import Path

import pytest

from app.core.config import Settings
from bench.benchmark import service_settings


@pytest.mark.parametrize("backend", ["embedded", "production"])
def test_the_benchmark_starts_the_service_with_settings_it_accepts(
    backend: str, tmp_path: Path
) -> None:
    settings = Settings.model_validate(service_settings(backend, tmp_path))
    assert settings.ENVIRONMENT == "production"
