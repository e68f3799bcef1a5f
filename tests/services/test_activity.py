"""The admin overview's count of recent sign-ins."""

from app.core.events import SecurityEvent
from app.services.activity import RecentSignIns
from tests.clock import OffsetClock


def test_sign_ins_and_failures_are_counted_for_an_hour() -> None:
    clock = OffsetClock()
    recent = RecentSignIns(clock)
    recent.emit(SecurityEvent.LOGIN_SUCCEEDED, user_id=1)
    recent.emit(SecurityEvent.LOGIN_FAILED, user_id=None)
    recent.emit(SecurityEvent.LOGIN_FAILED, user_id=2)
    recent.emit(SecurityEvent.REFRESHED, user_id=1)
    assert recent.last_hour() == (1, 2)
    clock.advance(30 * 60)
    recent.emit(SecurityEvent.LOGIN_SUCCEEDED, user_id=1)
    assert recent.last_hour() == (2, 2)
    clock.advance(31 * 60)
    assert recent.last_hour() == (1, 0)
    clock.advance(60 * 60)
    assert recent.last_hour() == (0, 0)
