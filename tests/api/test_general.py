"""Service info, health, metrics and CORS."""

from pathlib import Path

from fastapi import FastAPI

from app.core.config import Settings
from tests.conftest import make_settings, serve
from tests.factories import Api


async def test_root_describes_the_service(api: Api) -> None:
    response = await api.client.get("/")
    assert response.status_code == 200
    body = response.json()
    assert body["docs"] == "/docs"
    assert body["openapi"] == "/openapi.json"
    assert body["version"]


async def test_docs_and_openapi_are_served(api: Api) -> None:
    assert (await api.client.get("/docs")).status_code == 200
    spec = (await api.client.get("/openapi.json")).json()
    for path in (
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/login-form",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/users/me",
        "/api/v1/users/",
        "/api/v1/users/{user_id}",
        "/api/v1/sessions/",
        "/api/v1/sessions/{session_id}",
        "/health",
        "/metrics",
    ):
        assert path in spec["paths"], path
    # Every route that needs a caller declares the one bearer scheme, and only those.
    declared: list[dict[str, list[str]]] = [{"OAuth2PasswordBearer": []}]
    assert set(spec["components"]["securitySchemes"]) == {"OAuth2PasswordBearer"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            signing_in = path.startswith("/api/v1/auth/") and not path.endswith("/logout")
            public = path in {"/", "/health"} or signing_in
            assert operation.get("security") == (None if public else declared), (method, path)


async def test_health_reports_the_database(api: Api) -> None:
    response = await api.client.get("/health")
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
        assert (await api.client.get("/health")).status_code == 200
        _corrupt_sqlite_files(tmp_path)
        response = await api.client.get("/health")
        assert response.status_code == 503
        assert response.json() == {
            "status": "unavailable",
            "database": "down",
            "session_store": "down",
        }


async def test_metrics_are_for_admins(api: Api) -> None:
    assert (await api.client.get("/metrics")).status_code == 401
    user = await api.new_user()
    assert (await api.client.get("/metrics", headers=user.headers)).status_code == 403
    admin = await api.admin()
    await api.login(user.email, "wrong password entirely")
    await api.refresh(user.tokens.refresh_token)
    response = await api.client.get("/metrics", headers=admin.headers)
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
    assert 'http_requests_total{method="POST",route="/api/v1/auth/login",status="401"} 1.0' in text
    assert 'route="/api/v1/users/me"' not in text or "user_id" not in text
    assert "http_request_duration_seconds_bucket" in text


async def test_metrics_route_labels_are_templates_not_raw_paths(api: Api) -> None:
    admin = await api.admin()
    await api.client.put("/api/v1/users/424242", json={}, headers=admin.headers)
    await api.client.get("/no/such/path/123")
    text = (await api.client.get("/metrics", headers=admin.headers)).text
    assert 'route="/api/v1/users/{user_id}"' in text
    assert "424242" not in text
    assert 'route="unmatched"' in text
    assert "/no/such/path" not in text


async def test_metrics_method_labels_cannot_be_invented_by_clients(api: Api) -> None:
    admin = await api.admin()
    for index in range(3):
        await api.client.request(f"PROBE{index}", "/api/v1/users/me")
    text = (await api.client.get("/metrics", headers=admin.headers)).text
    assert "PROBE" not in text
    assert 'http_requests_total{method="OTHER",route="/api/v1/users/me",status="405"} 3.0' in text


async def test_metrics_token_grants_read_access(database_url: str) -> None:
    settings = make_settings(database_url, METRICS_TOKEN="scrape-token-" + "m" * 30)
    async with serve(settings) as (_, api):
        ok = await api.client.get(
            "/metrics", headers={"Authorization": f"Bearer scrape-token-{'m' * 30}"}
        )
        assert ok.status_code == 200
        wrong = await api.client.get("/metrics", headers={"Authorization": "Bearer scrape-nope"})
        assert wrong.status_code == 401


async def test_cors_allows_configured_origins_only(api: Api, settings: Settings) -> None:
    allowed = settings.BACKEND_CORS_ORIGINS[0]
    preflight = await api.client.options(
        "/api/v1/auth/login",
        headers={"Origin": allowed, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == allowed
    exposed = await api.client.get("/health", headers={"Origin": allowed})
    exposed_names = exposed.headers["access-control-expose-headers"].lower()
    for name in ("retry-after", "ratelimit", "ratelimit-policy", "x-request-id"):
        assert name in exposed_names
    evil = await api.client.options(
        "/api/v1/auth/login",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in evil.headers
    simple = await api.client.get("/", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


async def test_unknown_routes_and_methods_use_the_error_body(api: Api, app: FastAPI) -> None:
    missing = await api.client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {"code": "not_found", "detail": "Not Found"}
    wrong_method = await api.client.delete("/api/v1/auth/login")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "method_not_allowed"
