"""The account pages, the admin console and the API docs, used in a real browser."""

import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from playwright.sync_api import Page, expect

from tests.factories import ADMIN_EMAIL, ADMIN_PASSWORD, DEFAULT_PASSWORD, FIREFOX_UA
from tests.pages.conftest import Site, page_of, sign_in

_people = itertools.count(1)


def _person(site: Site) -> tuple[str, str]:
    """A fresh registered user: (email, username)."""
    number = f"{time.monotonic_ns() % 10**9}{next(_people)}"
    email, username = f"person{number}@example.com", f"person{number}"
    site.register(email, username)
    return email, username


def test_register_sign_in_and_sign_another_device_out(site: Site) -> None:
    first = site.context()
    page = first.new_page()
    page.goto("/account/register")
    number = f"{time.monotonic_ns() % 10**9}"
    page.get_by_label("Email").fill(f"walk{number}@example.com")
    page.get_by_label("Username").fill(f"walk{number}")
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status")).to_contain_text("Your account is ready")
    sign_in(page, f"walk{number}@example.com")
    page.goto("/account/devices")
    expect(page.get_by_text("This device")).to_be_visible()

    second = site.context(user_agent=FIREFOX_UA)
    other = second.new_page()
    sign_in(other, f"walk{number}@example.com")
    other.goto("/account/profile")
    expect(other.get_by_role("heading", name="Your profile")).to_be_visible()

    page.reload()
    page.get_by_role("button", name="Sign out Firefox").click()
    expect(page.get_by_role("status")).to_contain_text("That device is signed out")
    other.goto("/account/devices")
    expect(other).to_have_url(f"{site.url}/account/sign-in?next=/account/devices")
    first.close()
    second.close()


def test_a_deactivated_users_open_page_is_signed_out_at_the_next_navigation(site: Site) -> None:
    email, username = _person(site)
    user = site.context()
    user_page = user.new_page()
    sign_in(user_page, email)
    user_page.goto("/account/profile")
    expect(user_page.get_by_text(f"Signed in as {username}")).to_be_visible()

    admin = site.context()
    console = admin.new_page()
    sign_in(console, ADMIN_EMAIL, ADMIN_PASSWORD)
    console.goto("/admin/users")
    console.get_by_label("Search email or username").fill(username)
    console.get_by_role("button", name="Filter").click()
    console.get_by_role("link", name=username).click()
    console.get_by_role("button", name="Deactivate").click()
    expect(console.get_by_role("status")).to_contain_text("deactivated")

    user_page.goto("/account/devices")
    expect(user_page).to_have_url(f"{site.url}/account/sign-in?next=/account/devices")
    user.close()
    admin.close()


def test_the_last_admin_cannot_step_down_and_is_told_why(site: Site) -> None:
    admin = site.context()
    console = admin.new_page()
    sign_in(console, ADMIN_EMAIL, ADMIN_PASSWORD)
    console.goto("/admin/users?admin=yes")
    console.get_by_role("link", name="admin", exact=True).click()
    console.get_by_role("button", name="Remove administrator rights").click()
    expect(console.get_by_role("alert")).to_contain_text("without an active admin")
    admin.close()


@contextmanager
def _another_site(target: str) -> Iterator[str]:
    """A page on another origin whose form posts a sign-in to the service."""
    form = (
        f'<!doctype html><form method="post" action="{target}/account/sign-in">'
        f'<input name="email" value="{ADMIN_EMAIL}"><input name="password" value="x">'
        '<button id="go">Go</button></form>'
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(form)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_form_posted_from_another_origin_is_refused(site: Site) -> None:
    context = site.context()
    page = context.new_page()
    with _another_site(site.url) as elsewhere:
        page.goto(elsewhere)
        with page.expect_navigation():
            page.click("#go")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.get_by_text("this site's own pages")).to_be_visible()
    context.close()


def test_sign_in_with_the_keyboard_alone(site: Site) -> None:
    email, username = _person(site)
    context = site.context()
    page = context.new_page()
    page.goto("/account/sign-in")
    # The skip link comes first, then the header's links, then the form.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(DEFAULT_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{site.url}/account/profile")
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible()
    context.close()


def test_field_errors_are_beside_their_fields_and_keep_what_was_typed(site: Site) -> None:
    context = site.context()
    page = context.new_page()
    page.goto("/account/register")
    page.get_by_label("Email").fill("not an email")
    page.get_by_label("Username").fill("<script>x</script>")
    page.get_by_label("Password").fill("password123")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#email-error")).to_contain_text("email address")
    expect(page.locator("#username-error")).to_contain_text("letters, digits")
    expect(page.get_by_label("Username")).to_have_value("<script>x</script>")
    expect(page.get_by_label("Password")).to_have_value("")
    context.close()


