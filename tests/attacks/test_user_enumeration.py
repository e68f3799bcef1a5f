"""User enumeration, tested as attacks: an unknown email, a wrong password and an inactive
account get the same answers, in the same time, and the same lockout."""

import statistics
import time

from tests.attacks.guesses import behind_proxy, login_from
from tests.attacks.scene import Scene
from tests.conftest import make_settings, serve
from tests.factories import DEFAULT_PASSWORD, Api
from tests.routes import LOGIN_FORM, USERS

SignInAnswer = tuple[int, object, str | None]


async def _sign_in_answers(api: Api, email: str, password: str) -> list[SignInAnswer]:
    """The JSON sign-in's answer and the token endpoint's (RFC 6749's, for OAuth2 clients)."""
    json_login = await api.login(email, password)
    form_login = await api.client.post(LOGIN_FORM, data={"username": email, "password": password})
    return [
        (response.status_code, response.json(), response.headers.get("www-authenticate"))
        for response in (json_login, form_login)
    ]


async def test_sign_in_failures_do_not_reveal_which_accounts_exist(scene: Scene) -> None:
    admin = await scene.api.admin()
    deactivated = await scene.api.client.put(
        f"{USERS}{scene.bystander.id}", json={"is_active": False}, headers=admin.headers
    )
    assert deactivated.status_code == 200, deactivated.text
    unknown = await _sign_in_answers(scene.api, "nobody-here@example.com", DEFAULT_PASSWORD)
    wrong_password = await _sign_in_answers(scene.api, scene.victim.email, "not the password")
    inactive = await _sign_in_answers(scene.api, scene.bystander.email, DEFAULT_PASSWORD)
    expected: list[SignInAnswer] = [
        (401, {"code": "invalid_credentials", "detail": "Incorrect email or password."}, "Bearer"),
        (
            400,
            {
                "error": "invalid_grant",
                "error_description": "Incorrect email or password.",
                "code": "invalid_credentials",
                "detail": "Incorrect email or password.",
            },
            None,
        ),
    ]
    assert unknown == wrong_password == inactive == expected


async def test_unknown_email_and_wrong_password_take_the_same_time(database_url: str) -> None:
    settings = make_settings(database_url, ARGON2_MEMORY_COST_KIB=19456, ARGON2_TIME_COST=2)
    async with serve(settings) as (_, api):
        user = await api.new_user()

        async def timed(email: str) -> float:
            started = time.perf_counter()
            response = await api.login(email, "definitely not it")
            assert response.status_code == 401
            return time.perf_counter() - started

        for _ in range(3):
            await timed(user.email)
            await timed("warmup@example.com")
        known, unknown = [], []
        for index in range(25):
            known.append(await timed(user.email))
            unknown.append(await timed(f"ghost{index}@example.com"))
        ratio = statistics.median(known) / statistics.median(unknown)
        assert 0.8 < ratio < 1.25, (statistics.median(known), statistics.median(unknown))


async def test_lockout_of_unknown_emails_looks_the_same(database_url: str) -> None:
    async with serve(behind_proxy(database_url, LOGIN_LOCKOUT_THRESHOLD=2)) as (_, api):
        user = await api.new_user()
        answers = []
        for email in (user.email, "ghost@example.com"):
            for _ in range(2):
                await login_from(api, "198.51.100.5", email, "wrong password!")
            answers.append(await login_from(api, "198.51.100.5", email, "wrong password!"))
        assert [a.status_code for a in answers] == [429, 429]
        assert answers[0].json() == answers[1].json()
