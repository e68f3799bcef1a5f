"""What the account pages say once a form has done its work.

A form that succeeds redirects (so that reloading the next page sends nothing again) with a
fixed key in the URL, `?done=<key>`, and the page shows the message of that key: nothing from
the URL is ever written into a page.
"""

from fastapi.responses import RedirectResponse

from app.core import errors

SIGN_IN_DONE = "/account/sign-in?done="
PROFILE_DONE = "/account/profile?done="
DONE = {
    "registered": "Your account is ready, and a link to confirm your email address is on its "
    "way to it. Sign in to continue.",
    "signed-out": "You are signed out.",
    "saved": "Your changes are saved.",
    "password-changed": "Your password is changed; your other devices are signed out.",
    "device-signed-out": "That device is signed out.",
    "others-signed-out": "Every other device is signed out.",
    "verification-sent": "A new link to confirm your email address is on its way to it.",
    "verification-link-sent": "If an account has this address and it is not confirmed yet, a "
    "new link to confirm it is on its way to it.",
    "email-change-sent": "A link to confirm the new address is on its way to it. Until it is "
    "followed, your account keeps the address shown below.",
    "reset-link-sent": "If an account has this address, a link to choose a new password is on "
    "its way to it. The link works once, for a limited time.",
    "verified": "The email address is confirmed.",
    "email-confirmed": "The new email address is confirmed: it is the account's address now.",
    "email-restored": "The old email address is back, and every device of the account is "
    "signed out. If you did not make the change, choose a new password too.",
    "password-reset": "Your password is changed and every device is signed out. Sign in with "
    "the new password.",
    "account-deleted": "Your account is deleted, and every device of it is signed out. A last "
    "mail confirms it.",
}


def done_message(key: str | None) -> str:
    """The message of a `done` key; an unknown key shows nothing."""
    return DONE.get(key or "", "")


def see_other(path: str) -> RedirectResponse:
    """After a form: the next page, fetched with GET."""
    return RedirectResponse(path, status_code=303)


def try_again_later(refusal: errors.RateLimited) -> str:
    """A refused request's message, with when to try again."""
    seconds = refusal.retry_after
    return f"{refusal.detail} Try again in {seconds} second{'' if seconds == 1 else 's'}."


def retry_headers(refusal: errors.RateLimited) -> dict[str, str]:
    return {"Retry-After": str(refusal.retry_after)}