def test_the_api_docs_work_offline_and_authorize(site: Site) -> None:
    site.blocked.clear()
    context = site.context()
    page = context.new_page()
    page.goto("/docs")
    page.get_by_role("button", name="Authorize").click()
    dialog = page.locator(".dialog-ux")
    dialog.get_by_label("username:").fill(ADMIN_EMAIL)
    dialog.get_by_label("password:", exact=True).fill(ADMIN_PASSWORD)
    dialog.get_by_role("button", name="Apply given OAuth2 credentials").click()
    expect(dialog.get_by_role("button", name="Remove authorization")).to_be_visible()
    dialog.get_by_role("button", name="Close").last.click()
    operation = page.locator("#operations-users-read_me_api_v1_users_me_get")
    operation.click()
    operation.get_by_role("button", name="Try it out").click()
    with page.expect_response("**/api/v1/users/me") as answered:
        operation.get_by_role("button", name="Execute").click()
    assert answered.value.status == 200
    shown = operation.locator(".live-responses-table tbody .response-col_status")
    expect(shown).to_contain_text("200")
    page.goto("/redoc")
    expect(page.get_by_text("Accounts, sign-in, token refresh and sign-out.").first).to_be_visible()
    assert site.blocked == []
    context.close()


NEW_PASSWORD = "a brand new passphrase from the mail"


def test_a_forgotten_password_is_reset_from_the_mailed_link(site: Site) -> None:
    email, username = _person(site)
    context = site.context()
    page = context.new_page()
    page.goto("/account/sign-in")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Send me a link").click()
    expect(page.get_by_role("status")).to_contain_text("If an account has this address")

    page.goto(page_of(site.mail(email, "reset")))
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change my password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password is changed")
    sign_in(page, email, NEW_PASSWORD)
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible()
    context.close()


def test_a_new_account_is_verified_from_its_mail_and_the_banner_goes(site: Site) -> None:
    number = f"{time.monotonic_ns() % 10**9}{next(_people)}"
    email = f"fresh{number}@example.com"
    context = site.context()
    page = context.new_page()
    page.goto("/account/register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Username").fill(f"fresh{number}")
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    sign_in(page, email)
    page.goto("/account/profile")
    banner = page.get_by_role("region", name="Confirm your email address")
    expect(banner).to_be_visible()

    # What a mail scanner does first: open the link. That spends nothing.
    link = page_of(site.mail(email, "confirm"))
    context.request.get(link)
    page.goto(link)
    page.get_by_role("button", name="Confirm my address").click()
    expect(page).to_have_url(f"{site.url}/account/profile?done=verified")
    expect(page.get_by_role("status")).to_contain_text("The email address is confirmed")
    expect(banner).to_have_count(0)
    context.close()


def test_a_new_email_is_the_accounts_once_confirmed_from_its_mail(site: Site) -> None:
    email, username = _person(site)
    new_email = f"new-{username}@example.com"
    context = site.context()
    page = context.new_page()
    sign_in(page, email)
    page.goto("/account/profile")
    page.get_by_label("Email", exact=True).fill(new_email)
    page.get_by_label("Current password").first.fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("A link to confirm the new address")
    expect(page.locator("dl.facts")).to_contain_text(email)

    page.goto(page_of(site.mail(new_email, "confirm")))
    page.get_by_role("button", name="Confirm the new address").click()
    expect(page.get_by_role("status")).to_contain_text("The new email address is confirmed")
    expect(page.locator("dl.facts")).to_contain_text(new_email)
    context.close()


def _signed_in_page(site: Site, email: str, password: str) -> Page:
    page = site.context().new_page()
    sign_in(page, email, password)
    return page


def test_no_page_has_a_serious_accessibility_violation(site: Site) -> None:
    from tests.pages.conftest import AXE

    script = AXE.read_text()
    anonymous = site.context().new_page()
    admin = _signed_in_page(site, ADMIN_EMAIL, ADMIN_PASSWORD)
    number = f"{time.monotonic_ns() % 10**9}{next(_people)}"
    email = f"unverified{number}@example.com"
    user_id = site.register(email, f"unverified{number}")
    unverified = _signed_in_page(site, email, DEFAULT_PASSWORD)
    token = "AAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
    pages = [
        (anonymous, "/account/sign-in"),
        (anonymous, "/account/register"),
        (anonymous, "/no-such-page"),
        (anonymous, "/account/forgot-password"),
        (anonymous, "/account/forgot-password?done=reset-link-sent"),
        (anonymous, f"/account/reset-password?token={token}"),
        (anonymous, "/account/reset-password"),
        (anonymous, f"/account/verify?token={token}"),
        (anonymous, f"/account/undo-email-change?token={token}"),
        (unverified, "/account/profile"),
        (unverified, f"/account/confirm-email?token={token}"),
        (unverified, "/account/delete"),
        (admin, "/account/profile"),
        (admin, "/account/devices"),
        (admin, "/admin/"),
        (admin, "/admin/users"),
        (admin, "/admin/users/1"),
        (admin, "/admin/users?search=unverified"),
        (admin, f"/admin/users/{user_id}"),
    ]
    problems = []
    for page, path in pages:
        page.goto(path)
        page.evaluate(script)
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        for violation in result["violations"]:
            if violation["impact"] in ("serious", "critical"):
                problems.append((path, violation["id"], violation["help"]))
    assert problems == []
