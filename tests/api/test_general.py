"""The unversioned routes: service info, health, and who may read the metrics."""

from pathlib import Path

from tests.conftest import make_settings, serve
from tests.factories import Api
from tests.routes import DOCS, HEALTH, LOGIN, ME, METRICS, OPENAPI, ROOT


async def test_root_describes_the_service(api: Api) -> None:
    response = await api.client.get(ROOT)
    assert response.status_code == 200
    body = response.json()
    assert body["docs"] == DOCS
    assert body["openapi"] == OPENAPI
    assert body["version"]


async def test_health_reports_the_database(api: Api) -> None:
    response = await api.client.get(HEALTH)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "session_store": "ok"}


def _corrupt_sqlite_files(folder: Path) -> None:
    """The file, its write-ahead log and its shared index all go bad under the open
    connections, as after a disk failure."""
    for path in folder.glob("auth.db*"):
        path.write_bytes(b"\xff" * path.stat().st_size)


async def test_health_is_503_when_the_database_is_unusable(tmp_path: Path) -> None:
    database = tmp_path / "auth.db"
    async with serve(make_settings(f"sqlite:///{database}")) as (_, api):
        assert (await api.client.get(HEALTH)).status_code == 200
        _corrupt_sqlite_files(tmp_path)
        response = await api.client.get(HEALTH)
        assert response.status_code == 503
        assert response.json() == {
            "status": "unavailable",
            "database": "down",
            "session_store": "down",
        }


async def test_metrics_are_for_admins(api: Api) -> None:
    assert (await api.client.get(METRICS)).status_code == 401
    user = await api.new_user()
    assert (await api.client.get(METRICS, headers=user.headers)).status_code == 403
    admin = await api.admin()
    await api.login(user.email, "wrong password entirely")
    await api.refresh(user.tokens.refresh_token)
    response = await api.client.get(METRICS, headers=admin.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'auth_logins_total{outcome="success"} 2.0' in text
    assert 'auth_logins_total{outcome="failure"} 1.0' in text
    assert "auth_registrations_total 1.0" in text
    assert 'auth_refreshes_total{outcome="success"} 1.0' in text
    assert 'auth_refreshes_total{outcome="reuse_detected"} 0.0' in text
    assert 'auth_security_events_total{event="refreshed"} 1.0' in text
    assert 'auth_security_events_total{event="login_failed"} 1.0' in text
    assert "auth_active_sessions 2.0" in text
    assert f'http_requests_total{{method="POST",route="{LOGIN}",status="401"}} 1.0' in text
    assert f'route="{ME}"' not in text or "user_id" not in text
    assert "http_request_duration_seconds_bucket" in text


async def test_metrics_token_grants_read_access(database_url: str) -> None:
    settings = make_settings(database_url, METRICS_TOKEN="scrape-token-" + "m" * 30)
    async with serve(settings) as (_, api):
        ok = await api.client.get(
            METRICS, headers={"Authorization": f"Bearer scrape-token-{'m' * 30}"}
        )
        assert ok.status_code == 200
        wrong = await api.client.get(METRICS, headers={"Authorization": "Bearer scrape-nope"})
        assert wrong.status_code == 401
