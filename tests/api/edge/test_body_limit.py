"""Bodies over MAX_BODY_BYTES are refused with 413, declared or streamed."""

import httpx
import pytest

from tests.factories import Api
from tests.routes import LOGIN, LOGIN_FORM, REFRESH, REGISTER


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        (REGISTER, "application/json"),
        (LOGIN, "application/json"),
        (LOGIN_FORM, "application/x-www-form-urlencoded"),
        (REFRESH, "application/json"),
    ],
)
async def test_huge_bodies_are_refused_with_413(api: Api, path: str, content_type: str) -> None:
    body = b"{" + b'"a": "' + b"x" * 200_000 + b'"}'
    response = await api.client.post(path, content=body, headers={"Content-Type": content_type})
    assert response.status_code == 413
    assert response.json()["code"] == "content_too_large"


async def test_huge_chunked_bodies_are_refused_with_413(api: Api) -> None:
    async def chunks() -> httpx.AsyncByteStream:  # type: ignore[misc]
        for _ in range(100):
            yield b"x" * 10_000

    response = await api.client.post(
        LOGIN, content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "content_too_large"
