"""The route class of the pages: the API's declarations (caller, rate budget, errors), with
what a browser needs instead of what an API client does.

- The CSRF token of a signed-in form comes in its `csrf_token` field, not in a header.
- A form posted from another site is refused outright (its Sec-Fetch-Site or Origin).
- A page whose caller is not signed in goes to the sign-in page and comes back; when only the
  access cookie has expired, it goes first to `CONTINUE_PATH`, which renews the session from
  the refresh cookie and comes back. A page for anyone still knows who is signed in.
"""

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from app.api.cookies import ACCESS_COOKIE, CSRF_COOKIE, REFRESH_COOKIE_PATH
from app.api.deps import resolve_principal
from app.api.routing import Caller, DeclaredRoute
from app.core import errors

CSRF_FIELD = "csrf_token"
SIGN_IN_PATH = "/account/sign-in"
# Under the refresh cookie's path, the only path that cookie is sent to.
CONTINUE_PATH = f"{REFRESH_COOKIE_PATH}/continue"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_NOT_SIGNED_IN = (errors.NotAuthenticated, errors.InvalidToken, errors.SessionRevoked)
# Where a signed-in page may send the browser back to: its own pages, never another site.
_RETURN_PREFIXES = ("/account/", "/admin/")


def safe_return_path(candidate: str | None, default: str = "/account/") -> str:
    """`candidate` when it is one of the service's own page paths, else `default`: a `next`
    parameter must not make the service redirect anywhere else (//evil.example, https://…)."""
    if not candidate or not candidate.startswith(_RETURN_PREFIXES) or "\\" in candidate:
        return default
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc:
        return default
    return candidate


def sign_in_redirect(back: str) -> RedirectResponse:
    """To the sign-in page, coming back to the page `back` afterwards."""
    return RedirectResponse(f"{SIGN_IN_PATH}?next={quote(back)}", status_code=303)


def renewal_redirect(request: Request) -> RedirectResponse:
    back = safe_return_path(request.scope["path"])
    return RedirectResponse(f"{CONTINUE_PATH}?next={quote(back)}", status_code=303)


def from_another_site(request: Request) -> bool:
    """Whether a form was posted from another site: browsers say so in Sec-Fetch-Site, and
    older ones at least send an Origin, which must then be this service's own. (The Host
    header is only compared with here, never used to build anything.) A client sending
    neither is no browser, and no page of another site can make it post."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return origin != f"{request.url.scheme}://{request.headers.get('host', '')}"


class PageRoute(DeclaredRoute):
    async def presented_csrf(self, request: Request) -> str | None:
        field = (await request.form()).get(CSRF_FIELD)
        return field if isinstance(field, str) else None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        caller = self.declaration.caller

        async def page(request: Request) -> Response:
            if request.method not in _SAFE_METHODS and from_another_site(request):
                raise errors.CsrfFailed("Forms can only be sent from this site's own pages.")
            if caller is Caller.ANYONE and request.cookies.get(ACCESS_COOKIE):
                try:
                    request.scope["state"]["principal"] = await resolve_principal(
                        request, self.presented_csrf
                    )
                except (*_NOT_SIGNED_IN, errors.CsrfFailed):
                    pass
            try:
                return await handler(request)
            except _NOT_SIGNED_IN:
                # The CSRF cookie lasts as long as the session: while it is there, the expired
                # access cookie can be renewed from the refresh cookie.
                if request.method in _SAFE_METHODS and request.cookies.get(CSRF_COOKIE):
                    return renewal_redirect(request)
                return sign_in_redirect(safe_return_path(request.scope["path"]))

        return page
