"""Forwarding headers, tested as attacks: only a trusted proxy's, and only the configured one,
choose the client address that budgets and sessions record."""

from tests.attacks.guesses import assert_429, behind_proxy, exact_budgets, logins
from tests.conftest import serve
from tests.factories import DEFAULT_PASSWORD
from tests.routes import LOGIN, SESSIONS


async def test_spoofed_forwarded_headers_do_not_change_the_key(database_url: str) -> None:
    settings = exact_budgets(database_url, RATE_LIMIT_LOGIN="3/minute")
    async with serve(settings) as (_, api):
        for i in range(3):
            response = await api.client.post(
                LOGIN,
                json={"email": "a@example.com", "password": "x" * 10},
                headers={"X-Forwarded-For": f"10.9.9.{i}", "Forwarded": f"for=10.8.8.{i}"},
            )
            assert response.status_code == 401
        spoofed = await api.client.post(
            LOGIN,
            json={"email": "b@example.com", "password": "x" * 10},
            headers={"X-Forwarded-For": "192.0.2.77"},
        )
        assert_429(spoofed)


async def test_trusted_proxy_forwarding_is_honoured(database_url: str) -> None:
    settings = exact_budgets(
        database_url, RATE_LIMIT_LOGIN="2/minute", TRUSTED_PROXIES=["203.0.113.0/24"]
    )
    async with serve(settings) as (_, api):
        for client in ("192.0.2.1", "192.0.2.2"):
            statuses = [r.status_code for r in await logins(api, 2, **{"X-Forwarded-For": client})]
            assert statuses == [401, 401]
        assert_429((await logins(api, 1, **{"X-Forwarded-For": "evil, 192.0.2.1"}))[0])
        user = await api.new_user()
        listed = await api.client.get(SESSIONS, headers=user.headers)
        assert listed.json()[0]["ip_address"] == "203.0.113.7"
        via_proxy = await api.client.post(
            LOGIN,
            json={"email": user.email, "password": DEFAULT_PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.23"},
        )
        assert via_proxy.status_code == 200
        sessions = await api.client.get(SESSIONS, headers=user.headers)
        assert "198.51.100.23" in {s["ip_address"] for s in sessions.json()}


async def test_only_the_configured_forwarding_header_is_read(database_url: str) -> None:
    settings = behind_proxy(database_url, RATE_LIMIT_LOGIN="2/minute", LOGIN_LOCKOUT_THRESHOLD=0)
    async with serve(settings) as (_, api):
        for index in range(2):
            response = await api.client.post(
                LOGIN,
                json={"email": "a@example.com", "password": "x" * 10},
                headers={"X-Forwarded-For": "192.0.2.10", "Forwarded": f"for=10.9.9.{index}"},
            )
            assert response.status_code == 401
        spoofed = await api.client.post(
            LOGIN,
            json={"email": "b@example.com", "password": "x" * 10},
            headers={"X-Forwarded-For": "192.0.2.10", "Forwarded": "for=198.51.100.1"},
        )
        assert_429(spoofed)


async def test_every_line_of_a_repeated_forwarding_header_counts(database_url: str) -> None:
    settings = behind_proxy(database_url, RATE_LIMIT_LOGIN="2/minute", LOGIN_LOCKOUT_THRESHOLD=0)
    async with serve(settings) as (_, api):
        statuses = []
        for index in range(3):
            # The client's own line comes first; the proxy appends the real address after it.
            response = await api.client.post(
                LOGIN,
                json={"email": "a@example.com", "password": "x" * 10},
                headers=[("X-Forwarded-For", f"10.7.7.{index}"), ("X-Forwarded-For", "192.0.2.20")],
            )
            statuses.append(response.status_code)
        assert statuses == [401, 401, 429]
