"""Turns a raw User-Agent header into the device description shown in session lists."""

from dataclasses import dataclass
from functools import lru_cache

from ua_parser import parse

MAX_USER_AGENT_LENGTH = 512


@dataclass(frozen=True, slots=True)
class Device:
    browser: str
    os: str
    device_type: str


def prepare_parser() -> None:
    """Build the User-Agent parser now. It is built on first use, which took about 90 ms of
    the event loop's time at the first sign-in after start, while every request waited."""
    parse("")


def _version(name: str, major: str | None) -> str:
    return f"{name} {major}" if major else name


@lru_cache(maxsize=2048)
def describe_device(user_agent: str) -> Device:
    """Parse a User-Agent into browser, OS and a coarse device type."""
    result = parse(user_agent[:MAX_USER_AGENT_LENGTH])
    browser = (
        _version(result.user_agent.family, result.user_agent.major)
        if result.user_agent
        else "Other"
    )
    os_name = _version(result.os.family, result.os.major) if result.os else "Other"
    lowered = user_agent.lower()
    device_family = result.device.family if result.device else "Other"
    if device_family == "Spider" or "bot" in lowered:
        device_type = "bot"
    elif "ipad" in lowered or "tablet" in lowered:
        device_type = "tablet"
    elif "mobi" in lowered or "iphone" in lowered or "android" in lowered:
        device_type = "mobile"
    elif result.os and result.os.family in {"Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS"}:
        device_type = "desktop"
    else:
        device_type = "other"
    return Device(browser=browser, os=os_name, device_type=device_type)
