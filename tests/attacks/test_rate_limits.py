"""The rate budgets, tested as attacks: per address, per account, per route, and what turns
them off."""

from tests.attacks.guesses import assert_429, behind_proxy, exact_budgets, login_from, logins
from tests.conftest import serve
from tests.factories import DEFAULT_PASSWORD
from tests.routes import HEALTH, LOGIN_FORM, METRICS


async def test_login_budget_per_address(database_url: str) -> None:
    async with serve(exact_budgets(database_url, RATE_LIMIT_LOGIN="3/minute")) as (_, api):
        responses = await logins(api, 4)
        assert [r.status_code for r in responses[:3]] == [401, 401, 401]
        assert_429(responses[3])
        assert responses[3].headers["ratelimit-policy"] == '"login";q=3;w=60'
    async with serve(
        exact_budgets(database_url, RATE_LIMIT_LOGIN="3/minute"), client_ip="198.51.100.9"
    ) as (_, other):
        assert (await logins(other, 1))[0].status_code == 401


async def test_form_login_shares_the_login_budget(database_url: str) -> None:
    async with serve(exact_budgets(database_url, RATE_LIMIT_LOGIN="2/minute")) as (_, api):
        await logins(api, 2)
        form = await api.client.post(
            LOGIN_FORM, data={"username": "a@example.com", "password": "x" * 10}
        )
        assert_429(form)


async def test_login_budget_per_account_across_addresses(database_url: str) -> None:
    settings = behind_proxy(database_url, RATE_LIMIT_LOGIN="3/minute", LOGIN_LOCKOUT_THRESHOLD=0)
    async with serve(settings) as (_, api):
        responses = [
            await login_from(api, f"192.0.2.{octet}", "target@example.com", "guess one")
            for octet in range(4)
        ]
        assert [r.status_code for r in responses] == [401, 401, 401, 429]
        assert responses[3].headers["ratelimit-policy"] == '"login-account";q=3;w=60'


async def test_register_budget(database_url: str) -> None:
    async with serve(exact_budgets(database_url, RATE_LIMIT_REGISTER="2/minute")) as (_, api):
        assert (await api.register()).status_code == 201
        assert (await api.register()).status_code == 201
        assert_429(await api.register())


async def test_refresh_budget(database_url: str) -> None:
    async with serve(exact_budgets(database_url, RATE_LIMIT_REFRESH="1/minute")) as (_, api):
        user = await api.new_user()
        assert (await api.refresh(user.tokens.refresh_token)).status_code == 200
        assert_429(await api.refresh(user.tokens.refresh_token))


async def test_api_budget_covers_other_routes(database_url: str) -> None:
    async with serve(exact_budgets(database_url, RATE_LIMIT_API="3/minute")) as (_, api):
        user = await api.new_user()
        statuses = [(await api.me(user.tokens)).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert (await api.client.get(HEALTH)).status_code == 200


async def test_disabling_rate_limits_turns_off_the_budgets_but_not_the_lockout(
    database_url: str,
) -> None:
    settings = exact_budgets(
        database_url,
        RATE_LIMIT_LOGIN="1/minute",
        RATE_LIMIT_REGISTER="1/minute",
        RATE_LIMIT_ENABLED=False,
        LOGIN_LOCKOUT_THRESHOLD=3,
    )
    async with serve(settings) as (_, api):
        assert {r.status_code for r in await logins(api, 3)} == {401}
        assert {(await api.register()).status_code for _ in range(3)} == {201}
        statuses = [(await api.login("one@example.com", "wrong password!")).status_code]
        statuses += [(await api.login("one@example.com", "wrong password!")).status_code]
        statuses += [(await api.login("one@example.com", "wrong password!")).status_code]
        locked = await api.login("one@example.com", "wrong password!")
        assert statuses == [401, 401, 401]
        assert_429(locked, code="account_locked")


async def test_owner_is_exempt_from_the_per_account_budget(database_url: str) -> None:
    settings = behind_proxy(database_url, RATE_LIMIT_LOGIN="3/minute", LOGIN_LOCKOUT_THRESHOLD=0)
    async with serve(settings) as (_, api):
        victim = await api.new_user()
        for octet in range(3):
            await login_from(api, f"198.51.100.{octet}", victim.email, "not the password")
        stranger = await login_from(api, "198.51.100.99", victim.email, DEFAULT_PASSWORD)
        assert_429(stranger)
        owner = await login_from(api, "203.0.113.7", victim.email, DEFAULT_PASSWORD)
        assert owner.status_code == 200


async def test_one_address_against_many_accounts_hits_the_address_budget(
    database_url: str,
) -> None:
    async with serve(exact_budgets(database_url, RATE_LIMIT_LOGIN="5/minute")) as (_, api):
        responses = await logins(api, 8)
        assert [r.status_code for r in responses].count(429) == 3


async def test_lockouts_and_limits_are_counted_in_metrics(database_url: str) -> None:
    settings = exact_budgets(
        database_url, LOGIN_LOCKOUT_THRESHOLD=2, RATE_LIMIT_REGISTER="2/minute"
    )
    async with serve(settings) as (_, api):
        for _ in range(3):
            await api.login("locked@example.com", "wrong password!")
        await api.register()
        await api.register()
        await api.register()
        admin = await api.admin()
        text = (await api.client.get(METRICS, headers=admin.headers)).text
        assert 'auth_security_events_total{event="account_locked"} 1.0' in text
        assert 'auth_security_events_total{event="rate_limited"} 2.0' in text
