"""The metrics label requests by route template and by known methods only, whatever clients send."""

from tests.factories import Api
from tests.routes import ME, METRICS, USER, USERS


async def test_metrics_route_labels_are_templates_not_raw_paths(api: Api) -> None:
    admin = await api.admin()
    await api.client.put(f"{USERS}424242", json={}, headers=admin.headers)
    await api.client.get("/no/such/path/123")
    text = (await api.client.get(METRICS, headers=admin.headers)).text
    assert f'route="{USER}"' in text
    assert "424242" not in text
    assert 'route="unmatched"' in text
    assert "/no/such/path" not in text


async def test_metrics_method_labels_cannot_be_invented_by_clients(api: Api) -> None:
    admin = await api.admin()
    for index in range(3):
        await api.client.request(f"PROBE{index}", ME)
    text = (await api.client.get(METRICS, headers=admin.headers)).text
    assert "PROBE" not in text
    assert f'http_requests_total{{method="OTHER",route="{ME}",status="405"}} 3.0' in text
