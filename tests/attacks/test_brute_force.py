"""Password guessing against one account, tested as attacks: the lockout counts every guess
before checking it, in parallel and across workers, and spares the owner."""

import asyncio

import httpx

from tests.attacks.guesses import assert_429, behind_proxy, exact_budgets, login_from
from tests.conftest import serve
from tests.factories import DEFAULT_PASSWORD


async def test_a_lockout_threshold_of_zero_turns_the_lockout_off(database_url: str) -> None:
    settings = exact_budgets(database_url, RATE_LIMIT_ENABLED=False, LOGIN_LOCKOUT_THRESHOLD=0)
    async with serve(settings) as (_, api):
        statuses = {(await api.login("two@example.com", "wrong password!")).status_code}
        for _ in range(9):
            statuses.add((await api.login("two@example.com", "wrong password!")).status_code)
        assert statuses == {401}


async def test_parallel_guesses_check_no_more_passwords_than_the_threshold(
    database_url: str,
) -> None:
    settings = behind_proxy(database_url, LOGIN_LOCKOUT_THRESHOLD=5)
    async with serve(settings) as (_, api):
        victim = await api.new_user()
        guesses = await asyncio.gather(
            *(
                login_from(api, f"198.51.100.{index}", victim.email, f"guess number {index}")
                for index in range(20)
            )
        )
        statuses = sorted(response.status_code for response in guesses)
        assert statuses == [401] * 5 + [429] * 15
        assert {r.json()["code"] for r in guesses if r.status_code == 429} == {"account_locked"}


async def test_the_right_password_behind_parallel_wrong_ones_is_refused(
    database_url: str,
) -> None:
    settings = behind_proxy(database_url, LOGIN_LOCKOUT_THRESHOLD=5)
    async with serve(settings) as (_, api):
        victim = await api.new_user()

        async def right_guess_later() -> httpx.Response:
            await asyncio.sleep(0.3)
            return await login_from(api, "198.51.100.250", victim.email, DEFAULT_PASSWORD)

        *wrong, right = await asyncio.gather(
            *(
                login_from(api, f"198.51.100.{index}", victim.email, f"wrong guess {index}")
                for index in range(19)
            ),
            right_guess_later(),
        )
        assert sorted(response.status_code for response in wrong) == [401] * 5 + [429] * 14
        assert_429(right, code="account_locked")


async def test_two_workers_share_the_lockout(database_url: str) -> None:
    settings = behind_proxy(database_url, LOGIN_LOCKOUT_THRESHOLD=5)
    async with serve(settings) as (_, first), serve(settings) as (_, second):
        victim = await first.new_user()
        guesses = await asyncio.gather(
            *(
                login_from(
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
    async with serve(behind_proxy(database_url, LOGIN_LOCKOUT_THRESHOLD=3)) as (_, api):
        victim = await api.new_user()
        for octet in range(3):
            wrong = await login_from(api, f"198.51.100.{octet}", victim.email, f"guess {octet}!")
            assert wrong.status_code == 401
        locked = await login_from(api, "198.51.100.200", victim.email, DEFAULT_PASSWORD)
        assert_429(locked, code="account_locked")
        assert locked.headers["ratelimit-policy"] == '"lockout";q=3;w=900'
        upper = await login_from(api, "198.51.100.201", victim.email.upper(), DEFAULT_PASSWORD)
        assert upper.status_code == 429


async def test_lockout_spares_the_owner_on_a_known_address(database_url: str) -> None:
    async with serve(behind_proxy(database_url, LOGIN_LOCKOUT_THRESHOLD=2)) as (_, api):
        victim = await api.new_user()
        for _ in range(2):
            await login_from(api, "198.51.100.66", victim.email, "not the password")
        attacker = await login_from(api, "198.51.100.66", victim.email, DEFAULT_PASSWORD)
        assert attacker.status_code == 429
        owner = await login_from(api, "203.0.113.7", victim.email, DEFAULT_PASSWORD)
        assert owner.status_code == 200


async def test_owner_sign_in_during_a_lock_does_not_unlock_the_attacker(
    database_url: str,
) -> None:
    async with serve(behind_proxy(database_url, LOGIN_LOCKOUT_THRESHOLD=2)) as (_, api):
        victim = await api.new_user()
        for _ in range(2):
            await login_from(api, "198.51.100.66", victim.email, "not the password")
        owner = await login_from(api, "203.0.113.7", victim.email, DEFAULT_PASSWORD)
        assert owner.status_code == 200
        attacker = await login_from(api, "198.51.100.66", victim.email, DEFAULT_PASSWORD)
        assert attacker.status_code == 429


async def test_success_resets_the_failure_count(database_url: str) -> None:
    # Every attempt comes from a new address: one holding the user's session is exempt from
    # the lockout, and would get in whether or not the count was reset.
    settings = behind_proxy(
        database_url, RATE_LIMIT_STRATEGY="moving-window", LOGIN_LOCKOUT_THRESHOLD=3
    )
    async with serve(settings) as (_, api):
        user = await api.new_user()
        for round_number in range(2):
            addresses = [f"198.51.100.{round_number * 10 + attempt}" for attempt in range(3)]
            for address in addresses[:2]:
                wrong = await login_from(api, address, user.email, "wrong password!")
                assert wrong.status_code == 401
            right = await login_from(api, addresses[2], user.email, DEFAULT_PASSWORD)
            assert right.status_code == 200
