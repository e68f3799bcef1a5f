"""The pages in a real browser: Debian's chromium driven by Playwright, against the service run
by `python run.py` on a free port, once on the embedded backends and once on PostgreSQL +
Redis, mailing through a real SMTP server on loopback. The browser reaches nothing but
loopback: every other request is refused and recorded.
"""

import asyncio
import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Route, sync_playwright

from tests.conftest import POSTGRES_ADMIN_URL, REDIS_TEST_PREFIX, REDIS_TEST_URL, postgres_url
from tests.factories import DEFAULT_PASSWORD
from tests.mail_server import MailServer, link_in, mail_server
from tests.servers import RUN_PY, running_server

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOOPBACK = frozenset({"127.0.0.1", "localhost", "[::1]"})
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError(
            "Debian's chromium is needed for the page tests (apt-get install chromium)"
        )
    return found


@dataclass
class Site:
    """The running service as a browser sees it."""

    url: str
    browser: Browser
    smtp: MailServer
    blocked: list[str] = field(default_factory=list)

    def context(self, **options: object) -> BrowserContext:
        """A fresh browser profile (no cookies) that reaches only loopback."""
        context = self.browser.new_context(base_url=self.url, **options)  # type: ignore[arg-type]

        def loopback_only(route: Route) -> None:
            host = urlsplit(route.request.url).hostname or ""
            if host in LOOPBACK or route.request.url.startswith(("data:", "blob:")):
                route.continue_()
            else:
                self.blocked.append(route.request.url)
                route.abort()

        context.route("**/*", loopback_only)
        return context

    def register(self, email: str, username: str, password: str = DEFAULT_PASSWORD) -> int:
        """Register a user through the API; their id."""
        response = httpx.post(
            f"{self.url}/api/v1/auth/register",
            json={"email": email, "username": username, "password": password},
        )
        assert response.status_code == 201, response.text
        user_id: int = response.json()["id"]
        return user_id

    def mail(self, address: str, subject_word: str, count: int = 1) -> Message:
        """The latest mail to `address` whose subject has `subject_word`, once `count` such
        came."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            found = [
                m for m in self.smtp.inbox.to(address) if subject_word in str(m["Subject"]).lower()
            ]
            if len(found) >= count:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(f"no mail about {subject_word!r} to {address}")


def page_of(mail: Message) -> str:
    """The page a mail's link opens, as a path (the service's PUBLIC_URL is not the test's)."""
    link = link_in(mail)
    return link[link.index("/account/") :]


def sign_in(page: Page, email: str, password: str = DEFAULT_PASSWORD) -> None:
    page.goto("/account/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


# Module-scoped: Playwright's synchronous API runs an event loop in this thread while it is
# open, which the asynchronous tests of other modules could then not start.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def smtp() -> Iterator[MailServer]:
    with mail_server() as server:
        yield server


async def _recreate(name: str, *, create: bool) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def _postgres_database(name: str, *, create: bool) -> None:
    # In a thread of its own: Playwright's synchronous API keeps an event loop running in
    # this one.
    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(asyncio.run, _recreate(name, create=create)).result()


@pytest.fixture(scope="module", params=["embedded", "postgres+redis"])
def site(
    request: pytest.FixtureRequest,
    browser: Browser,
    smtp: MailServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    """The service with its own stores: a fresh SQLite file, or a fresh PostgreSQL database
    and a Redis key prefix of its own; and its own SMTP server."""
    settings = {
        "RATE_LIMIT_LOGIN": "1000/minute",
        "RATE_LIMIT_REGISTER": "1000/minute",
        "RATE_LIMIT_MAIL": "1000/minute",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "SMTP_SECURITY": "none",
        "MAIL_POLL_SECONDS": "0.1",
        "MAIL_RETRY_MAX_SECONDS": "0.5",
    }
    database = f"auth_service_pages_{os.getpid()}_{time.monotonic_ns()}"
    if request.param == "postgres+redis":
        _postgres_database(database, create=True)
        settings |= {
            "DATABASE_URL": postgres_url(database),
            "REDIS_URL": REDIS_TEST_URL,
            "REDIS_KEY_PREFIX": f"{REDIS_TEST_PREFIX}:pages{time.monotonic_ns()}",
        }
    workdir = tmp_path_factory.mktemp("pages")
    try:
        with running_server(workdir, settings, command=RUN_PY) as (url, _):
            yield Site(url=url, browser=browser, smtp=smtp)
    finally:
        if request.param == "postgres+redis":
            _postgres_database(database, create=False)
