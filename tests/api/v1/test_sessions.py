"""Session listing and remote revocation, including across workers sharing the store."""

from datetime import datetime, timedelta

from app.core.config import Settings
from tests.clock import OffsetClock
from tests.conftest import make_settings, serve
from tests.factories import DEFAULT_PASSWORD, FIREFOX_UA, IPHONE_UA, Api
from tests.routes import LOGOUT, SESSIONS, USERS


async def test_lists_live_sessions_with_device_info(api: Api) -> None:
    user = await api.new_user()
    phone = await api.tokens(user.email, DEFAULT_PASSWORD, user_agent=IPHONE_UA)
    desktop = await api.tokens(user.email, DEFAULT_PASSWORD, user_agent=FIREFOX_UA)
    response = await api.client.get(SESSIONS, headers=desktop.headers)
    assert response.status_code == 200
    sessions = response.json()
    assert len(sessions) == 3
    current = [session for session in sessions if session["current"]]
    assert len(current) == 1
    assert current[0]["device"] == {
        "browser": "Firefox 121",
        "os": "Ubuntu",
        "device_type": "desktop",
    }
    assert current[0]["ip_address"] == "203.0.113.7"
    devices = {session["device"]["device_type"] for session in sessions}
    assert "mobile" in devices
    assert {"id", "created_at", "last_seen_at", "expires_at", "user_agent"} <= set(current[0])
    await api.client.post(LOGOUT, headers=phone.headers)
    after = await api.client.get(SESSIONS, headers=desktop.headers)
    assert len(after.json()) == 2


async def test_sessions_of_other_users_are_not_listed(api: Api) -> None:
    alice = await api.new_user()
    bob = await api.new_user()
    listed = (await api.client.get(SESSIONS, headers=bob.headers)).json()
    assert all(session["id"] != alice.tokens.session_id for session in listed)
    assert len(listed) == 1


async def test_revoke_one_of_my_sessions(api: Api, clock: OffsetClock, settings: Settings) -> None:
    user = await api.new_user()
    other = await api.tokens(user.email, DEFAULT_PASSWORD)
    listed = (await api.client.get(SESSIONS, headers=user.headers)).json()
    other_id = next(session["id"] for session in listed if not session["current"])
    response = await api.client.delete(f"{SESSIONS}{other_id}", headers=user.headers)
    assert response.status_code == 204
    clock.advance(settings.SESSION_CACHE_SECONDS)
    assert (await api.me(other)).status_code == 401
    assert (await api.refresh(other.refresh_token)).status_code == 401
    assert (await api.me(user.tokens)).status_code == 200
    again = await api.client.delete(f"{SESSIONS}{other_id}", headers=user.headers)
    assert again.status_code == 404


async def test_revoking_my_current_session_logs_me_out(api: Api) -> None:
    user = await api.new_user()
    sid = user.tokens.session_id
    assert (await api.client.delete(f"{SESSIONS}{sid}", headers=user.headers)).status_code == 204
    assert (await api.me(user.tokens)).status_code == 401


async def test_another_users_session_is_not_found_and_survives(api: Api) -> None:
    alice = await api.new_user()
    mallory = await api.new_user()
    response = await api.client.delete(
        f"{SESSIONS}{alice.tokens.session_id}", headers=mallory.headers
    )
    assert response.status_code == 404
    assert response.json()["code"] == "session_not_found"
    assert (await api.me(alice.tokens)).status_code == 200
    unknown = await api.client.delete(f"{SESSIONS}no-such-session", headers=mallory.headers)
    assert unknown.status_code == 404
    assert unknown.json() == response.json()


async def test_revocation_reaches_a_second_worker_within_a_second(settings: Settings) -> None:
    clock = OffsetClock()
    async with serve(settings, clock) as (_, worker_a), serve(settings, clock) as (_, worker_b):
        user = await worker_a.new_user()
        assert (await worker_a.me(user.tokens)).status_code == 200
        assert (await worker_b.me(user.tokens)).status_code == 200
        response = await worker_b.client.delete(
            f"{SESSIONS}{user.tokens.session_id}", headers=user.headers
        )
        assert response.status_code == 204
        clock.advance(settings.SESSION_CACHE_SECONDS)
        assert (await worker_a.me(user.tokens)).status_code == 401
        assert (await worker_a.refresh(user.tokens.refresh_token)).status_code == 401


async def test_deactivation_on_one_worker_reaches_the_other(settings: Settings) -> None:
    clock = OffsetClock()
    async with serve(settings, clock) as (_, worker_a), serve(settings, clock) as (_, worker_b):
        user = await worker_a.new_user()
        assert (await worker_a.me(user.tokens)).status_code == 200
        admin = await worker_b.admin()
        await worker_b.client.put(
            f"{USERS}{user.id}", json={"is_active": False}, headers=admin.headers
        )
        clock.advance(settings.SESSION_CACHE_SECONDS)
        assert (await worker_a.me(user.tokens)).status_code == 401


async def test_sessions_survive_an_app_restart(settings: Settings) -> None:
    async with serve(settings) as (_, first):
        user = await first.new_user()
    async with serve(settings) as (_, second):
        assert (await second.me(user.tokens)).status_code == 200
        assert (await second.refresh(user.tokens.refresh_token)).status_code == 200


async def test_the_list_shows_when_each_session_ends(database_url: str) -> None:
    settings = make_settings(database_url, SESSION_IDLE_TIMEOUT_MINUTES=60)
    clock = OffsetClock()
    async with serve(settings, clock) as (_, api):
        user = await api.new_user()
        clock.advance(45 * 60)
        refreshed = (await api.refresh(user.tokens.refresh_token)).json()
        listed = (
            await api.client.get(
                SESSIONS, headers={"Authorization": f"Bearer {refreshed['access_token']}"}
            )
        ).json()
    (session,) = listed
    signed_in = datetime.fromisoformat(session["created_at"])
    refreshed_at = signed_in + timedelta(minutes=45)
    assert datetime.fromisoformat(session["absolute_expires_at"]) == signed_in + timedelta(
        days=settings.SESSION_ABSOLUTE_LIFETIME_DAYS
    )
    idle_end = datetime.fromisoformat(session["idle_expires_at"])
    # The refresh came a few milliseconds after the clock was moved.
    assert timedelta(0) <= idle_end - refreshed_at - timedelta(minutes=60) < timedelta(seconds=1)
    assert datetime.fromisoformat(session["expires_at"]) == idle_end


async def test_without_limits_the_list_says_null(database_url: str) -> None:
    settings = make_settings(database_url, SESSION_ABSOLUTE_LIFETIME_DAYS=0)
    async with serve(settings) as (_, api):
        user = await api.new_user()
        (session,) = (await api.client.get(SESSIONS, headers=user.headers)).json()
    assert session["absolute_expires_at"] is None
    assert session["idle_expires_at"] is None
    lifetime = datetime.fromisoformat(session["expires_at"]) - datetime.fromisoformat(
        session["created_at"]
    )
    assert lifetime == timedelta(days=settings.REFRESH_TOKEN_EXPIRE_DAYS)
