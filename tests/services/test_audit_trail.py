"""The audit trail on the real database: what an entry keeps, and what happens to entries while
the database is down."""

import pytest

from app.core.clock import SystemClock
from app.core.errors import StoreUnavailable
from app.core.events import SecurityEvent
from app.services.audit_trail import MAX_PENDING, AuditTrail
from app.storage.factory import build_storage
from tests.conftest import make_settings, serve


async def test_an_entry_keeps_the_account_events_without_personal_data_or_secrets(
    database_url: str,
) -> None:
    settings = make_settings(database_url)
    async with serve(settings):  # migrates the database
        storage = build_storage(settings)
        try:
            trail = AuditTrail(storage.audit, SystemClock())
            trail.emit(SecurityEvent.LOGIN_SUCCEEDED, user_id=7, session_id="s1", email="a@b.c")
            trail.emit(SecurityEvent.MAIL_SENT, user_id=7, link="https://x/?token=secret")
            trail.emit(SecurityEvent.REFRESHED, user_id=7, session_id="s1")
            trail.emit(SecurityEvent.LOGIN_FAILED, user_id=None)
            trail.emit(SecurityEvent.ADMIN_CHANGED_USER, user_id=7, admin_id=1, fields=["email"])
            trail.emit(SecurityEvent.LOGIN_SUCCEEDED, user_id=8, session_id="s2")
            history = await trail.history(7, limit=10)
        finally:
            await storage.close()
    assert trail.pending == 0
    assert [(entry.event, entry.details) for entry in history] == [
        ("admin_changed_user", {"admin_id": 1, "fields": ["email"]}),
        ("login_succeeded", {"session_id": "s1"}),
    ]


async def test_entries_wait_while_the_database_is_down() -> None:
    settings = make_settings("postgresql://postgres@127.0.0.1:9/down", STORE_DEADLINE_SECONDS=0.5)
    storage = build_storage(settings)
    try:
        trail = AuditTrail(storage.audit, SystemClock())
        for user_id in range(3):
            trail.emit(SecurityEvent.REGISTERED, user_id=user_id)
        with pytest.raises(StoreUnavailable):
            await trail.flush()
        assert trail.pending == 3
        # Held up long enough, the oldest make room for the newest.
        for user_id in range(MAX_PENDING):
            trail.emit(SecurityEvent.REGISTERED, user_id=user_id)
        assert trail.pending == MAX_PENDING
    finally:
        await storage.close()
