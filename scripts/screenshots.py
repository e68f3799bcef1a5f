"""Take screenshots of every page at desktop and phone width into docs/screenshots/:

    .venv/bin/python scripts/screenshots.py

It runs the service on SQLite in a temporary folder, fills it with a few users and devices,
and drives Debian's chromium with Playwright, light and dark.
"""

import sys
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import ViewportSize, sync_playwright

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
PAGES = {
    "sign-in": "/account/sign-in",
    "register": "/account/register",
    "profile": "/account/profile",
    "devices": "/account/devices",
    "admin-overview": "/admin/",
    "admin-users": "/admin/users",
    "admin-user": "/admin/users/2",
    "not-found": "/account/no-such-page",
    "docs": "/docs",
}


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


def main() -> None:
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
                context = browser.new_context(
                    base_url=url,
                    viewport=viewport,
                    color_scheme=scheme,
                )
                page = context.new_page()
                for name, path in PAGES.items():
                    if name == "profile":
                        sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
                    page.goto(path)
                    page.wait_for_load_state("networkidle")
                    page.screenshot(path=OUT / f"{name}-{size}-{scheme}.png", full_page=True)
                context.close()
        browser.close()
    print(f"screenshots in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
