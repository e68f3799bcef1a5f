"""The security headers on every response: the policy, no caching, HSTS when HTTPS only, and
the documentation's own content policy."""

import pytest

from tests.api.edge.hardening import assert_hardened
from tests.conftest import make_settings, serve
from tests.factories import DEFAULT_PASSWORD, Api
from tests.routes import (
    DOCS,
    HEALTH,
    LOGIN,
    LOGIN_FORM,
    LOGOUT,
    ME,
    METRICS,
    OPENAPI,
    REFRESH,
    REGISTER,
    ROOT,
    SESSIONS,
    USERS,
)

ROUTES = [
    ("GET", ROOT),
    ("GET", HEALTH),
    ("GET", METRICS),
    ("POST", REGISTER),
    ("POST", LOGIN),
    ("POST", LOGIN_FORM),
    ("POST", REFRESH),
    ("POST", LOGOUT),
    ("GET", ME),
    ("PUT", ME),
    ("GET", USERS),
    ("PUT", f"{USERS}1"),
    ("GET", SESSIONS),
    ("DELETE", f"{SESSIONS}abc"),
    ("GET", OPENAPI),
    ("GET", "/no-such-route"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_sends_security_headers(api: Api, method: str, path: str) -> None:
    response = await api.client.request(method, path)
    assert_hardened(response)
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert "strict-transport-security" not in response.headers


async def test_token_responses_are_never_cached(api: Api) -> None:
    user = await api.new_user()
    response = await api.login(user.email, DEFAULT_PASSWORD)
    assert response.headers["cache-control"] == "no-store"
    assert (await api.refresh(user.tokens.refresh_token)).headers["cache-control"] == "no-store"


async def test_docs_get_a_csp_that_runs_only_the_services_own_scripts(api: Api) -> None:
    response = await api.client.get(DOCS)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "http" not in csp
    assert "frame-ancestors 'none'" in csp


async def test_pages_get_a_csp_without_any_script(api: Api) -> None:
    response = await api.client.get("/account/sign-in")
    csp = response.headers["content-security-policy"]
    assert "script-src" not in csp
    assert "default-src 'none'" in csp
    assert "form-action 'self'" in csp


async def test_hsts_when_https_only(database_url: str) -> None:
    async with serve(make_settings(database_url, HTTPS_ONLY=True)) as (_, api):
        response = await api.client.get(HEALTH)
        assert response.headers["strict-transport-security"].startswith("max-age=31536000")
