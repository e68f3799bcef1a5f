"""The session store's contract, kept by every backend that implements it (see conftest.py)."""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from app.domain.sessions import RefreshGrant, Rotation, RotationOutcome, SessionRecord
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
            idle_expires_at=None,
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
                idle_expires_at=None,
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
        idle_expires_at=None,
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


# --- the session policy's limits ----------------------------------------------------------------


def _limited(*, absolute: timedelta | None, idle: timedelta | None) -> SessionRecord:
    """A session signed in at NOW under limits; it ends at the first of its ends."""
    session = session_record(NOW)
    absolute_end = NOW + absolute if absolute else None
    idle_end = NOW + idle if idle else None
    ends = [end for end in (session.expires_at, absolute_end, idle_end) if end is not None]
    return replace(
        session,
        expires_at=min(ends),
        absolute_expires_at=absolute_end,
        idle_expires_at=idle_end,
    )


async def _rotate(
    sessions: SessionStore,
    session: SessionRecord,
    *,
    at: datetime,
    presented: str = "jti-0",
    new: str = "jti-1",
    idle_end: datetime | None = None,
) -> Rotation:
    """Rotate as the service would: a refresh lifetime, or up to the idle end if it is sooner."""
    return await sessions.rotate(
        session.id,
        user_id=session.user_id,
        presented_jti=presented,
        new_jti=new,
        now=at,
        expires_at=min(end for end in (at + timedelta(days=7), idle_end) if end is not None),
        idle_expires_at=idle_end,
        grace=GRACE,
    )


async def test_the_limits_are_stored_with_the_session(sessions: SessionStore) -> None:
    session = _limited(absolute=timedelta(days=30), idle=timedelta(hours=1))
    await sessions.create(session)
    assert await sessions.get(session.id, user_id=ADMIN_ID) == session
    assert await sessions.list_live(ADMIN_ID, NOW) == [session]


async def test_a_rotation_never_extends_a_session_past_its_absolute_end(
    sessions: SessionStore,
) -> None:
    session = _limited(absolute=timedelta(days=10), idle=None)
    await sessions.create(session)
    # Far from the absolute end, the full extension.
    early = NOW + timedelta(days=1)
    rotated = await _rotate(sessions, session, at=early)
    assert rotated == Rotation(
        RotationOutcome.ROTATED, RefreshGrant("jti-1", early, early + timedelta(days=7))
    )
    # Within a refresh lifetime of it, only up to it, as the store and the grant say.
    late = NOW + timedelta(days=5)
    capped = await _rotate(sessions, session, at=late, presented="jti-1", new="jti-2")
    absolute_end = NOW + timedelta(days=10)
    assert capped == Rotation(RotationOutcome.ROTATED, RefreshGrant("jti-2", late, absolute_end))
    stored = await sessions.get(session.id, user_id=ADMIN_ID)
    assert stored is not None
    assert (stored.expires_at, stored.absolute_expires_at) == (absolute_end, absolute_end)
    # The previous token's grace hands out the capped grant, not a longer one.
    grace = await _rotate(sessions, session, at=late + GRACE / 2, presented="jti-1", new="x")
    assert grace == Rotation(RotationOutcome.GRACE, capped.current)
    # At the absolute end exactly the session is over; an instant before, it is not.
    just_before = absolute_end - timedelta(microseconds=1)
    last = await _rotate(sessions, session, at=just_before, presented="jti-2", new="jti-3")
    assert last == Rotation(
        RotationOutcome.ROTATED, RefreshGrant("jti-3", just_before, absolute_end)
    )
    dead = await _rotate(sessions, session, at=absolute_end, presented="jti-3", new="jti-4")
    assert dead == Rotation(RotationOutcome.DEAD, None)
    assert await sessions.list_live(ADMIN_ID, absolute_end) == []
    assert await sessions.count_live(absolute_end) == 0


async def test_a_session_not_refreshed_before_its_idle_end_is_over(
    sessions: SessionStore,
) -> None:
    idle = timedelta(hours=1)
    session = _limited(absolute=None, idle=idle)
    await sessions.create(session)
    assert session.expires_at == NOW + idle
    # Refreshed in time: the idle end moves with the refresh, and the expiry with it.
    used = NOW + timedelta(minutes=59)
    rotation = await _rotate(sessions, session, at=used, idle_end=used + idle)
    assert rotation.outcome is RotationOutcome.ROTATED
    stored = await sessions.get(session.id, user_id=ADMIN_ID)
    assert stored is not None
    assert (stored.expires_at, stored.idle_expires_at) == (used + idle, used + idle)
    # At the idle end exactly, as at any expiry, the session is over.
    ends = replace(_limited(absolute=None, idle=idle), id="idle-at-the-edge")
    await sessions.create(ends)
    assert (await _rotate(sessions, ends, at=NOW + idle)).outcome is RotationOutcome.DEAD


async def test_an_idle_timeout_turned_off_is_forgotten_at_the_next_rotation(
    sessions: SessionStore,
) -> None:
    session = _limited(absolute=None, idle=timedelta(hours=1))
    await sessions.create(session)
    later = NOW + timedelta(minutes=10)
    assert (await _rotate(sessions, session, at=later)).outcome is RotationOutcome.ROTATED
    stored = await sessions.get(session.id, user_id=ADMIN_ID)
    assert stored is not None
    assert (stored.idle_expires_at, stored.expires_at) == (None, later + timedelta(days=7))


async def test_racing_rotations_at_the_absolute_end_share_one_capped_grant(
    sessions: SessionStore,
) -> None:
    session = _limited(absolute=timedelta(days=1), idle=None)
    await sessions.create(session)
    absolute_end = NOW + timedelta(days=1)
    at = absolute_end - timedelta(seconds=2)
    outcomes = await asyncio.gather(
        *(_rotate(sessions, session, at=at, new=f"child-{index}") for index in range(8))
    )
    assert [o.outcome for o in outcomes].count(RotationOutcome.ROTATED) == 1
    grants = {o.current for o in outcomes}
    assert len(grants) == 1
    (grant,) = grants
    assert grant is not None
    assert grant.expires_at == absolute_end
    # And once the end has passed, neither the winner's token nor the losers' gets through.
    for presented in (grant.jti, "jti-0"):
        late = await _rotate(sessions, session, at=absolute_end, presented=presented, new="x")
        assert late.outcome is RotationOutcome.DEAD
