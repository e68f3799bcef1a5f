"""Cross-site request forgery against a browser signed in by cookie: an unsafe request needs
the CSRF header, matching this session's cookie; a bearer token needs none."""

from tests.cookies import browser_login, csrf_token, replace_cookie
from tests.factories import Api
from tests.routes import LOGOUT, ME, SESSIONS


async def test_cookie_put_without_csrf_token_is_refused(api: Api) -> None:
    await browser_login(api)
    response = await api.client.put(ME, json={"username": "hijacked"})
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert (await api.client.get(ME)).json()["username"] != "hijacked"


async def test_cookie_put_with_a_wrong_csrf_token_is_refused(api: Api) -> None:
    await browser_login(api)
    response = await api.client.put(
        ME, json={"username": "hijacked"}, headers={"X-CSRF-Token": "forged-token"}
    )
    assert response.status_code == 403


async def test_csrf_token_of_another_session_is_refused(api: Api) -> None:
    await browser_login(api)
    other_session_token = csrf_token(api)
    _, _ = await browser_login(api)
    replace_cookie(api, "csrf_token", other_session_token)
    response = await api.client.put(
        ME, json={"username": "hijacked"}, headers={"X-CSRF-Token": other_session_token}
    )
    assert response.status_code == 403


async def test_header_that_does_not_match_the_cookie_is_refused(api: Api) -> None:
    await browser_login(api)
    real = csrf_token(api)
    replace_cookie(api, "csrf_token", "something-else")
    response = await api.client.put(
        ME, json={"username": "hijacked"}, headers={"X-CSRF-Token": real}
    )
    assert response.status_code == 403


async def test_cookie_put_with_the_csrf_token_works(api: Api) -> None:
    await browser_login(api)
    response = await api.client.put(
        ME, json={"username": "renamed_by_cookie"}, headers={"X-CSRF-Token": csrf_token(api)}
    )
    assert response.status_code == 200
    assert response.json()["username"] == "renamed_by_cookie"


async def test_cookie_delete_and_post_need_csrf_too(api: Api) -> None:
    await browser_login(api)
    sessions = (await api.client.get(SESSIONS)).json()
    target = sessions[0]["id"]
    assert (await api.client.delete(f"{SESSIONS}{target}")).status_code == 403
    assert (await api.client.post(LOGOUT)).status_code == 403
    assert (await api.client.get(ME)).status_code == 200


async def test_bearer_requests_are_exempt_from_csrf(api: Api) -> None:
    user = await api.new_user()
    api.client.cookies.clear()
    response = await api.client.put(ME, json={"username": "bearer_rename"}, headers=user.headers)
    assert response.status_code == 200


async def test_a_non_ascii_csrf_header_is_a_plain_403(api: Api) -> None:
    await browser_login(api)
    response = await api.client.put(
        ME, json={"username": "hijacked"}, headers={b"X-CSRF-Token": "\u00e9t\u00e9".encode()}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
