"""Schemathesis over /openapi.json against a real uvicorn server: no 5xx, no schema violation."""

import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_USERNAME

ROOT = Path(__file__).resolve().parents[1]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    data = tmp_path_factory.mktemp("fuzz")
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "SECRET_KEY": "fuzz-signing-key-" + "f" * 40,
        "DATABASE_URL": f"sqlite:///{data}/auth.db",
        "ADMIN_EMAIL": ADMIN_EMAIL,
        "ADMIN_USERNAME": ADMIN_USERNAME,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "SECURE_COOKIES": "true",
        "ARGON2_MEMORY_COST_KIB": "8192",
        "ARGON2_TIME_COST": "1",
        "RATE_LIMIT_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.asgi:app", "--port", str(port), "--no-access-log"],
        cwd=data,
        env={**env, "PYTHONPATH": str(ROOT)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise RuntimeError("the server did not start")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def admin_headers(base_url: str) -> dict[str, str]:
    response = httpx.post(
        f"{base_url}/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_openapi_contract_holds(base_url: str, admin_headers: dict[str, str]) -> None:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 13

    def headers_for(case: schemathesis.Case[Any]) -> dict[str, str]:
        if case.path != "/api/v1/auth/logout":
            return admin_headers
        login = httpx.post(
            f"{base_url}/api/v1/auth/login",
            json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        )
        return {"Authorization": f"Bearer {login.json()['access_token']}"}

    exercised_without_input: list[str] = []
    for operation, mode in itertools.product(operations, GenerationMode):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(base_url=base_url, headers=headers_for(case), checks=CHECKS)

        try:
            exercise()
        except Unsatisfiable:
            # Operations without any input have no invalid variant to generate.
            assert mode is GenerationMode.NEGATIVE
            exercised_without_input.append(operation.label)
    assert set(exercised_without_input) == {
        "GET /",
        "GET /health",
        "GET /metrics",
        "GET /api/v1/users/me",
        "GET /api/v1/sessions/",
    }
