"""The pages of the account's mails (forgot password, reset, verify, confirm and undo an email
change), the profile's verification and email change, deleting the account, and the admin's
verification tools, over ASGI with a real SMTP server: bad and hostile input, CSRF, tokens that
are bad, used or meant for something else, and the same answer for unknown addresses."""

from collections.abc import AsyncIterator, Iterator
from email.message import Message

import anyio
import httpx
import pytest

from app.api.deps import ServiceApp
from app.core.config import Settings
from app.core.errors import UserNotFound
from app.services.account_emails import (
    CONFIRM_EMAIL_PATH,
    RESET_PATH,
    UNDO_EMAIL_PATH,
    VERIFY_PATH,
)
from tests.clock import OffsetClock
from tests.conftest import serve
from tests.factories import ADMIN_EMAIL, ADMIN_PASSWORD, DEFAULT_PASSWORD, Api, UserHandle
from tests.mail_server import MailServer, link_in, mail_server, token_in
from tests.mailing import mailed_settings
from tests.pages.test_forms import (
    BROWSER,
    HOSTILE,
    LONG,
    RAW_MARKUP,
    _csrf,
    _escaped,
    _field_error,
    _signed_in,
)

NEW_PASSWORD = "a brand new passphrase for this page"
# A token of the right shape that the service never issued.
FORGED = "AAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
GENERIC = "If an account has this address, a link to choose a new password is on its way"


@pytest.fixture
def smtp() -> Iterator[MailServer]:
    with mail_server() as server:
        yield server


@pytest.fixture
def mailed(database_url: str, smtp: MailServer) -> Settings:
    return mailed_settings(database_url, smtp.port)


@pytest.fixture
async def pages(mailed: Settings, clock: OffsetClock) -> AsyncIterator[tuple[ServiceApp, Api]]:
    async with serve(mailed, clock) as served:
        yield served


async def _mail(smtp: MailServer, address: str, subject_word: str, count: int = 1) -> Message:
    """The latest mail to `address` whose subject has `subject_word`, once `count` such came."""
    for _ in range(200):
        found = [m for m in smtp.inbox.to(address) if subject_word in str(m["Subject"]).lower()]
        if len(found) >= count:
            return found[-1]
        await _pause()
    raise AssertionError(f"no mail about {subject_word!r} to {address}")


async def _pause() -> None:
    await anyio.sleep(0.05)


def _page_path(mail: Message) -> str:
    """The path and query of the mail's link: the page it opens."""
    link = link_in(mail)
    return link[link.index("/account/") :]


def _no_raw_markup(page: httpx.Response) -> None:
    for markup in RAW_MARKUP:
        assert markup not in page.text, page.url


async def _is_verified(app: ServiceApp, user: UserHandle) -> bool:
    return (await app.services.users.get_user(user.id)).is_verified


# --- forgot password -------------------------------------------------------------------------


async def test_forgot_password_refuses_bad_input_beside_the_field(
    pages: tuple[ServiceApp, Api], smtp: MailServer
) -> None:
    _, api = pages
    page = await api.client.get("/account/forgot-password", headers=BROWSER)
    assert page.status_code == 200
    assert 'action="/account/forgot-password"' in page.text
    for fields in ({}, {"email": ""}, {"email": LONG}, {"email": "not-an-email"}, *(
        {"email": hostile} for hostile in HOSTILE
    )):  # fmt: skip
        refused = await api.client.post("/account/forgot-password", data=fields, headers=BROWSER)
        assert refused.status_code == 400, fields
        assert _field_error(refused, "email")
        if fields.get("email") and len(fields["email"]) < 4096:
            assert f'value="{_escaped(fields["email"])}"' in refused.text
        _no_raw_markup(refused)
    # A file where the address belongs counts as missing.
    filed = await api.client.post(
        "/account/forgot-password",
        files={"email": ("a.txt", b"a@example.com", "text/plain")},
        headers=BROWSER,
    )
    assert filed.status_code == 400
    assert smtp.inbox.all() == []


async def test_forgot_password_answers_the_same_for_known_and_unknown_addresses(
    pages: tuple[ServiceApp, Api], smtp: MailServer
) -> None:
    _, api = pages
    user = await api.new_user()
    answers = []
    for address in (user.email, "nobody-here@example.com"):
        answer = await api.client.post(
            "/account/forgot-password", data={"email": address}, headers=BROWSER
        )
        answers.append((answer.status_code, answer.headers["location"]))
    assert answers[0] == answers[1] == (303, "/account/forgot-password?done=reset-link-sent")
    done = await api.client.get(answers[0][1], headers=BROWSER)
    assert GENERIC in done.text
    assert user.email not in done.text
    await _mail(smtp, user.email, "reset")
    await _pause()
    assert smtp.inbox.to("nobody-here@example.com") == []


