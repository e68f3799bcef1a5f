"""The request id: a client's own echoed when it is safe to, a new one otherwise."""

from tests.factories import Api
from tests.routes import HEALTH


async def test_request_id_is_echoed_or_generated(api: Api) -> None:
    echoed = await api.client.get(HEALTH, headers={"X-Request-ID": "trace-abc.123"})
    assert echoed.headers["x-request-id"] == "trace-abc.123"
    generated = await api.client.get(HEALTH)
    assert len(generated.headers["x-request-id"]) == 32
    hostile = await api.client.get(HEALTH, headers={"X-Request-ID": "bad id\r\ninjected: 1"})
    assert hostile.headers["x-request-id"] != "bad id\r\ninjected: 1"
    assert "injected" not in hostile.headers
