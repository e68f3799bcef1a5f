"""The session policy: how far a sign-in or a refresh extends a session."""

from datetime import UTC, datetime, timedelta

from app.core.config import Settings
from app.services.session_policy import SessionPolicy

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def test_settings_of_zero_turn_a_limit_off() -> None:
    defaults = SessionPolicy.from_settings(Settings(_env_file=None))
    assert defaults == SessionPolicy(
        refresh_lifetime=WEEK, absolute_lifetime=timedelta(days=30), idle_timeout=None
    )
    unlimited = SessionPolicy.from_settings(
        Settings(_env_file=None, SESSION_ABSOLUTE_LIFETIME_DAYS=0, SESSION_IDLE_TIMEOUT_MINUTES=45)
    )
    assert unlimited.absolute_lifetime is None
    assert unlimited.idle_timeout == timedelta(minutes=45)


def test_without_limits_a_session_lasts_a_refresh_lifetime_from_each_use() -> None:
    policy = SessionPolicy(refresh_lifetime=WEEK, absolute_lifetime=None, idle_timeout=None)
    assert policy.absolute_end(NOW) is None
    assert policy.idle_end(NOW) is None
    assert policy.expiry(NOW, absolute_end=None) == NOW + WEEK


def test_the_earliest_of_the_three_ends_wins() -> None:
    policy = SessionPolicy(
        refresh_lifetime=WEEK, absolute_lifetime=timedelta(days=30), idle_timeout=timedelta(hours=1)
    )
    signed_in = NOW - timedelta(days=29, hours=23, minutes=30)
    absolute_end = policy.absolute_end(signed_in)
    assert absolute_end == NOW + timedelta(minutes=30)
    assert policy.idle_end(NOW) == NOW + timedelta(hours=1)
    # Half an hour before the absolute end, the idle end comes after it.
    assert policy.expiry(NOW, absolute_end=absolute_end) == absolute_end
    # Far from it, the idle end comes before the refresh token's lifetime.
    assert policy.expiry(NOW, absolute_end=NOW + WEEK) == NOW + timedelta(hours=1)
    # An idle timeout longer than the refresh lifetime changes nothing.
    lax = SessionPolicy(refresh_lifetime=WEEK, absolute_lifetime=None, idle_timeout=WEEK * 2)
    assert lax.expiry(NOW, absolute_end=None) == NOW + WEEK
