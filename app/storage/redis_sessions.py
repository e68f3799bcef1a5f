"""The production session store: Redis (or Redis Cluster).

Keys carry the user id as a hash tag, `<prefix>:{<user_id>}:…`, so that one user's session
hashes and their session index live in one cluster slot and scripts may touch them together.
A session is a hash that expires with the session; revocation deletes it.
"""

import math
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from redis.asyncio import Redis, RedisCluster

from app.domain.sessions import RefreshGrant, Rotation, RotationOutcome, SessionRecord

SCRIPT_BATCH = 100
_TIMES = (
    "created_at",
    "last_seen_at",
    "expires_at",
    "refresh_issued_at",
    "revoked_at",
    "absolute_expires_at",
    "idle_expires_at",
)
_FIELDS = tuple(field.name for field in fields(SessionRecord))

# KEYS[3], the global live index, is passed only on a single server: on a cluster it lives in
# another slot, where no script may reach it. ARGV: the presented and the new jti, now, the
# expiry asked for, the grace, the session id, the live-index member, the idle end ('' for
# none). The new expiry is the one asked for or the session's absolute end, whichever comes
# first, chosen between the two stored texts so that it reads back exactly; it is returned.
_ROTATE = """
local live = KEYS[3]
local s = redis.call('HMGET', KEYS[1], 'refresh_jti', 'previous_refresh_jti',
                     'refresh_issued_at', 'expires_at', 'absolute_expires_at')
local now = tonumber(ARGV[3])
if not s[1] or tonumber(s[4]) <= now then
  if live then redis.call('ZREM', live, ARGV[7]) end
  return {'dead'}
end
if s[1] == ARGV[1] then
  local expires = ARGV[4]
  if s[5] and tonumber(s[5]) < tonumber(expires) then expires = s[5] end
  redis.call('HSET', KEYS[1], 'previous_refresh_jti', s[1], 'refresh_jti', ARGV[2],
             'refresh_issued_at', ARGV[3], 'last_seen_at', ARGV[3], 'expires_at', expires)
  if ARGV[8] == '' then
    redis.call('HDEL', KEYS[1], 'idle_expires_at')
  else
    redis.call('HSET', KEYS[1], 'idle_expires_at', ARGV[8])
  end
  local expiry = math.ceil(tonumber(expires))
  redis.call('EXPIREAT', KEYS[1], expiry)
  redis.call('ZADD', KEYS[2], expires, ARGV[6])
  redis.call('EXPIREAT', KEYS[2], expiry, 'NX')
  redis.call('EXPIREAT', KEYS[2], expiry, 'GT')
  if live then redis.call('ZADD', live, 'XX', 'GT', expires, ARGV[7]) end
  return {'rotated', expires}
end
if s[2] == ARGV[1] and now - tonumber(s[3]) <= tonumber(ARGV[5]) then
  return {'grace', s[1], s[3], s[4]}
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[6])
if live then redis.call('ZREM', live, ARGV[7]) end
return {'reused'}
"""

# One script, not a MULTI/EXEC pipeline of the same six commands: building the pipeline and
# parsing its eight replies cost redis-py 0.53 to 0.65 ms of CPU per sign-in, the script 0.24.
# ARGV: the expiry (whole seconds), the index score, the session id, the live-index member,
# then the hash's field/value pairs.
_CREATE = """
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('EXPIREAT', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('EXPIREAT', KEYS[2], ARGV[1], 'NX')
redis.call('EXPIREAT', KEYS[2], ARGV[1], 'GT')
if KEYS[3] then redis.call('ZADD', KEYS[3], ARGV[2], ARGV[4]) end
return 0
"""

_REVOKE = """
local revoked = 0
local now = tonumber(ARGV[2])
for i = 2, #KEYS do
  local sid = ARGV[i + 1]
  if sid ~= ARGV[1] then
    local expires = redis.call('HGET', KEYS[i], 'expires_at')
    if expires and tonumber(expires) > now then revoked = revoked + 1 end
    redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[1], sid)
  end
end
return revoked
"""