async def test_a_form_of_another_site_cannot_ask_for_mail(
    pages: tuple[ServiceApp, Api], smtp: MailServer
) -> None:
    _, api = pages
    refused = await api.client.post(
        "/account/forgot-password",
        data={"email": ADMIN_EMAIL},
        headers={**BROWSER, "Sec-Fetch-Site": "cross-site"},
    )
    assert refused.status_code == 403
    assert "this site&#39;s own pages" in refused.text


async def test_an_address_out_of_budget_is_told_when_to_try_again(
    database_url: str, smtp: MailServer
) -> None:
    settings = mailed_settings(database_url, smtp.port, RATE_LIMIT_MAIL="2/minute")
    async with serve(settings) as (app, api):
        for _ in range(2):
            await api.client.post(
                "/account/forgot-password", data={"email": "target@example.com"}, headers=BROWSER
            )
        # From another address: the address's own budget refuses, inside the page.
        transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as other:
            refused = await other.post(
                "/account/forgot-password", data={"email": "target@example.com"}, headers=BROWSER
            )
        assert refused.status_code == 429
        retry = int(refused.headers["retry-after"])
        assert f"Try again in {retry} second" in refused.text
        assert 'value="target@example.com"' in refused.text
        # The third of the same client's requests: its own budget refuses, before the page.
        limited = await api.client.post(
            "/account/forgot-password", data={"email": "other@example.com"}, headers=BROWSER
        )
        assert limited.status_code == 429
        assert "retry-after" in limited.headers
        assert "try again in" in limited.text.lower()


# --- reset password --------------------------------------------------------------------------


