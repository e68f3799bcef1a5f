"""Rate limits, the login lockout and client addresses behind proxies, tested as attacks."""

import asyncio
from typing import Any

import httpx

from tests.conftest import make_settings, serve
from tests.factories import DEFAULT_PASSWORD, Api

LOGIN = "/api/v1/auth/login"


def _assert_429(response: httpx.Response, code: str = "rate_limited") -> None:
    assert response.status_code == 429, response.text
    assert response.json()["code"] == code
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["ratelimit-policy"].count(";") == 2
    assert response.headers["ratelimit"].endswith(f"t={response.headers['retry-after']}")


async def _logins(api: Api, count: int, **headers: str) -> list[httpx.Response]:
    return [
        await api.client.post(
            LOGIN, json={"email": f"nobody{i}@example.com", "password": "x" * 10}, headers=headers
        )
        for i in range(count)
    ]


def _settings(database_url: str, **overrides: Any) -> Any:
    # The exact counts asserted here need the exact strategy: the default sliding-window
    # counter floors the previous window's weighted count, so a test that straddles a minute
    # boundary would be let one request further.
    return make_settings(database_url, RATE_LIMIT_STRATEGY="moving-window", **overrides)


async def test_login_budget_per_address(database_url: str) -> None:
    async with serve(_settings(database_url, RATE_LIMIT_LOGIN="3/minute")) as (_, api):
        responses = await _logins(api, 4)
        assert [r.status_code for r in responses[:3]] == [401, 401, 401]
        _assert_429(responses[3])
        assert responses[3].headers["ratelimit-policy"] == '"login";q=3;w=60'
    async with serve(
        _settings(database_url, RATE_LIMIT_LOGIN="3/minute"), client_ip="198.51.100.9"
    ) as (_, other):
        assert (await _logins(other, 1))[0].status_code == 401


async def test_form_login_shares_the_login_budget(database_url: str) -> None:
    async with serve(_settings(database_url, RATE_LIMIT_LOGIN="2/minute")) as (_, api):
        await _logins(api, 2)
        form = await api.client.post(
            "/api/v1/auth/login-form", data={"username": "a@example.com", "password": "x" * 10}
        )
        _assert_429(form)


async def test_spoofed_forwarded_headers_do_not_change_the_key(database_url: str) -> None:
    settings = _settings(database_url, RATE_LIMIT_LOGIN="3/minute")
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
        _assert_429(spoofed)


