"""Errors in a browser are pages: the same status, headers and message as the API's JSON, in
the style of the other pages."""

import json
from http import HTTPStatus

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from app.web.templating import render

_TITLES = {
    400: "That request could not be understood",
    401: "Sign-in required",
    403: "Not allowed",
    404: "Page not found",
    405: "Not available this way",
    409: "That conflicts with something already there",
    413: "Too much data",
    422: "Please check what you sent",
    429: "Too many attempts",
    503: "Temporarily unavailable",
}
# Said instead of the bare status phrase, which is what the API's detail is for these.
_SENTENCES = {
    404: "There is no page at this address.",
    405: "This page cannot be used that way.",
    413: "What was sent is larger than this service accepts.",
}
_KEPT_HEADERS = ("retry-after", "allow", "ratelimit", "ratelimit-policy", "www-authenticate")


def wants_a_page(request: Request) -> bool:
    """A browser asking for a page: anything outside the API whose Accept names HTML."""
    path: str = request.scope["path"]
    return not path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def error_page(request: Request, answer: JSONResponse) -> Response | None:
    """The page for an error the API answers as `answer`, when a browser asked for a page."""
    if not wants_a_page(request):
        return None
    body = json.loads(bytes(answer.body))
    status = answer.status_code
    detail = body["detail"] if isinstance(body["detail"], str) else "Some fields are invalid."
    if detail == HTTPStatus(status).phrase:
        detail = _SENTENCES.get(status, detail)
    headers = {name: value for name, value in answer.headers.items() if name in _KEPT_HEADERS}
    retry_after = headers.get("retry-after")
    return render(
        request,
        "error.html",
        {
            "status": status,
            "title": _TITLES.get(status, "Something went wrong"),
            "detail": detail,
            "code": body["code"],
            "retry_after": int(retry_after) if retry_after and retry_after.isdigit() else None,
        },
        status=status,
        headers=headers,
    )
