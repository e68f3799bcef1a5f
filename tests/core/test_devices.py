"""The User-Agent parser behind the session list's device descriptions."""

import subprocess
import sys
from pathlib import Path

from app.core.devices import describe_device

ROOT = Path(__file__).resolve().parents[2]

# In a fresh interpreter: the parser is a process-wide global, which other tests build.
_START_UP = """
import asyncio, sys
import ua_parser
from app.main import create_app
from tests.conftest import make_settings

async def main() -> None:
    app = create_app(make_settings(sys.argv[1]))
    built_before = "parser" in vars(ua_parser)
    async with app.router.lifespan_context(app):
        print(built_before, "parser" in vars(ua_parser))

asyncio.run(main())
"""


def test_the_parser_is_built_at_start_up_not_at_the_first_sign_in(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _START_UP, f"sqlite:///{tmp_path}/auth.db"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.split() == ["False", "True"]


def test_devices_are_described_from_the_user_agent() -> None:
    firefox = describe_device("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko Firefox/120.0")
    assert (firefox.browser, firefox.os, firefox.device_type) == ("Firefox 120", "Linux", "desktop")
    assert describe_device("").device_type == "other"
