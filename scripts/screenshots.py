"""Take screenshots of every page at desktop and phone width into docs/screenshots/:

    .venv/bin/python scripts/screenshots.py [NAME ...]

(only the pages NAMEd, such as `profile admin-user`, when any are).

It runs the service on SQLite in a temporary folder, fills it with a few users and devices,
and drives Debian's chromium with Playwright, light and dark.
"""

import sys
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import Page, ViewportSize, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.factories import (  # noqa: E402
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    DEFAULT_PASSWORD,
    FIREFOX_UA,
    IPHONE_UA,
)
from tests.pages.conftest import CHROMIUM_FLAGS, chromium_path, sign_in  # noqa: E402
from tests.servers import RUN_PY, running_server  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
SIZES: dict[str, ViewportSize] = {
    "desktop": {"width": 1280, "height": 860},
    "phone": {"width": 390, "height": 844},
}
# A token of the mailed links' shape: the pages they open show their button without
# checking it (only the button spends it).
TOKEN = "AAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
ADA = "ada@example.com"
# name: (path, who is signed in: nobody, the admin, or ada, whose address is not confirmed)
PAGES: dict[str, tuple[str, str | None]] = {
    "sign-in": ("/account/sign-in", None),
    "register": ("/account/register", None),
    "forgot-password": ("/account/forgot-password", None),
    "forgot-password-sent": ("/account/forgot-password?done=reset-link-sent", None),
    "reset-password": (f"/account/reset-password?token={TOKEN}", None),
    "verify": (f"/account/verify?token={TOKEN}", None),
    "undo-email-change": (f"/account/undo-email-change?token={TOKEN}", None),
    "link-problem": ("/account/verify", None),
    "profile": ("/account/profile", ADMIN_EMAIL),
    "profile-unverified": ("/account/profile?done=email-change-sent", ADA),
    "delete-account": ("/account/delete", ADA),
    "devices": ("/account/devices", ADMIN_EMAIL),
    "admin-overview": ("/admin/", ADMIN_EMAIL),
    "admin-users": ("/admin/users", ADMIN_EMAIL),
    "admin-user": ("/admin/users/2", ADMIN_EMAIL),
    "not-found": ("/account/no-such-page", ADMIN_EMAIL),
    "docs": ("/docs", ADMIN_EMAIL),
}
PASSWORDS = {ADMIN_EMAIL: ADMIN_PASSWORD, ADA: DEFAULT_PASSWORD}


def _populate(url: str) -> None:
    for index, name in enumerate(("ada", "grace", "linus", "margaret", "ken")):
        httpx.post(
            f"{url}/api/v1/auth/register",
            json={"email": f"{name}@example.com", "username": name, "password": DEFAULT_PASSWORD},
        ).raise_for_status()
        for agent in (FIREFOX_UA, IPHONE_UA)[: 1 + index % 2]:
            httpx.post(
                f"{url}/api/v1/auth/login",
                json={"email": f"{name}@example.com", "password": DEFAULT_PASSWORD},
                headers={"User-Agent": agent},
            ).raise_for_status()
    for agent in (FIREFOX_UA, IPHONE_UA):
        httpx.post(
            f"{url}/api/v1/auth/login",
            json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
            headers={"User-Agent": agent},
        ).raise_for_status()


def main(names: list[str]) -> None:
    unknown = set(names) - set(PAGES)
    if unknown:
        raise SystemExit(f"no such page: {', '.join(sorted(unknown))}; pages: {', '.join(PAGES)}")
    chosen = {name: PAGES[name] for name in names or PAGES}
    OUT.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as workdir,
        running_server(Path(workdir), {"PRESET": "development"}, command=RUN_PY) as (url, _),
        sync_playwright() as driver,
    ):
        _populate(url)
        browser = driver.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        for size, viewport in SIZES.items():
            for scheme in ("light", "dark"):
                pages: dict[str | None, Page] = {}
                for name, (path, who) in chosen.items():
                    if who not in pages:
                        context = browser.new_context(
                            base_url=url, viewport=viewport, color_scheme=scheme
                        )
                        pages[who] = context.new_page()
                        if who is not None:
                            sign_in(pages[who], who, PASSWORDS[who])
                    page = pages[who]
                    page.goto(path)
                    page.wait_for_load_state("networkidle")
                    page.screenshot(path=OUT / f"{name}-{size}-{scheme}.png", full_page=True)
                for page in pages.values():
                    page.context.close()
        browser.close()
    print(f"screenshots in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
