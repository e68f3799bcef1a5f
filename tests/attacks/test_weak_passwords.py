"""The password policy at every place a password is set: sign-up, the profile, the admin."""

import pytest

from app.core.config import Settings
from tests.conftest import make_settings, serve
from tests.factories import DEFAULT_PASSWORD, Api
from tests.hibp_server import fake_range_api
from tests.routes import ME, USERS

BREACHED = "correct horse battery staple, breached"


async def _refused(api: Api, password: str) -> list[tuple[int, str]]:
    """How sign-up, a profile change and an admin change answer a new password."""
    user = await api.new_user()
    admin = await api.admin()
    answers = [
        await api.register(password=password),
        await api.client.put(
            ME,
            json={"password": password, "current_password": DEFAULT_PASSWORD},
            headers=user.headers,
        ),
        await api.client.put(
            f"{USERS}{user.id}", json={"password": password}, headers=admin.headers
        ),
    ]
    return [(answer.status_code, answer.json()["code"]) for answer in answers]


@pytest.mark.parametrize("password", ["password123", "Password123!", "jennifer", "00000000"])
async def test_common_passwords_are_refused_everywhere(api: Api, password: str) -> None:
    assert await _refused(api, password) == [(422, "password_rejected")] * 3


async def test_breached_passwords_are_refused_when_the_range_api_says_so(
    settings: Settings,
) -> None:
    with fake_range_api() as range_api:
        range_api.add(BREACHED, 4821)
        checked = settings.model_copy(update={"HIBP_ENABLED": True, "HIBP_API_URL": range_api.url})
        async with serve(checked) as (_, api):
            assert await _refused(api, BREACHED) == [(422, "password_rejected")] * 3
            registered = await api.register(password="a quiet unlisted passphrase")
            assert registered.status_code == 201, registered.text
        assert all(len(path) == len("/range/") + 5 for path in range_api.paths)


@pytest.mark.parametrize(("fail_closed", "status"), [(False, 201), (True, 503)])
async def test_an_unreachable_range_api_fails_open_or_closed(
    database_url: str, fail_closed: bool, status: int
) -> None:
    with fake_range_api() as range_api:
        down = range_api.url
    settings = make_settings(
        database_url, HIBP_ENABLED=True, HIBP_API_URL=down, HIBP_FAIL_CLOSED=fail_closed
    )
    async with serve(settings) as (_, api):
        response = await api.register(password="a quiet unlisted passphrase")
        assert response.status_code == status, response.text
        if status == 503:
            assert response.json()["code"] == "password_check_unavailable"
            assert int(response.headers["retry-after"]) >= 1
