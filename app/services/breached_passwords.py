"""Have I Been Pwned's Pwned Passwords range API: has a password appeared in a breach?

k-anonymity: only the first five hexadecimal digits of the password's SHA-1 leave the process.
The API answers every hash suffix it knows under that prefix, with padding entries of count 0
mixed in so that the response size says nothing either, and the match is made here.
"""

import asyncio
import hashlib
import re
from collections.abc import AsyncGenerator
from contextlib import aclosing

import httpx

from app.core.config import Settings

_PREFIX_LENGTH = 5
_ENTRY = re.compile(rb"([0-9A-Fa-f]{35}):([0-9]{1,20})")
# An entry is 35 digits, a colon and a count; anything longer without a line break is not a
# range, and refusing it keeps the memory a response takes bounded whatever the server sends.
_MAX_LINE_BYTES = 64


class BreachCheckUnavailable(Exception):
    """The range API gave no usable answer: unreachable, too slow, an error or a malformed body."""


class PwnedPasswords:
    """A client of the range API, with one connection pool for the life of the process."""

    def __init__(self, base_url: str, *, timeout_seconds: float) -> None:
        self._base_url = base_url
        self._timeout_seconds = timeout_seconds
        self._client = httpx.AsyncClient(
            timeout=timeout_seconds,
            headers={"Add-Padding": "true", "User-Agent": "fastapi-auth-service"},
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> "PwnedPasswords":
        """A client of HIBP_API_URL that gives up after HIBP_TIMEOUT_SECONDS."""
        return cls(settings.HIBP_API_URL, timeout_seconds=settings.HIBP_TIMEOUT_SECONDS)

    async def is_breached(self, password: str) -> bool:
        """Whether the password is in the breach corpus; BreachCheckUnavailable if unknown."""
        # The API is keyed by SHA-1; the hash protects nothing here, the prefix is public.
        digest = hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper()
        prefix, suffix = digest[:_PREFIX_LENGTH], digest[_PREFIX_LENGTH:].encode()
        try:
            # One deadline for the whole exchange: httpx's timeouts apply to each read, which a
            # server sending a byte at a time would never exceed.
            async with asyncio.timeout(self._timeout_seconds):
                return await self._range_contains(prefix, suffix)
        except (httpx.HTTPError, TimeoutError) as exc:
            raise BreachCheckUnavailable(type(exc).__name__) from exc

    async def _range_contains(self, prefix: str, suffix: bytes) -> bool:
        async with self._client.stream("GET", self._base_url + prefix) as response:
            if response.status_code != 200:
                raise BreachCheckUnavailable(f"status {response.status_code}")
            found = False
            entries = 0
            async with aclosing(_lines(response)) as lines:
                async for line in lines:
                    if not line:
                        continue
                    entry = _ENTRY.fullmatch(line)
                    if entry is None:
                        raise BreachCheckUnavailable("malformed range")
                    entries += 1
                    # Padding entries have a count of 0: they are not in any breach.
                    if entry[1].upper() == suffix and int(entry[2]) > 0:
                        found = True
        # Every prefix has hundreds of entries: an empty range is a fault, not a clean bill.
        if entries == 0:
            raise BreachCheckUnavailable("empty range")
        return found

    async def aclose(self) -> None:
        """Close the connection pool; once, at shutdown."""
        await self._client.aclose()


async def _lines(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    """The body's lines without their line breaks, holding one partial line at most."""
    pending = b""
    async for chunk in response.aiter_bytes():
        *lines, pending = (pending + chunk).split(b"\n")
        if len(pending) > _MAX_LINE_BYTES:
            raise BreachCheckUnavailable("malformed range")
        for line in lines:
            yield line.strip()
    yield pending.strip()
