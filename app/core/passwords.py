"""Password hashing: argon2id by default, bcrypt on request, off the event loop, bounded."""

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import re
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, TypeVar

import bcrypt
from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError
from pwdlib.hashers import HasherProtocol
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.base import ensure_bytes, ensure_str
from pwdlib.hashers.bcrypt import BcryptHasher

from app.core.config import Settings

BCRYPT_MAX_BYTES = 72
_PREHASHED_BCRYPT_PREFIX = "$bcrypt-sha256$"
_BCRYPT_SALT_RE = re.compile(r"^\$2[abxy]\$(?P<rounds>\d{2})\$[A-Za-z0-9./]{22}")
T = TypeVar("T")


def _lower_thread_priority() -> None:
    """Ten nice levels below the event loop's thread, which then gets about ten times their CPU
    weight when both want a core: a burst of logins cannot delay the other requests. On Linux
    a thread id names one thread for setpriority; elsewhere it would be the whole process."""
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    # A sandbox may forbid it; hashing at normal priority beats a pool that cannot start.
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + 10)


class PrehashedBcryptHasher(HasherProtocol):
    """bcrypt over an HMAC-SHA256 of the password, keyed by the bcrypt salt.

    Plain bcrypt ignores or (since bcrypt 5) refuses everything past 72 bytes, which is as few
    as 18 characters of some scripts. Pre-hashing lifts the limit without truncation; keying the
    HMAC with the per-hash salt keeps a leaked unsalted SHA-256 list from being tested directly.
    """

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds

    @classmethod
    def identify(cls, hash: str | bytes) -> bool:
        return ensure_str(hash).startswith(_PREHASHED_BCRYPT_PREFIX)

    @staticmethod
    def _digest(password: str | bytes, salt: bytes) -> bytes:
        return base64.b64encode(hmac.new(salt, ensure_bytes(password), hashlib.sha256).digest())

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        salt = salt or bcrypt.gensalt(self.rounds)
        inner = bcrypt.hashpw(self._digest(password, salt), salt).decode()
        return _PREHASHED_BCRYPT_PREFIX + inner

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        inner = ensure_str(hash).removeprefix(_PREHASHED_BCRYPT_PREFIX)
        match = _BCRYPT_SALT_RE.match(inner)
        if match is None:
            return False
        salt = inner[: match.end()].encode()
        return bcrypt.checkpw(self._digest(password, salt), inner.encode())

    def check_needs_rehash(self, hash: str | bytes) -> bool:
        match = _BCRYPT_SALT_RE.match(ensure_str(hash).removeprefix(_PREHASHED_BCRYPT_PREFIX))
        return match is None or int(match.group("rounds")) != self.rounds


class LegacyBcryptHasher(BcryptHasher):
    """Verifies plain bcrypt hashes made elsewhere; a password over 72 bytes never matches."""

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        raw = ensure_bytes(password)
        if len(raw) > BCRYPT_MAX_BYTES:
            return False
        return super().verify(raw, hash)


class PasswordHasher:
    """Hashes and verifies passwords in its own low-priority threads, `concurrency` of them."""

    def __init__(
        self,
        *,
        scheme: Literal["argon2id", "bcrypt"],
        argon2_memory_kib: int,
        argon2_time_cost: int,
        argon2_parallelism: int,
        bcrypt_rounds: int,
        concurrency: int,
    ) -> None:
        argon2 = Argon2Hasher(
            time_cost=argon2_time_cost,
            memory_cost=argon2_memory_kib,
            parallelism=argon2_parallelism,
        )
        prehashed_bcrypt = PrehashedBcryptHasher(bcrypt_rounds)
        legacy_bcrypt = LegacyBcryptHasher(rounds=bcrypt_rounds)
        hashers: tuple[HasherProtocol, ...] = (
            (argon2, prehashed_bcrypt, legacy_bcrypt)
            if scheme == "argon2id"
            else (prehashed_bcrypt, argon2, legacy_bcrypt)
        )
        self._hash = PasswordHash(hashers)
        self._threads = ThreadPoolExecutor(
            max_workers=concurrency or (os.cpu_count() or 1),
            thread_name_prefix="password-hash",
            initializer=_lower_thread_priority,
        )
        self._dummy_hash = self._hash.hash(os.urandom(16).hex())

    @classmethod
    def from_settings(cls, settings: Settings) -> "PasswordHasher":
        return cls(
            scheme=settings.PASSWORD_HASH_SCHEME,
            argon2_memory_kib=settings.ARGON2_MEMORY_COST_KIB,
            argon2_time_cost=settings.ARGON2_TIME_COST,
            argon2_parallelism=settings.ARGON2_PARALLELISM,
            bcrypt_rounds=settings.BCRYPT_ROUNDS,
            concurrency=settings.PASSWORD_HASH_CONCURRENCY,
        )

    def close(self) -> None:
        """Let the hashing threads end once the hashes in progress are done."""
        self._threads.shutdown(wait=False)

    async def _off_loop(self, work: Callable[..., T], *args: str) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, work, *args)

    async def hash(self, password: str) -> str:
        """Hash a password with the current scheme."""
        return await self._off_loop(self._hash.hash, password)

    async def verify(self, password: str, stored_hash: str | None) -> tuple[bool, str | None]:
        """Check a password; also return a new hash when the stored one is outdated.

        With no stored hash a dummy hash is verified, so that an unknown account costs the same
        time as a wrong password.
        """
        target = stored_hash or self._dummy_hash
        try:
            valid, new_hash = await self._off_loop(self._hash.verify_and_update, password, target)
        except UnknownHashError:
            return False, None
        return (valid and stored_hash is not None), new_hash
