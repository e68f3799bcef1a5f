"""Schemathesis over /openapi.json against a real uvicorn server: no 5xx, no schema violation."""

import itertools
from collections.abc import Iterator
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

from tests.factories import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.routes import HEALTH, LOGIN, LOGOUT, ME, METRICS, MY_DATA, OPENAPI, ROOT, SESSIONS
from tests.servers import running_server

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("fuzz")
    with running_server(workdir, {"RATE_LIMIT_ENABLED": "false"}) as (url, _):
        yield url


@pytest.fixture(scope="module")
def admin_headers(base_url: str) -> dict[str, str]:
    response = httpx.post(
        f"{base_url}{LOGIN}", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_openapi_contract_holds(base_url: str, admin_headers: dict[str, str]) -> None:
    schema = schemathesis.openapi.from_url(f"{base_url}{OPENAPI}")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 13
    # The admin update can change the admin's own password or email, after which nobody could
    # sign in as the admin to exercise logout: the updates go last, whatever the routes' order.
    operations.sort(key=lambda operation: operation.method.upper() == "PUT")

    def headers_for(case: schemathesis.Case[Any]) -> dict[str, str]:
        if case.path != LOGOUT:
            return admin_headers
        login = httpx.post(
            f"{base_url}{LOGIN}",
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
        f"GET {ROOT}",
        f"GET {HEALTH}",
        f"GET {METRICS}",
        f"GET {ME}",
        f"GET {MY_DATA}",
        f"GET {SESSIONS}",
    }