async def test_a_reset_link_opens_a_form_and_only_its_button_spends_the_token(
    pages: tuple[ServiceApp, Api], smtp: MailServer
) -> None:
    _, api = pages
    user = await api.new_user()
    await api.client.post("/account/forgot-password", data={"email": user.email}, headers=BROWSER)
    mail = await _mail(smtp, user.email, "reset")
    token = token_in(mail)
    for _ in range(2):
        opened = await api.client.get(_page_path(mail), headers=BROWSER)
        assert opened.status_code == 200
        # In the hidden field and nowhere else.
        assert opened.text.count(token) == 1
        assert f'<input type="hidden" name="token" value="{token}">' in opened.text
    form = {"token": token, "password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}
    for fields, wrong in (
        ({"token": token}, "password"),
        ({**form, "password": "short", "confirm_password": "short"}, "password"),
        ({**form, "password": "password123", "confirm_password": "password123"}, "password"),
        ({**form, "password": LONG, "confirm_password": LONG}, "password"),
        ({**form, "confirm_password": "something else entirely"}, "confirm_password"),
    ):
        refused = await api.client.post("/account/reset-password", data=fields, headers=BROWSER)
        assert refused.status_code == 400, fields
        assert _field_error(refused, wrong)
        assert refused.text.count(token) == 1
        assert fields.get("password", "§") not in refused.text
    done = await api.client.post("/account/reset-password", data=form, headers=BROWSER)
    assert done.status_code == 303
    assert done.headers["location"] == "/account/sign-in?done=password-reset"
    assert (await api.login(user.email, NEW_PASSWORD)).status_code == 200
    again = await api.client.post("/account/reset-password", data=form, headers=BROWSER)
    assert again.status_code == 400
    assert "already used" in again.text
    assert 'href="/account/forgot-password"' in again.text


async def test_bad_reset_links_are_told_clearly_and_change_nothing(
    pages: tuple[ServiceApp, Api], smtp: MailServer
) -> None:
    _, api = pages
    user = await api.new_user()
    verify_token = token_in(await _mail(smtp, user.email, "confirm"))
    for query in ("", "?token=", f"?token={LONG}", "?token=no-dot", f"?token={HOSTILE[0]}"):
        page = await api.client.get(f"/account/reset-password{query}", headers=BROWSER)
        assert page.status_code == 400, query
        assert "This link cannot be used" in page.text
        assert 'href="/account/forgot-password"' in page.text
        _no_raw_markup(page)
    for token, said in (
        (FORGED, "not valid"),
        (verify_token, "meant for something else"),
        (HOSTILE[1], "not valid"),
        ("", "not valid"),
    ):
        page = await api.client.post(
            "/account/reset-password",
            data={"token": token, "password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
            headers=BROWSER,
        )
        assert page.status_code == 400, token
        assert said in page.text
        _no_raw_markup(page)
    assert (await api.login(user.email, DEFAULT_PASSWORD)).status_code == 200


# --- verify, confirm and undo: one button each ------------------------------------------------


async def test_a_verify_link_needs_its_button_and_works_once(
    pages: tuple[ServiceApp, Api], smtp: MailServer
) -> None:
    app, api = pages
    user = await api.new_user()
    mail = await _mail(smtp, user.email, "confirm")
    assert "/account/verify?token=" in link_in(mail)
    token = token_in(mail)
    api.client.cookies.clear()
    for _ in range(3):
        page = await api.client.get(_page_path(mail), headers=BROWSER)
        assert page.status_code == 200
        assert "Confirm my address" in page.text
        assert page.text.count(token) == 1
    assert not await _is_verified(app, user)
    done = await api.client.post("/account/verify", data={"token": token}, headers=BROWSER)
    assert done.status_code == 303
    assert done.headers["location"] == "/account/sign-in?done=verified"
    assert await _is_verified(app, user)
    shown = await api.client.get(done.headers["location"], headers=BROWSER)
    assert "The email address is confirmed." in shown.text
    again = await api.client.post("/account/verify", data={"token": token}, headers=BROWSER)
    assert again.status_code == 400
    assert "already used" in again.text
    assert 'href="/account/profile"' in again.text


async def test_bad_tokens_on_the_one_button_pages_are_clear_400_pages(
    pages: tuple[ServiceApp, Api], smtp: MailServer
) -> None:
    _, api = pages
    user = await api.new_user()
    verify_token = token_in(await _mail(smtp, user.email, "confirm"))
    for path in ("/account/verify", "/account/confirm-email", "/account/undo-email-change"):
        for query in ("", f"?token={LONG}", f"?token={HOSTILE[0]}", "?token=a&token=b"):
            page = await api.client.get(f"{path}{query}", headers=BROWSER)
            assert page.status_code == 400, (path, query)
            assert "This link cannot be used" in page.text
            assert "<form" not in page.text.split("<main", 1)[1]
            _no_raw_markup(page)
        for token in (FORGED, "", LONG, HOSTILE[1]):
            page = await api.client.post(path, data={"token": token}, headers=BROWSER)
            assert page.status_code == 400, (path, token[:20])
            assert "not valid" in page.text
            _no_raw_markup(page)
        if path != "/account/verify":
            wrong = await api.client.post(path, data={"token": verify_token}, headers=BROWSER)
            assert wrong.status_code == 400
            assert "meant for something else" in wrong.text
        crossed = await api.client.post(
            path, data={"token": FORGED}, headers={**BROWSER, "Sec-Fetch-Site": "cross-site"}
        )
        assert crossed.status_code == 403


# --- the profile: verification banner, email change, leaving ---------------------------------


async def test_the_profile_banner_sends_a_new_link_which_verifies_the_signed_in_account(
    pages: tuple[ServiceApp, Api], smtp: MailServer
) -> None:
    app, api = pages
    user = await api.new_user()
    await _mail(smtp, user.email, "confirm")
    await _signed_in(api, user.email)
    profile = await api.client.get("/account/profile", headers=BROWSER)
    assert "Send the link again" in profile.text
    assert 'href="/api/v1/users/me/export" download' in profile.text
    for token in (None, "forged"):
        fields = {} if token is None else {"csrf_token": token}
        refused = await api.client.post(
            "/account/profile/send-verification", data=fields, headers=BROWSER
        )
        assert refused.status_code == 403
    sent = await api.client.post(
        "/account/profile/send-verification", data={"csrf_token": _csrf(api)}, headers=BROWSER
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == "/account/profile?done=verification-sent"
    mail = await _mail(smtp, user.email, "confirm", count=2)
    opened = await api.client.get(_page_path(mail), headers=BROWSER)
    # Signed in, the form carries the session's CSRF token: the page then knows who it is.
    assert f'name="csrf_token" value="{_csrf(api)}"' in opened.text
    done = await api.client.post(
        "/account/verify",
        data={"token": token_in(mail), "csrf_token": _csrf(api)},
        headers=BROWSER,
    )
    assert done.headers["location"] == "/account/profile?done=verified"
    assert await _is_verified(app, user)
    profile = await api.client.get(done.headers["location"], headers=BROWSER)
    assert "The email address is confirmed." in profile.text
    assert "Send the link again" not in profile.text


async def test_a_new_email_waits_for_its_link_and_the_old_one_can_undo_it(
    pages: tuple[ServiceApp, Api], smtp: MailServer
) -> None:
    app, api = pages
    user = await api.new_user()
    new_address = f"moved-{user.username}@example.com"
    await _signed_in(api, user.email)
    identity = {"form": "identity", "csrf_token": _csrf(api), "username": user.username}
    wrong = await api.client.post(
        "/account/profile",
        data={**identity, "email": new_address, "current_password": "not my password"},
        headers=BROWSER,
    )
    assert wrong.status_code == 400
    assert _field_error(wrong, "current_password")
    asked = await api.client.post(
        "/account/profile",
        data={**identity, "email": new_address, "current_password": DEFAULT_PASSWORD},
        headers=BROWSER,
    )
    assert asked.headers["location"] == "/account/profile?done=email-change-sent"
    profile = await api.client.get(asked.headers["location"], headers=BROWSER)
    assert "A link to confirm the new address is on its way" in profile.text
    assert (await app.services.users.get_user(user.id)).email == user.email
    mail = await _mail(smtp, new_address, "confirm")
    opened = await api.client.get(_page_path(mail), headers=BROWSER)
    assert "Confirm the new address" in opened.text
    assert (await app.services.users.get_user(user.id)).email == user.email
    done = await api.client.post(
        "/account/confirm-email",
        data={"token": token_in(mail), "csrf_token": _csrf(api)},
        headers=BROWSER,
    )
    assert done.headers["location"] == "/account/profile?done=email-confirmed"
    assert (await app.services.users.get_user(user.id)).email == new_address

    notice = await _mail(smtp, user.email, "email address of your")
    opened = await api.client.get(_page_path(notice), headers=BROWSER)
    assert "Undo the change" in opened.text
    undone = await api.client.post(
        "/account/undo-email-change",
        data={"token": token_in(notice), "csrf_token": _csrf(api)},
        headers=BROWSER,
    )
    # Every session of the account ends, this one too: its cookies go.
    assert undone.headers["location"] == "/account/sign-in?done=email-restored"
    cleared = undone.headers.get_list("set-cookie")
    assert any(c.startswith("access_token=") and "Max-Age=0" in c for c in cleared), cleared
    assert (await app.services.users.get_user(user.id)).email == user.email


async def test_deleting_the_account_takes_the_password_and_a_tick(
    pages: tuple[ServiceApp, Api],
) -> None:
    app, api = pages
    user = await api.new_user()
    await _signed_in(api, user.email)
    page = await api.client.get("/account/delete", headers=BROWSER)
    assert page.status_code == 200
    assert user.email in page.text
    csrf = _csrf(api)
    refused = await api.client.post(
        "/account/delete", data={"password": DEFAULT_PASSWORD, "confirm": "yes"}, headers=BROWSER
    )
    assert refused.status_code == 403
    for fields, wrong in (
        ({}, {"password", "confirm"}),
        ({"password": DEFAULT_PASSWORD}, {"confirm"}),
        ({"password": DEFAULT_PASSWORD, "confirm": "on"}, {"confirm"}),
        ({"confirm": "yes", "password": "not my password"}, {"password"}),
        ({"confirm": "yes", "password": HOSTILE[0]}, {"password"}),
        ({"confirm": "yes", "password": LONG}, {"password"}),
    ):
        page = await api.client.post(
            "/account/delete", data={**fields, "csrf_token": csrf}, headers=BROWSER
        )
        assert page.status_code == 400, fields
        for field in wrong:
            assert _field_error(page, field)
        _no_raw_markup(page)
        assert "not deleted" in page.text
    assert (await app.services.users.get_user(user.id)).email == user.email
    done = await api.client.post(
        "/account/delete",
        data={"password": DEFAULT_PASSWORD, "confirm": "yes", "csrf_token": csrf},
        headers=BROWSER,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/account/sign-in?done=account-deleted"
    assert "access_token" not in api.client.cookies
    with pytest.raises(UserNotFound):
        await app.services.users.get_user(user.id)
    shown = await api.client.get(done.headers["location"], headers=BROWSER)
    assert "Your account is deleted" in shown.text
    assert (await api.login(user.email, DEFAULT_PASSWORD)).status_code == 401


async def test_the_last_admin_cannot_delete_their_account(pages: tuple[ServiceApp, Api]) -> None:
    _, api = pages
    await _signed_in(api, ADMIN_EMAIL, ADMIN_PASSWORD)
    page = await api.client.post(
        "/account/delete",
        data={"password": ADMIN_PASSWORD, "confirm": "yes", "csrf_token": _csrf(api)},
        headers=BROWSER,
    )
    assert page.status_code == 409
    assert "without an active admin" in page.text
    assert (await api.login(ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 200


# --- the admin's verification tools ----------------------------------------------------------


async def test_an_admin_resends_verification_and_marks_an_address_verified(
    pages: tuple[ServiceApp, Api], smtp: MailServer
) -> None:
    app, api = pages
    user = await api.new_user()
    await _mail(smtp, user.email, "confirm")
    await _signed_in(api, ADMIN_EMAIL, ADMIN_PASSWORD)
    listed = await api.client.get(f"/admin/users?search={user.username}", headers=BROWSER)
    assert "Not confirmed" in listed.text
    page = await api.client.get(f"/admin/users/{user.id}", headers=BROWSER)
    assert "Resend verification" in page.text
    assert "Mark verified" in page.text
    resend = f"/admin/users/{user.id}/verification"
    assert (await api.client.post(resend, headers=BROWSER)).status_code == 403
    csrf = {"csrf_token": _csrf(api)}
    sent = await api.client.post(resend, data=csrf, headers=BROWSER)
    assert sent.headers["location"] == f"/admin/users/{user.id}?done=verification-sent"
    await _mail(smtp, user.email, "confirm", count=2)
    marked = await api.client.post(
        f"/admin/users/{user.id}/access", data={**csrf, "change": "verify"}, headers=BROWSER
    )
    assert marked.headers["location"] == f"/admin/users/{user.id}?done=verify"
    assert await _is_verified(app, user)
    page = await api.client.get(marked.headers["location"], headers=BROWSER)
    assert "marked as confirmed" in page.text
    assert "Resend verification" not in page.text
    again = await api.client.post(resend, data=csrf, headers=BROWSER)
    assert again.status_code == 409
    assert "already verified" in again.text
    missing = await api.client.post("/admin/users/999999/verification", data=csrf, headers=BROWSER)
    assert missing.status_code == 404


async def test_every_link_of_the_mails_opens_a_page(pages: tuple[ServiceApp, Api]) -> None:
    _, api = pages
    for path in (VERIFY_PATH, RESET_PATH, CONFIRM_EMAIL_PATH, UNDO_EMAIL_PATH):
        # Without a token: a page that says so, not a missing page.
        assert (await api.client.get(path, headers=BROWSER)).status_code == 400, path
    for path in ("/account/forgot-password", "/account/sign-in"):
        assert (await api.client.get(path, headers=BROWSER)).status_code == 200, path


# --- signing in before the address is confirmed ----------------------------------------------


async def test_an_unconfirmed_account_is_told_at_sign_in_and_can_ask_for_a_new_link(
    mailed: Settings, smtp: MailServer, clock: OffsetClock
) -> None:
    required = mailed.model_copy(update={"REQUIRE_VERIFIED_EMAIL": True})
    async with serve(required, clock) as (_, api):
        registered = await api.register(email="late@example.com", username="late")
        assert registered.status_code in (201, 202), registered.text
        await _mail(smtp, "late@example.com", "confirm")
        fields = {"email": "late@example.com", "password": DEFAULT_PASSWORD}
        refused = await api.client.post("/account/sign-in", data=fields, headers=BROWSER)
        assert refused.status_code == 403
        assert "Confirm your email address first" in refused.text
        assert "late@example.com</strong>" in refused.text
        assert 'action="/account/send-verification"' in refused.text
        assert DEFAULT_PASSWORD not in refused.text
        assert "access_token" not in refused.headers.get("set-cookie", "")
        # A wrong password is told nothing about the address.
        wrong = await api.client.post(
            "/account/sign-in", data=fields | {"password": "not the password"}, headers=BROWSER
        )
        assert wrong.status_code == 401
        assert "send-verification" not in wrong.text

        for address in ("late@example.com", "nobody@example.com"):
            sent = await api.client.post(
                "/account/send-verification", data={"email": address}, headers=BROWSER
            )
            assert sent.status_code == 303
            assert sent.headers["location"] == "/account/sign-in?done=verification-link-sent"
        await _mail(smtp, "late@example.com", "confirm", count=2)
        for fields_sent in ({}, {"email": LONG}, *({"email": hostile} for hostile in HOSTILE)):
            bad = await api.client.post(
                "/account/send-verification", data=fields_sent, headers=BROWSER
            )
            assert bad.status_code == 400, fields_sent
            assert _field_error(bad, "email")
            _no_raw_markup(bad)
        await anyio.sleep(0.3)
        assert smtp.inbox.to("nobody@example.com") == []
