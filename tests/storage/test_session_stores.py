"""Every session store keeps the same contract: SQL on SQLite, SQL on PostgreSQL, and Redis."""

import asyncio
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from app.core.config import Settings
from app.core.tokens import new_token_id
from app.domain.sessions import RefreshGrant, Rotation, RotationOutcome, SessionRecord
from app.services.bootstrap import prepare_from_settings
from app.storage import redis_sessions
from app.storage.factory import build_storage
from app.storage.protocols import SessionStore
from app.storage.redis_sessions import RedisSessionStore
from app.storage.sql_sessions import SqlSessionStore
from tests.conftest import (
    REDIS_TEST_PREFIX,
    REDIS_TEST_URL,
    delete_redis_test_keys,
    empty_postgres_tables,
    make_settings,
)

# Redis expires keys on its own clock, so the sessions live around the real present.
NOW = datetime.now(UTC).replace(microsecond=0)
GRACE = timedelta(seconds=10)
ADMIN_ID = 1


@pytest.fixture(params=["sql-on-sqlite", "sql-on-postgresql", "redis"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sql-on-sqlite":
        return make_settings(f"sqlite:///{tmp_path}/auth.db")
    url: str = request.getfixturevalue("postgres_database")
    asyncio.run(empty_postgres_tables())
    delete_redis_test_keys()
    settings = make_settings(url)
    return settings.model_copy(update={"REDIS_URL": None}) if "sql" in request.param else settings


@pytest.fixture
async def store(store_settings: Settings) -> AsyncIterator[SessionStore]:
    await prepare_from_settings(store_settings)
    storage = build_storage(store_settings)
    expected = RedisSessionStore if store_settings.REDIS_URL else SqlSessionStore
    assert isinstance(storage.sessions, expected)
    yield storage.sessions
    await storage.close()


def _session(
    *, created: datetime = NOW, jti: str = "jti-0", ip: str = "192.0.2.1"
) -> SessionRecord:
    return SessionRecord(
        id=new_token_id(),
        user_id=ADMIN_ID,
        created_at=created,
        last_seen_at=created,
        expires_at=created + timedelta(days=7),
        ip_address=ip,
        user_agent="pytest",
        browser="Other",
        os="Other",
        device_type="other",
        refresh_jti=jti,
        refresh_issued_at=created,
    )


async def test_create_get_and_owner_check(store: SessionStore) -> None:
    session = _session()
    await store.create(session)
    assert await store.get(session.id, user_id=ADMIN_ID) == session
    assert await store.get(session.id, user_id=ADMIN_ID + 1) is None
    assert await store.get("no-such-session", user_id=ADMIN_ID) is None


async def test_rotation_outcomes(store: SessionStore) -> None:
    session = _session()
    await store.create(session)
    later = NOW + timedelta(minutes=5)
    expires = later + timedelta(days=7)

    async def rotate(presented: str, new: str, at: datetime) -> Rotation:
        return await store.rotate(
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
    stored = await store.get(session.id, user_id=ADMIN_ID)
    assert stored is not None
    assert (stored.refresh_jti, stored.previous_refresh_jti) == ("jti-1", "jti-0")
    assert (stored.refresh_issued_at, stored.last_seen_at, stored.expires_at) == (
        later,
        later,
        expires,
    )
    assert await store.count_live(later) == 1
    # Within the grace period the previous token gets the current one, which stays as it was.
    grace = await rotate("jti-0", "jti-x", later + timedelta(seconds=1))
    assert grace == Rotation(RotationOutcome.GRACE, rotated)
    assert await store.get(session.id, user_id=ADMIN_ID) == stored
    assert await store.count_live(later) == 1
    assert await rotate("jti-0", "jti-y", later + GRACE * 2) == Rotation(
        RotationOutcome.REUSED, None
    )
    assert await store.count_live(later) == 0
    # Revoked: Redis forgets the session, SQL keeps it marked.
    revoked = await store.get(session.id, user_id=ADMIN_ID)
    assert revoked is None or revoked.revoked_at is not None
    assert await rotate("jti-1", "jti-2", later + GRACE * 3) == Rotation(RotationOutcome.DEAD, None)
    assert await store.count_live(later) == 0


async def test_racing_rotations_have_one_winner(store: SessionStore) -> None:
    session = _session()
    await store.create(session)
    outcomes = await asyncio.gather(
        *(
            store.rotate(
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


async def test_a_rotation_for_another_user_changes_nothing(store: SessionStore) -> None:
    session = _session()
    await store.create(session)
    rotation = await store.rotate(
        session.id,
        user_id=ADMIN_ID + 1,
        presented_jti="jti-0",
        new_jti="stolen",
        now=NOW,
        expires_at=NOW + timedelta(days=7),
        grace=GRACE,
    )
    assert rotation.outcome is RotationOutcome.DEAD
    assert await store.get(session.id, user_id=ADMIN_ID) == session


async def test_touch_revoke_list_and_count(store: SessionStore) -> None:
    older, newer, other = (
        _session(created=NOW - timedelta(hours=2)),
        _session(created=NOW - timedelta(hours=1)),
        _session(),
    )
    for session in (older, newer, other):
        await store.create(session)
    await store.touch(older.id, user_id=ADMIN_ID, now=NOW)
    touched = await store.get(older.id, user_id=ADMIN_ID)
    assert touched is not None
    assert touched.last_seen_at == NOW
    # Whole records, newest first: the list decodes every field as `get` does.
    assert await store.list_live(ADMIN_ID, NOW) == [other, newer, touched]
    assert await store.count_live(NOW) == 3
    assert not await store.revoke(older.id, user_id=ADMIN_ID + 1, now=NOW)
    assert await store.revoke(older.id, user_id=ADMIN_ID, now=NOW)
    assert not await store.revoke(older.id, user_id=ADMIN_ID, now=NOW)
    assert await store.revoke_all(ADMIN_ID, now=NOW, keep_session_id=other.id) == 1
    assert [s.id for s in await store.list_live(ADMIN_ID, NOW)] == [other.id]
    assert await store.revoke_all(ADMIN_ID, now=NOW) == 1
    assert await store.list_live(ADMIN_ID, NOW) == []
    assert await store.count_live(NOW) == 0
    await store.ping()


@pytest.fixture
async def redis_store() -> AsyncIterator[RedisSessionStore]:
    delete_redis_test_keys()
    store = RedisSessionStore(
        Redis.from_url(REDIS_TEST_URL, decode_responses=True), prefix=REDIS_TEST_PREFIX
    )
    yield store
    await store.close()
    delete_redis_test_keys()


async def _rotate_once(store: SessionStore, session: SessionRecord) -> RotationOutcome:
    rotation = await store.rotate(
        session.id,
        user_id=session.user_id,
        presented_jti=session.refresh_jti,
        new_jti=new_token_id(),
        now=NOW,
        expires_at=NOW + timedelta(days=7),
        grace=GRACE,
    )
    return rotation.outcome


async def test_a_session_redis_expired_is_dead_and_leaves_the_live_count(
    redis_store: RedisSessionStore,
) -> None:
    session = _session()
    await redis_store.create(session)
    assert await redis_store.count_live(NOW) == 1
    raw = Redis.from_url(REDIS_TEST_URL)
    # What Redis does when the session's expiry passes; the global index keeps its member.
    await raw.delete(f"{REDIS_TEST_PREFIX}:{{{ADMIN_ID}}}:session:{session.id}")
    await raw.aclose()
    assert await _rotate_once(redis_store, session) is RotationOutcome.DEAD
    assert await redis_store.count_live(NOW) == 0


async def test_redis_reads_and_revokes_many_sessions_in_several_script_calls(
    redis_store: RedisSessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_sessions, "SCRIPT_BATCH", 3)
    sessions = [_session(created=NOW - timedelta(minutes=minute)) for minute in range(8)]
    for session in sessions:
        await redis_store.create(session)
    assert await redis_store.list_live(ADMIN_ID, NOW) == sessions
    kept = sessions[4]
    assert await redis_store.revoke_all(ADMIN_ID, now=NOW, keep_session_id=kept.id) == 7
    assert await redis_store.list_live(ADMIN_ID, NOW) == [kept]
    assert await redis_store.count_live(NOW) == 1


async def test_creation_and_rotation_survive_redis_forgetting_their_scripts(
    redis_store: RedisSessionStore,
) -> None:
    raw = Redis.from_url(REDIS_TEST_URL)
    await raw.script_flush()
    session = _session()
    await redis_store.create(session)
    assert await redis_store.get(session.id, user_id=ADMIN_ID) == session
    await raw.script_flush()
    await raw.aclose()
    assert await _rotate_once(redis_store, session) is RotationOutcome.ROTATED
    assert await redis_store.count_live(NOW) == 1


async def test_redis_expires_a_session_with_it_and_the_index_with_the_last_one(
    redis_store: RedisSessionStore,
) -> None:
    # Created in the middle, the latest, then the soonest ending: the index's expiry is set
    # by the first, raised by the second and not lowered by the third. Times fall between
    # whole seconds, which Redis expiries cannot hold: a key lives until the second after.
    start = NOW + timedelta(milliseconds=250)
    middle, latest, soonest = (
        _session(created=start + timedelta(days=offset)) for offset in (-1, 0, -2)
    )
    for session in (middle, latest, soonest):
        await redis_store.create(session)
    raw = Redis.from_url(REDIS_TEST_URL)
    user_keys = f"{REDIS_TEST_PREFIX}:{{{ADMIN_ID}}}"
    try:
        for session in (middle, latest, soonest):
            expiry = await raw.expiretime(f"{user_keys}:session:{session.id}")
            assert expiry == math.ceil(session.expires_at.timestamp())
            score = await raw.zscore(f"{user_keys}:sessions", session.id)
            assert score == session.expires_at.timestamp()
        index_expiry = await raw.expiretime(f"{user_keys}:sessions")
        assert index_expiry == math.ceil(latest.expires_at.timestamp())
    finally:
        await raw.aclose()
