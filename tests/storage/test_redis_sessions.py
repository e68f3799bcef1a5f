"""The Redis session store's own ways: its scripts, its keys and their expiry in Redis."""

import math
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from app.core.tokens import new_token_id
from app.domain.sessions import RotationOutcome, SessionRecord
from app.storage import redis_sessions
from app.storage.protocols import SessionStore
from app.storage.redis_sessions import RedisSessionStore
from tests.conftest import REDIS_TEST_PREFIX, REDIS_TEST_URL, delete_redis_test_keys
from tests.factories import ADMIN_ID, session_record

# Redis expires keys on its own clock, so the sessions live around the real present.
NOW = datetime.now(UTC).replace(microsecond=0)
GRACE = timedelta(seconds=10)


@pytest.fixture
async def redis_store(shared_redis: str) -> AsyncIterator[RedisSessionStore]:
    delete_redis_test_keys()
    store = RedisSessionStore(
        Redis.from_url(shared_redis, decode_responses=True), prefix=REDIS_TEST_PREFIX
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
        idle_expires_at=None,
        grace=GRACE,
    )
    return rotation.outcome


async def test_a_session_redis_expired_is_dead_and_leaves_the_live_count(
    redis_store: RedisSessionStore,
) -> None:
    session = session_record(NOW)
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
    sessions = [session_record(NOW - timedelta(minutes=minute)) for minute in range(8)]
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
    session = session_record(NOW)
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
        session_record(start + timedelta(days=offset)) for offset in (-1, 0, -2)
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


async def test_a_capped_rotation_expires_the_keys_with_the_absolute_end(
    redis_store: RedisSessionStore,
) -> None:
    # Between whole seconds, as a real sign-in's end falls.
    absolute_end = NOW + timedelta(days=2, milliseconds=250)
    session = replace(
        session_record(NOW), expires_at=absolute_end, absolute_expires_at=absolute_end
    )
    await redis_store.create(session)
    rotation = await _rotate_once(redis_store, session)
    assert rotation is RotationOutcome.ROTATED
    raw = Redis.from_url(REDIS_TEST_URL)
    user_keys = f"{REDIS_TEST_PREFIX}:{{{ADMIN_ID}}}"
    try:
        assert await raw.expiretime(f"{user_keys}:session:{session.id}") == math.ceil(
            absolute_end.timestamp()
        )
        assert await raw.zscore(f"{user_keys}:sessions", session.id) == absolute_end.timestamp()
        assert (
            await raw.zscore(f"{REDIS_TEST_PREFIX}:live-sessions", f"{ADMIN_ID}:{session.id}")
            == absolute_end.timestamp()
        )
    finally:
        await raw.aclose()
    stored = await redis_store.get(session.id, user_id=ADMIN_ID)
    assert stored is not None
    assert stored.expires_at == absolute_end