# The sessions' hashes, in the order of KEYS, each as a flat field/value list (empty when gone).
# One script call rather than a pipeline of HGETALLs: redis-py's pipeline machinery cost more
# than the commands.
_READ_ALL = """
local sessions = {}
for i = 1, #KEYS do
  sessions[i] = redis.call('HGETALL', KEYS[i])
end
return sessions
"""

_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'last_seen_at', ARGV[1])
end
return 0
"""


def _encode(session: SessionRecord) -> dict[str, str]:
    encoded: dict[str, str] = {}
    for name in _FIELDS:
        value = getattr(session, name)
        if value is None:
            continue
        encoded[name] = repr(value.timestamp()) if isinstance(value, datetime) else str(value)
    return encoded


def _batches(session_ids: list[str]) -> Iterator[list[str]]:
    """The ids in slices for one script call each: Redis serves no one else while a script
    runs, and a user may hold thousands of sessions."""
    for start in range(0, len(session_ids), SCRIPT_BATCH):
        yield session_ids[start : start + SCRIPT_BATCH]


def _live_member(user_id: int, session_id: str) -> str:
    return f"{user_id}:{session_id}"


def _time(stored: str) -> datetime:
    return datetime.fromtimestamp(float(stored), tz=UTC)


def _decode(raw: dict[str, str]) -> SessionRecord:
    values: dict[str, Any] = {name: raw.get(name) for name in _FIELDS}
    for name in _TIMES:
        if values[name] is not None:
            values[name] = _time(values[name])
    values["user_id"] = int(values["user_id"])
    return SessionRecord(**values)


def _rotation(result: list[str], *, new_jti: str, now: datetime) -> Rotation:
    """The rotation script's answer as a Rotation."""
    outcome = RotationOutcome(result[0])
    if outcome is RotationOutcome.ROTATED:
        return Rotation(outcome, RefreshGrant(new_jti, now, _time(result[1])))
    if outcome is RotationOutcome.GRACE:
        jti, issued_at, expires_at = result[1:]
        return Rotation(outcome, RefreshGrant(jti, _time(issued_at), _time(expires_at)))
    return Rotation(outcome, None)


