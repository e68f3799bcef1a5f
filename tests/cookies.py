"""A browser's cookies: sign in as a browser does, read what the service set, replace one."""

from http.cookies import SimpleCookie

import httpx

from tests.factories import DEFAULT_PASSWORD, Api, UserHandle


def set_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    """The cookies a response sets, by name."""
    cookies: dict[str, SimpleCookie] = {}
    for header in response.headers.get_list("set-cookie"):
        parsed = SimpleCookie()
        parsed.load(header)
        for name in parsed:
            cookies[name] = parsed
    return cookies


async def browser_login(api: Api) -> tuple[UserHandle, httpx.Response]:
    """A new user, signed in with the session cookies alone in the client's jar."""
    user = await api.new_user()
    api.client.cookies.clear()
    response = await api.login(user.email, DEFAULT_PASSWORD)
    assert response.status_code == 200
    return user, response


def replace_cookie(api: Api, name: str, value: str) -> None:
    """Give a cookie in the client's jar another value, keeping its domain and path."""
    (existing,) = [cookie for cookie in api.client.cookies.jar if cookie.name == name]
    api.client.cookies.delete(name)
    api.client.cookies.set(name, value, domain=existing.domain, path=existing.path)


def csrf_token(api: Api) -> str:
    """The CSRF token of the session the client's cookies hold."""
    token = api.client.cookies.get("csrf_token")
    assert token
    return token