async def test_trusted_proxy_forwarding_is_honoured(database_url: str) -> None:
    settings = _settings(
        database_url, RATE_LIMIT_LOGIN="2/minute", TRUSTED_PROXIES=["203.0.113.0/24"]
    )
    async with serve(settings) as (_, api):
        for client in ("192.0.2.1", "192.0.2.2"):
            statuses = [r.status_code for r in await _logins(api, 2, **{"X-Forwarded-For": client})]
            assert statuses == [401, 401]
        _assert_429((await _logins(api, 1, **{"X-Forwarded-For": "evil, 192.0.2.1"}))[0])
        user = await api.new_user()
        listed = await api.client.get("/api/v1/sessions/", headers=user.headers)
        assert listed.json()[0]["ip_address"] == "203.0.113.7"
        via_proxy = await api.client.post(
            LOGIN,
            json={"email": user.email, "password": DEFAULT_PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.23"},
        )
        assert via_proxy.status_code == 200
        sessions = await api.client.get("/api/v1/sessions/", headers=user.headers)
        assert "198.51.100.23" in {s["ip_address"] for s in sessions.json()}


def _behind_proxy(database_url: str, **overrides: Any) -> Any:
    """Settings trusting the test transport's address as a proxy, so that X-Forwarded-For
    chooses the client address of each request."""
    return make_settings(database_url, TRUSTED_PROXIES=["203.0.113.0/24"], **overrides)


async def _login_from(api: Api, ip: str, email: str, password: str) -> httpx.Response:
    return await api.client.post(
        LOGIN, json={"email": email, "password": password}, headers={"X-Forwarded-For": ip}
    )


async def test_login_budget_per_account_across_addresses(database_url: str) -> None:
    settings = _behind_proxy(database_url, RATE_LIMIT_LOGIN="3/minute", LOGIN_LOCKOUT_THRESHOLD=0)
    async with serve(settings) as (_, api):
        responses = [
            await _login_from(api, f"192.0.2.{octet}", "target@example.com", "guess one")
            for octet in range(4)
        ]
        assert [r.status_code for r in responses] == [401, 401, 401, 429]
        assert responses[3].headers["ratelimit-policy"] == '"login-account";q=3;w=60'


async def test_register_budget(database_url: str) -> None:
    async with serve(_settings(database_url, RATE_LIMIT_REGISTER="2/minute")) as (_, api):
        assert (await api.register()).status_code == 201
        assert (await api.register()).status_code == 201
        _assert_429(await api.register())


async def test_refresh_budget(database_url: str) -> None:
    async with serve(_settings(database_url, RATE_LIMIT_REFRESH="1/minute")) as (_, api):
        user = await api.new_user()
        assert (await api.refresh(user.tokens.refresh_token)).status_code == 200
        _assert_429(await api.refresh(user.tokens.refresh_token))


async def test_api_budget_covers_other_routes(database_url: str) -> None:
    async with serve(_settings(database_url, RATE_LIMIT_API="3/minute")) as (_, api):
        user = await api.new_user()
        statuses = [(await api.me(user.tokens)).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert (await api.client.get("/health")).status_code == 200


async def test_disabling_rate_limits_turns_off_the_budgets_but_not_the_lockout(
    database_url: str,
) -> None:
    settings = _settings(
        database_url,
        RATE_LIMIT_LOGIN="1/minute",
        RATE_LIMIT_REGISTER="1/minute",
        RATE_LIMIT_ENABLED=False,
        LOGIN_LOCKOUT_THRESHOLD=3,
    )
    async with serve(settings) as (_, api):
        assert {r.status_code for r in await _logins(api, 3)} == {401}
        assert {(await api.register()).status_code for _ in range(3)} == {201}
        statuses = [(await api.login("one@example.com", "wrong password!")).status_code]
        statuses += [(await api.login("one@example.com", "wrong password!")).status_code]
        statuses += [(await api.login("one@example.com", "wrong password!")).status_code]
        locked = await api.login("one@example.com", "wrong password!")
        assert statuses == [401, 401, 401]
        _assert_429(locked, code="account_locked")


async def test_a_lockout_threshold_of_zero_turns_the_lockout_off(database_url: str) -> None:
    settings = _settings(database_url, RATE_LIMIT_ENABLED=False, LOGIN_LOCKOUT_THRESHOLD=0)
    async with serve(settings) as (_, api):
        statuses = {(await api.login("two@example.com", "wrong password!")).status_code}
        for _ in range(9):
            statuses.add((await api.login("two@example.com", "wrong password!")).status_code)
        assert statuses == {401}


async def test_parallel_guesses_check_no_more_passwords_than_the_threshold(
    database_url: str,
) -> None:
    settings = _behind_proxy(database_url, LOGIN_LOCKOUT_THRESHOLD=5)
    async with serve(settings) as (_, api):
        victim = await api.new_user()
        guesses = await asyncio.gather(
            *(
                _login_from(api, f"198.51.100.{index}", victim.email, f"guess number {index}")
                for index in range(20)
            )
        )
        statuses = sorted(response.status_code for response in guesses)
        assert statuses == [401] * 5 + [429] * 15
        assert {r.json()["code"] for r in guesses if r.status_code == 429} == {"account_locked"}


async def test_the_right_password_behind_parallel_wrong_ones_is_refused(
    database_url: str,
) -> None:
    settings = _behind_proxy(database_url, LOGIN_LOCKOUT_THRESHOLD=5)
    async with serve(settings) as (_, api):
        victim = await api.new_user()

        async def right_guess_later() -> httpx.Response:
            await asyncio.sleep(0.3)
            return await _login_from(api, "198.51.100.250", victim.email, DEFAULT_PASSWORD)

        *wrong, right = await asyncio.gather(
            *(
                _login_from(api, f"198.51.100.{index}", victim.email, f"wrong guess {index}")
                for index in range(19)
            ),
            right_guess_later(),
        )
        assert sorted(response.status_code for response in wrong) == [401] * 5 + [429] * 14
        _assert_429(right, code="account_locked")


async def test_two_workers_share_the_lockout(database_url: str) -> None:
    settings = _behind_proxy(database_url, LOGIN_LOCKOUT_THRESHOLD=5)
    async with serve(settings) as (_, first), serve(settings) as (_, second):
        victim = await first.new_user()
        guesses = await asyncio.gather(
            *(
                _login_from(
                    (first, second)[index % 2],
                    f"198.51.100.{index}",
                    victim.email,
                    f"guess number {index}",
                )
                for index in range(40)
            )
        )
        assert [response.status_code for response in guesses].count(401) == 5


async def test_brute_force_on_one_account_locks_it_from_many_addresses(database_url: str) -> None:
    async with serve(_behind_proxy(database_url, LOGIN_LOCKOUT_THRESHOLD=3)) as (_, api):
        victim = await api.new_user()
        for octet in range(3):
            wrong = await _login_from(api, f"198.51.100.{octet}", victim.email, f"guess {octet}!")
            assert wrong.status_code == 401
        locked = await _login_from(api, "198.51.100.200", victim.email, DEFAULT_PASSWORD)
        _assert_429(locked, code="account_locked")
        assert locked.headers["ratelimit-policy"] == '"lockout";q=3;w=900'
        upper = await _login_from(api, "198.51.100.201", victim.email.upper(), DEFAULT_PASSWORD)
        assert upper.status_code == 429


async def test_lockout_spares_the_owner_on_a_known_address(database_url: str) -> None:
    async with serve(_behind_proxy(database_url, LOGIN_LOCKOUT_THRESHOLD=2)) as (_, api):
        victim = await api.new_user()
        for _ in range(2):
            await _login_from(api, "198.51.100.66", victim.email, "not the password")
        attacker = await _login_from(api, "198.51.100.66", victim.email, DEFAULT_PASSWORD)
        assert attacker.status_code == 429
        owner = await _login_from(api, "203.0.113.7", victim.email, DEFAULT_PASSWORD)
        assert owner.status_code == 200


async def test_owner_sign_in_during_a_lock_does_not_unlock_the_attacker(
    database_url: str,
) -> None:
    async with serve(_behind_proxy(database_url, LOGIN_LOCKOUT_THRESHOLD=2)) as (_, api):
        victim = await api.new_user()
        for _ in range(2):
            await _login_from(api, "198.51.100.66", victim.email, "not the password")
        owner = await _login_from(api, "203.0.113.7", victim.email, DEFAULT_PASSWORD)
        assert owner.status_code == 200
        attacker = await _login_from(api, "198.51.100.66", victim.email, DEFAULT_PASSWORD)
        assert attacker.status_code == 429


async def test_owner_is_exempt_from_the_per_account_budget(database_url: str) -> None:
    settings = _behind_proxy(database_url, RATE_LIMIT_LOGIN="3/minute", LOGIN_LOCKOUT_THRESHOLD=0)
    async with serve(settings) as (_, api):
        victim = await api.new_user()
        for octet in range(3):
            await _login_from(api, f"198.51.100.{octet}", victim.email, "not the password")
        stranger = await _login_from(api, "198.51.100.99", victim.email, DEFAULT_PASSWORD)
        _assert_429(stranger)
        owner = await _login_from(api, "203.0.113.7", victim.email, DEFAULT_PASSWORD)
        assert owner.status_code == 200


async def test_lockout_of_unknown_emails_looks_the_same(database_url: str) -> None:
    async with serve(_behind_proxy(database_url, LOGIN_LOCKOUT_THRESHOLD=2)) as (_, api):
        user = await api.new_user()
        answers = []
        for email in (user.email, "ghost@example.com"):
            for _ in range(2):
                await _login_from(api, "198.51.100.5", email, "wrong password!")
            answers.append(await _login_from(api, "198.51.100.5", email, "wrong password!"))
        assert [a.status_code for a in answers] == [429, 429]
        assert answers[0].json() == answers[1].json()


async def test_success_resets_the_failure_count(database_url: str) -> None:
    # Every attempt comes from a new address: one holding the user's session is exempt from
    # the lockout, and would get in whether or not the count was reset.
    settings = _behind_proxy(
        database_url, RATE_LIMIT_STRATEGY="moving-window", LOGIN_LOCKOUT_THRESHOLD=3
    )
    async with serve(settings) as (_, api):
        user = await api.new_user()
        for round_number in range(2):
            addresses = [f"198.51.100.{round_number * 10 + attempt}" for attempt in range(3)]
            for address in addresses[:2]:
                wrong = await _login_from(api, address, user.email, "wrong password!")
                assert wrong.status_code == 401
            right = await _login_from(api, addresses[2], user.email, DEFAULT_PASSWORD)
            assert right.status_code == 200


async def test_one_address_against_many_accounts_hits_the_address_budget(
    database_url: str,
) -> None:
    async with serve(_settings(database_url, RATE_LIMIT_LOGIN="5/minute")) as (_, api):
        responses = await _logins(api, 8)
        assert [r.status_code for r in responses].count(429) == 3


async def test_lockouts_and_limits_are_counted_in_metrics(database_url: str) -> None:
    settings = _settings(database_url, LOGIN_LOCKOUT_THRESHOLD=2, RATE_LIMIT_REGISTER="2/minute")
    async with serve(settings) as (_, api):
        for _ in range(3):
            await api.login("locked@example.com", "wrong password!")
        await api.register()
        await api.register()
        await api.register()
        admin = await api.admin()
        text = (await api.client.get("/metrics", headers=admin.headers)).text
        assert 'auth_security_events_total{event="account_locked"} 1.0' in text
        assert 'auth_security_events_total{event="rate_limited"} 2.0' in text


async def test_only_the_configured_forwarding_header_is_read(database_url: str) -> None:
    settings = _behind_proxy(database_url, RATE_LIMIT_LOGIN="2/minute", LOGIN_LOCKOUT_THRESHOLD=0)
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
        _assert_429(spoofed)


async def test_every_line_of_a_repeated_forwarding_header_counts(database_url: str) -> None:
    settings = _behind_proxy(database_url, RATE_LIMIT_LOGIN="2/minute", LOGIN_LOCKOUT_THRESHOLD=0)
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
