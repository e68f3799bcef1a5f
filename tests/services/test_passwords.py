"""The password policy: each rule with real inputs, the built-in list of common passwords,
and the breach check against a fake range API on loopback."""

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from structlog.testing import capture_logs

from app.core.errors import PasswordCheckUnavailable, PasswordRejected
from app.services.breached_passwords import PwnedPasswords
from app.services.passwords import PasswordPolicy, common_passwords
from tests.conftest import make_settings
from tests.hibp_server import Behaviour, FakeRangeApi, fake_range_api, sha1_hex

EMAIL = "alice.liddell@example.com"
USERNAME = "Wonderland42"
PASSPHRASE = "vivid otter carries seventeen lanterns"
LOCAL = PasswordPolicy(min_length=8, max_length=256, common=common_passwords())


async def _check(policy: PasswordPolicy, password: str) -> None:
    await policy.check(password, email=EMAIL, username=USERNAME)


@asynccontextmanager
async def _policy(
    api: FakeRangeApi, *, fail_closed: bool = False, timeout_seconds: float = 2.0
) -> AsyncIterator[PasswordPolicy]:
    policy = PasswordPolicy(
        min_length=8,
        max_length=256,
        common=common_passwords(),
        breached=PwnedPasswords(api.url, timeout_seconds=timeout_seconds),
        fail_closed=fail_closed,
    )
    try:
        yield policy
    finally:
        await policy.aclose()


@pytest.fixture
def range_api() -> Iterator[FakeRangeApi]:
    with fake_range_api() as api:
        yield api


def test_the_list_holds_over_10000_common_passwords_that_pass_the_length_rule() -> None:
    common = common_passwords()
    # The union of SecLists' top 10 000 and zxcvbn's list; its header gives the derivation.
    assert len(common) == 13_073
    assert all(len(password) >= 8 and password == password.lower() for password in common)
    assert {"password", "password123", "iloveyou", "qwertyuiop"} <= common
    assert not any(password.startswith("#") for password in common)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("seven7!", "at least 8 characters"),
        ("x" * 257, "at most 256 characters"),
        (" \t" * 8, "only white space"),
        ("nul\x00inside-it", "NUL characters"),
        (EMAIL.upper(), "your email or username"),
        ("Alice.Liddell", "your email or username"),
        ("wonderland42", "your email or username"),
        ("password123", "too common"),
        ("Password123", "too common"),
        ("QWERTYUIOP", "too common"),
        ("password2024!", "too common"),
        ("Sunshine 99?", "too common"),
        # Names and patterns that zxcvbn's list leaves out and SecLists' list puts back.
        ("jennifer", "too common"),
        ("Michelle1", "too common"),
        ("00000000", "too common"),
        ("987654321", "too common"),
        ("12341234", "too common"),
    ],
)
async def test_each_rule_refuses_with_its_own_message(password: str, message: str) -> None:
    with pytest.raises(PasswordRejected, match=message):
        await _check(LOCAL, password)


@pytest.mark.parametrize(
    "password",
    [
        PASSPHRASE,
        "Tq7#vLx9!mRz2@pK",
        "x" * 256,
        # A common password inside a longer one, or behind a prefix, is not the listed one.
        "my password123 is not my whole password",
        "2024password",
        "glacier-mango-741",
    ],
)
async def test_uncommon_passwords_pass(password: str) -> None:
    await _check(LOCAL, password)


async def test_from_settings_takes_the_lengths_and_no_breach_check_unless_enabled() -> None:
    settings = make_settings("sqlite:///unused.db", PASSWORD_MIN_LENGTH=12)
    policy = PasswordPolicy.from_settings(settings)
    with pytest.raises(PasswordRejected, match="at least 12 characters"):
        await _check(policy, "elevenchars")
    await _check(policy, PASSPHRASE)
    await policy.aclose()


async def test_from_settings_checks_breaches_at_the_configured_api(
    range_api: FakeRangeApi,
) -> None:
    range_api.add(PASSPHRASE, 3)
    settings = make_settings("sqlite:///unused.db", HIBP_ENABLED=True, HIBP_API_URL=range_api.url)
    policy = PasswordPolicy.from_settings(settings)
    try:
        with pytest.raises(PasswordRejected, match="data breach"):
            await _check(policy, PASSPHRASE)
    finally:
        await policy.aclose()


