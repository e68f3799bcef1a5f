"""The session store's contract, kept by every backend that implements it (see conftest.py)."""

import asyncio
from datetime import UTC, datetime, timedelta

from app.domain.sessions import RefreshGrant, Rotation, RotationOutcome
from app.storage.protocols import SessionStore
from tests.factories import ADMIN_ID, session_record

# Redis expires keys on its own clock, so the sessions live around the real present.
NOW = datetime.now(UTC).replace(microsecond=0)
GRACE = timedelta(seconds=10)


async def test_create_get_and_owner_check(sessions: SessionStore) -> None:
    session = session_record(NOW)
    await sessions.create(session)
    assert await sessions.get(session.id, user_id=ADMIN_ID) == session
    assert await sessions.get(session.id, user_id=ADMIN_ID + 1) is None
    assert await sessions.get("no-such-session", user_id=ADMIN_ID) is None


async def test_rotation_outcomes(sessions: SessionStore) -> None:
    session = session_record(NOW)
    await sessions.create(session)
    later = NOW + timedelta(minutes=5)
    expires = later + timedelta(days=7)

    async def rotate(presented: str, new: str, at: datetime) -> Rotation:
        return await sessions.rotate(
            session.id,
            user_id=ADMIN_ID,
            presented_jti=presented,
            new_jti=new,
            now=at,
            expires_at=expires,
            grace=GRACE,
        )

    rotated = RefreshGrant("jti-1", later, expires)
    assert await rotate("jti-0", "jti-1", later) == Rotation(RotationOutcome.ROTATED, rotated)
    stored = await sessions.get(session.id, user_id=ADMIN_ID)
    assert stored is not None
    assert (stored.refresh_jti, stored.previous_refresh_jti) == ("jti-1", "jti-0")
    assert (stored.refresh_issued_at, stored.last_seen_at, stored.expires_at) == (
        later,
        later,
        expires,
    )
    assert await sessions.count_live(later) == 1
    # Within the grace period the previous token gets the current one, which stays as it was.
    grace = await rotate("jti-0", "jti-x", later + timedelta(seconds=1))
    assert grace == Rotation(RotationOutcome.GRACE, rotated)
    assert await sessions.get(session.id, user_id=ADMIN_ID) == stored
    assert await sessions.count_live(later) == 1
    assert await rotate("jti-0", "jti-y", later + GRACE * 2) == Rotation(
        RotationOutcome.REUSED, None
    )
    assert await sessions.count_live(later) == 0
    # Revoked: Redis forgets the session, SQL keeps it marked.
    revoked = await sessions.get(session.id, user_id=ADMIN_ID)
    assert revoked is None or revoked.revoked_at is not None
    assert await rotate("jti-1", "jti-2", later + GRACE * 3) == Rotation(RotationOutcome.DEAD, None)
    assert await sessions.count_live(later) == 0


async def test_racing_rotations_have_one_winner(sessions: SessionStore) -> None:
    session = session_record(NOW)
    await sessions.create(session)
    outcomes = await asyncio.gather(
        *(
            sessions.rotate(
                session.id,
                user_id=ADMIN_ID,
                presented_jti="jti-0",
                new_jti=f"child-{index}",
                now=NOW + timedelta(seconds=1),
                expires_at=NOW + timedelta(days=7),
                grace=GRACE,
            )
            for index in range(8)
        )
    )
    assert [o.outcome for o in outcomes].count(RotationOutcome.ROTATED) == 1
    assert {o.outcome for o in outcomes} <= {RotationOutcome.ROTATED, RotationOutcome.GRACE}


async def test_a_rotation_for_another_user_changes_nothing(sessions: SessionStore) -> None:
    session = session_record(NOW)
    await sessions.create(session)
    rotation = await sessions.rotate(
        session.id,
        user_id=ADMIN_ID + 1,
        presented_jti="jti-0",
        new_jti="stolen",
        now=NOW,
        expires_at=NOW + timedelta(days=7),
        grace=GRACE,
    )
    assert rotation.outcome is RotationOutcome.DEAD
    assert await sessions.get(session.id, user_id=ADMIN_ID) == session


async def test_touch_revoke_list_and_count(sessions: SessionStore) -> None:
    older, newer, other = (
        session_record(NOW - timedelta(hours=2)),
        session_record(NOW - timedelta(hours=1)),
        session_record(NOW),
    )
    for session in (older, newer, other):
        await sessions.create(session)
    await sessions.touch(older.id, user_id=ADMIN_ID, now=NOW)
    touched = await sessions.get(older.id, user_id=ADMIN_ID)
    assert touched is not None
    assert touched.last_seen_at == NOW
    # Whole records, newest first: the list decodes every field as `get` does.
    assert await sessions.list_live(ADMIN_ID, NOW) == [other, newer, touched]
    assert await sessions.count_live(NOW) == 3
    assert not await sessions.revoke(older.id, user_id=ADMIN_ID + 1, now=NOW)
    assert await sessions.revoke(older.id, user_id=ADMIN_ID, now=NOW)
    assert not await sessions.revoke(older.id, user_id=ADMIN_ID, now=NOW)
    assert await sessions.revoke_all(ADMIN_ID, now=NOW, keep_session_id=other.id) == 1
    assert [s.id for s in await sessions.list_live(ADMIN_ID, NOW)] == [other.id]
    assert await sessions.revoke_all(ADMIN_ID, now=NOW) == 1
    assert await sessions.list_live(ADMIN_ID, NOW) == []
    assert await sessions.count_live(NOW) == 0
    await sessions.ping()