class RedisSessionStore:
    def __init__(self, client: "Redis | RedisCluster", *, prefix: str) -> None:
        self._redis = client
        # A cluster keeps the global live index in another slot than the user's keys: no one
        # transaction or script can cover both, and redis-py refuses pipelined scripts there.
        self._cluster = isinstance(client, RedisCluster)
        self._prefix = prefix
        self._live_key = f"{prefix}:live-sessions"
        self._create = client.register_script(_CREATE)
        self._rotate = client.register_script(_ROTATE)
        self._revoke = client.register_script(_REVOKE)
        self._touch = client.register_script(_TOUCH)
        self._read_all = client.register_script(_READ_ALL)

    def _session_key(self, user_id: int, session_id: str) -> str:
        return f"{self._prefix}:{{{user_id}}}:session:{session_id}"

    def _index_key(self, user_id: int) -> str:
        return f"{self._prefix}:{{{user_id}}}:sessions"

    def _script_keys(self, user_id: int, session_id: str) -> list[str]:
        """The keys a create or rotate script writes: the session, the user's index and, on a
        single server, the global live index."""
        keys = [self._session_key(user_id, session_id), self._index_key(user_id)]
        if not self._cluster:
            keys.append(self._live_key)
        return keys

    async def create(self, session: SessionRecord) -> None:
        keys = self._script_keys(session.user_id, session.id)
        member = _live_member(session.user_id, session.id)
        expires = session.expires_at.timestamp()
        fields = [item for pair in _encode(session).items() for item in pair]
        await self._create(
            keys=keys, args=[math.ceil(expires), repr(expires), session.id, member, *fields]
        )
        if self._cluster:
            await self._redis.zadd(self._live_key, {member: expires})

    async def get(self, session_id: str, *, user_id: int) -> SessionRecord | None:
        raw = await self._redis.hgetall(self._session_key(user_id, session_id))
        return _decode(cast(dict[str, str], raw)) if raw else None

    async def rotate(
        self,
        session_id: str,
        *,
        user_id: int,
        presented_jti: str,
        new_jti: str,
        now: datetime,
        expires_at: datetime,
        idle_expires_at: datetime | None,
        grace: timedelta,
    ) -> Rotation:
        member = _live_member(user_id, session_id)
        keys = self._script_keys(user_id, session_id)
        args: list[str | float] = [
            presented_jti,
            new_jti,
            repr(now.timestamp()),
            repr(expires_at.timestamp()),
            grace.total_seconds(),
            session_id,
            member,
            repr(idle_expires_at.timestamp()) if idle_expires_at else "",
        ]
        # redis-py loads the script again when a restarted or flushed Redis has forgotten it.
        result = await self._rotate(keys=keys, args=args)
        rotation = _rotation(result, new_jti=new_jti, now=now)
        if self._cluster:
            await self._update_live_index_on_cluster(rotation, member)
        return rotation

    async def _update_live_index_on_cluster(self, rotation: Rotation, member: str) -> None:
        """What the script does to the live index on a single server, as a second round trip."""
        if rotation.outcome is RotationOutcome.ROTATED and rotation.current is not None:
            await self._redis.zadd(
                self._live_key, {member: rotation.current.expires_at.timestamp()}, xx=True, gt=True
            )
        elif rotation.outcome is not RotationOutcome.GRACE:
            await self._redis.zrem(self._live_key, member)

    async def touch(self, session_id: str, *, user_id: int, now: datetime) -> None:
        await self._touch(
            keys=[self._session_key(user_id, session_id)], args=[repr(now.timestamp())]
        )

    async def _revoke_ids(
        self, user_id: int, session_ids: list[str], *, now: datetime, keep: str | None
    ) -> int:
        revoked = 0
        index = self._index_key(user_id)
        for batch in _batches(session_ids):
            revoked += await self._revoke(
                keys=[index, *(self._session_key(user_id, sid) for sid in batch)],
                args=[keep or "", repr(now.timestamp()), *batch],
            )
        gone = [_live_member(user_id, sid) for sid in session_ids if sid != keep]
        if gone:
            await self._redis.zrem(self._live_key, *gone)
        return int(revoked)

    async def revoke(self, session_id: str, *, user_id: int, now: datetime) -> bool:
        return await self._revoke_ids(user_id, [session_id], now=now, keep=None) == 1

    async def revoke_all(
        self, user_id: int, *, now: datetime, keep_session_id: str | None = None
    ) -> int:
        session_ids = cast(list[str], await self._redis.zrange(self._index_key(user_id), 0, -1))
        return await self._revoke_ids(user_id, session_ids, now=now, keep=keep_session_id)

    async def list_live(self, user_id: int, now: datetime) -> list[SessionRecord]:
        index = self._index_key(user_id)
        session_ids = cast(
            list[str], await self._redis.zrangebyscore(index, f"({now.timestamp()!r}", "+inf")
        )
        if not session_ids:
            return []
        rows: list[list[str]] = []
        for batch in _batches(session_ids):
            rows += await self._read_all(
                keys=[self._session_key(user_id, session_id) for session_id in batch]
            )
        sessions = [_decode(dict(zip(row[::2], row[1::2], strict=True))) for row in rows if row]
        live = [session for session in sessions if session.is_live(now)]
        return sorted(live, key=lambda session: session.created_at, reverse=True)

    async def count_live(self, now: datetime) -> int:
        await self._redis.zremrangebyscore(self._live_key, "-inf", repr(now.timestamp()))
        return int(await self._redis.zcard(self._live_key))

    async def purge(self, now: datetime) -> int:
        """Nothing to delete: a session's hash expires with the session, and revocation deletes
        it."""
        return 0

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()