async def test_a_password_whose_suffix_is_listed_is_refused(range_api: FakeRangeApi) -> None:
    range_api.add(PASSPHRASE, 42)
    async with _policy(range_api) as policy:
        with pytest.raises(PasswordRejected, match="data breach"):
            await _check(policy, PASSPHRASE)


async def test_a_password_whose_suffix_is_absent_passes(range_api: FakeRangeApi) -> None:
    range_api.add("some other passphrase entirely", 42)
    async with _policy(range_api) as policy:
        await _check(policy, PASSPHRASE)
    assert len(range_api.paths) == 1


async def test_padding_entries_with_a_count_of_0_are_ignored(range_api: FakeRangeApi) -> None:
    range_api.add(PASSPHRASE, 0)
    async with _policy(range_api) as policy:
        await _check(policy, PASSPHRASE)
    assert range_api.headers[0]["add-padding"] == "true"


async def test_only_the_5_digit_prefix_of_the_hash_reaches_the_server(
    range_api: FakeRangeApi,
) -> None:
    passwords = [PASSPHRASE, "Tq7#vLx9!mRz2@pK", "correct horse battery staple"]
    async with _policy(range_api) as policy:
        for password in passwords:
            await _check(policy, password)
    assert range_api.paths == [f"/range/{sha1_hex(password)[:5]}" for password in passwords]
    for password in passwords:
        assert not any(sha1_hex(password)[5:10] in path for path in range_api.paths)


async def test_the_local_rules_decide_before_the_server_is_asked(range_api: FakeRangeApi) -> None:
    range_api.behaviour = "error"
    async with _policy(range_api, fail_closed=True) as policy:
        with pytest.raises(PasswordRejected, match="too common"):
            await _check(policy, "Password123")
    assert range_api.paths == []


async def _fails_open_or_closed(api: FakeRangeApi, *, fail_closed: bool) -> None:
    """Check a password the server cannot vouch for: accepted with a warning when the policy
    fails open, PasswordCheckUnavailable when it fails closed; within the timeout either way."""
    started = time.monotonic()
    with capture_logs() as logs:
        async with _policy(api, fail_closed=fail_closed, timeout_seconds=0.3) as policy:
            if fail_closed:
                with pytest.raises(PasswordCheckUnavailable):
                    await _check(policy, PASSPHRASE)
            else:
                await _check(policy, PASSPHRASE)
    assert time.monotonic() - started < 2
    assert [(log["event"], log["log_level"], log["outcome"]) for log in logs] == [
        ("breach_check_unavailable", "warning", "refused" if fail_closed else "accepted")
    ]


@pytest.mark.parametrize("fail_closed", [False, True])
@pytest.mark.parametrize("behaviour", ["error", "garbage", "hang", "trickle"])
async def test_a_server_without_a_usable_answer_counts_as_unreachable(
    range_api: FakeRangeApi, behaviour: Behaviour, fail_closed: bool
) -> None:
    range_api.add(PASSPHRASE, 42)
    range_api.behaviour = behaviour
    await _fails_open_or_closed(range_api, fail_closed=fail_closed)
    assert len(range_api.paths) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"A" * 100_000,
        b"0018A45C4D1DEF81644B54AB7F969B88D65:1\r\nnot an entry\r\n",
    ],
    ids=["empty", "one-long-line", "one-bad-line"],
)
async def test_a_malformed_range_counts_as_unreachable(
    range_api: FakeRangeApi, body: bytes
) -> None:
    range_api.behaviour = "garbage"
    range_api.garbage = body
    await _fails_open_or_closed(range_api, fail_closed=True)


@pytest.mark.parametrize("fail_closed", [False, True])
async def test_a_server_that_is_down_counts_as_unreachable(fail_closed: bool) -> None:
    with fake_range_api() as api:
        api.add(PASSPHRASE, 42)
    await _fails_open_or_closed(api, fail_closed=fail_closed)
