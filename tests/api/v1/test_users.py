"""The caller's profile and the admin's user management."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import httpx
import pytest

from app.core.clock import SystemClock
from app.core.config import Settings
from app.core.errors import LastAdmin
from app.core.events import EventFanout
from app.core.passwords import PasswordHasher
from app.domain.accounts import Account
from app.domain.principals import Principal
from app.schemas.user import AdminUserUpdate
from app.services.accounts import AccountServices
from app.services.audit_trail import AuditTrail
from app.services.passwords import PasswordPolicy
from app.services.rate_limit import RateLimiter
from app.services.users import UserService
from app.storage.factory import build_storage
from app.storage.users import UserStore
from tests.clock import OffsetClock
from tests.factories import ADMIN_EMAIL, DEFAULT_PASSWORD, Api, UserHandle
from tests.routes import ME, USERS


async def _put_me(api: Api, user: UserHandle, **body: object) -> tuple[int, dict[str, object]]:
    response = await api.client.put(ME, json=body, headers=user.headers)
    return response.status_code, response.json()


async def test_me_requires_a_token(api: Api) -> None:
    response = await api.client.get(ME)
    assert response.status_code == 401
    assert response.json() == {"code": "not_authenticated", "detail": "Authentication required."}


async def test_change_username(api: Api) -> None:
    user = await api.new_user()
    assert (await api.me(user.tokens)).json()["username"] == user.username
    status, body = await _put_me(api, user, username="renamed")
    assert status == 200
    assert body["username"] == "renamed"
    assert (await api.me(user.tokens)).json()["username"] == "renamed"


async def test_change_username_to_a_taken_one(api: Api) -> None:
    first = await api.new_user()
    second = await api.new_user()
    status, body = await _put_me(api, second, username=first.username.upper())
    assert status == 409
    assert body["code"] == "username_taken"


async def test_email_change_needs_the_current_password(api: Api) -> None:
    user = await api.new_user()
    # Without it the body is invalid, as the schema's dependentRequired says; a wrong one is 400.
    status, body = await _put_me(api, user, email="moved@example.com")
    assert status == 422
    assert body["code"] == "validation_error"
    status, body = await _put_me(api, user, email=None)
    assert status == 422
    status, body = await _put_me(
        api, user, email="moved@example.com", current_password="not my password"
    )
    assert status == 400
    assert body["code"] == "current_password_invalid"
    status, body = await _put_me(
        api, user, email="Moved@Example.com", current_password=DEFAULT_PASSWORD
    )
    # Accepted: the new address is the account's once confirmed from it (tests/mail).
    assert status == 202
    assert body["email"] == user.email
    assert (await api.login("moved@example.com", DEFAULT_PASSWORD)).status_code == 401
    assert (await api.login(user.email, DEFAULT_PASSWORD)).status_code == 200


async def test_an_email_change_to_a_taken_address_is_answered_as_any_other(api: Api) -> None:
    first = await api.new_user()
    second = await api.new_user()
    status, body = await _put_me(api, second, email=first.email, current_password=DEFAULT_PASSWORD)
    free_status, free_body = await _put_me(
        api, second, email="nobody-has-this@example.com", current_password=DEFAULT_PASSWORD
    )
    assert status == free_status == 202
    assert str(body.pop("updated_at")) <= str(free_body.pop("updated_at"))
    assert body == free_body
    assert body["email"] == second.email


async def test_password_change_needs_the_right_current_password(api: Api) -> None:
    user = await api.new_user()
    status, _ = await _put_me(api, user, password="a brand new password")
    assert status == 422
    status, _ = await _put_me(
        api, user, password="a brand new password", current_password="not my password"
    )
    assert status == 400
    assert (await api.login(user.email, DEFAULT_PASSWORD)).status_code == 200


async def test_password_change_ends_other_sessions_but_keeps_this_one(
    api: Api, clock: OffsetClock, settings: Settings
) -> None:
    user = await api.new_user()
    other_device = await api.tokens(user.email, DEFAULT_PASSWORD)
    status, _ = await _put_me(
        api, user, password="a brand new password", current_password=DEFAULT_PASSWORD
    )
    assert status == 200
    clock.advance(settings.SESSION_CACHE_SECONDS)
    assert (await api.me(user.tokens)).status_code == 200
    assert (await api.me(other_device)).status_code == 401
    assert (await api.refresh(other_device.refresh_token)).status_code == 401
    assert (await api.login(user.email, DEFAULT_PASSWORD)).status_code == 401
    assert (await api.login(user.email, "a brand new password")).status_code == 200


async def test_new_password_must_meet_the_policy(api: Api) -> None:
    user = await api.new_user()
    status, body = await _put_me(api, user, password="short", current_password=DEFAULT_PASSWORD)
    assert status == 422
    assert body["code"] == "password_rejected"


async def test_users_cannot_grant_themselves_privileges(api: Api) -> None:
    user = await api.new_user()
    for field, value in (("is_admin", True), ("is_active", False), ("id", 1)):
        status, body = await _put_me(api, user, **{field: value})
        assert status == 422, field
        assert body["code"] == "validation_error"
    assert (await api.me(user.tokens)).json()["is_admin"] is False


async def test_admin_lists_users_with_pagination_search_and_filters(api: Api) -> None:
    admin = await api.admin()
    alice = await api.new_user(username="alice_search", email="alice@corp.example.com")
    await api.new_user(username="bob_search", email="bob@corp.example.com")
    page = await api.client.get(f"{USERS}?limit=2&offset=0", headers=admin.headers)
    assert page.status_code == 200
    body = page.json()
    assert body["total"] == 3
    assert body["limit"] == 2
    assert len(body["items"]) == 2
    rest = await api.client.get(f"{USERS}?limit=2&offset=2", headers=admin.headers)
    assert len(rest.json()["items"]) == 1
    found = await api.client.get(f"{USERS}?search=ALICE", headers=admin.headers)
    assert [item["id"] for item in found.json()["items"]] == [alice.id]
    admins = await api.client.get(f"{USERS}?is_admin=true", headers=admin.headers)
    assert [item["email"] for item in admins.json()["items"]] == [ADMIN_EMAIL]
    wildcard = await api.client.get(f"{USERS}?search=_", headers=admin.headers)
    assert {item["username"] for item in wildcard.json()["items"]} == {
        "alice_search",
        "bob_search",
    }


async def test_admin_filters_by_active_flag(api: Api) -> None:
    admin = await api.admin()
    user = await api.new_user()
    await api.client.put(f"{USERS}{user.id}", json={"is_active": False}, headers=admin.headers)
    inactive = await api.client.get(f"{USERS}?is_active=false", headers=admin.headers)
    assert [item["id"] for item in inactive.json()["items"]] == [user.id]


async def test_ordinary_users_get_403_on_admin_routes(api: Api) -> None:
    user = await api.new_user()
    listing = await api.client.get(USERS, headers=user.headers)
    assert listing.status_code == 403
    assert listing.json()["code"] == "forbidden"
    update = await api.client.put(
        f"{USERS}{user.id}", json={"is_admin": True}, headers=user.headers
    )
    assert update.status_code == 403
    assert (await api.me(user.tokens)).json()["is_admin"] is False


async def test_admin_promotes_and_the_change_shows_within_a_second(
    api: Api, clock: OffsetClock, settings: Settings
) -> None:
    admin = await api.admin()
    user = await api.new_user()
    response = await api.client.put(
        f"{USERS}{user.id}", json={"is_admin": True}, headers=admin.headers
    )
    assert response.status_code == 200
    assert response.json()["is_admin"] is True
    clock.advance(settings.SESSION_CACHE_SECONDS)
    assert (await api.client.get(USERS, headers=user.headers)).status_code == 200


async def test_deactivation_ends_every_session(
    api: Api, clock: OffsetClock, settings: Settings
) -> None:
    admin = await api.admin()
    user = await api.new_user()
    response = await api.client.put(
        f"{USERS}{user.id}", json={"is_active": False}, headers=admin.headers
    )
    assert response.status_code == 200
    clock.advance(settings.SESSION_CACHE_SECONDS)
    assert (await api.me(user.tokens)).status_code == 401
    assert (await api.refresh(user.tokens.refresh_token)).status_code == 401
    assert (await api.login(user.email, user.password)).status_code == 401
    await api.client.put(f"{USERS}{user.id}", json={"is_active": True}, headers=admin.headers)
    assert (await api.me(user.tokens)).status_code == 401
    assert (await api.login(user.email, user.password)).status_code == 200


async def test_admin_password_reset_ends_sessions(api: Api) -> None:
    admin = await api.admin()
    user = await api.new_user()
    response = await api.client.put(
        f"{USERS}{user.id}", json={"password": "reset by the admin"}, headers=admin.headers
    )
    assert response.status_code == 200
    assert (await api.refresh(user.tokens.refresh_token)).status_code == 401
    assert (await api.login(user.email, "reset by the admin")).status_code == 200


async def test_the_last_admin_cannot_demote_or_deactivate_themselves(api: Api) -> None:
    admin = await api.admin()
    for change in ({"is_admin": False}, {"is_active": False}):
        response = await api.client.put(f"{USERS}{admin.id}", json=change, headers=admin.headers)
        assert response.status_code == 409
        assert response.json()["code"] == "last_admin"
    assert (await api.me(admin.tokens)).json()["is_admin"] is True


async def test_an_admin_can_step_down_when_another_admin_exists(api: Api) -> None:
    admin = await api.admin()
    deputy = await api.new_user()
    await api.client.put(f"{USERS}{deputy.id}", json={"is_admin": True}, headers=admin.headers)
    response = await api.client.put(
        f"{USERS}{admin.id}", json={"is_admin": False}, headers=admin.headers
    )
    assert response.status_code == 200
    assert response.json()["is_admin"] is False


async def test_admin_update_of_a_missing_user(api: Api) -> None:
    admin = await api.admin()
    response = await api.client.put(
        f"{USERS}999999", json={"is_active": False}, headers=admin.headers
    )
    assert response.status_code == 404
    assert response.json()["code"] == "user_not_found"


async def test_admin_update_rejects_a_taken_email(api: Api) -> None:
    admin = await api.admin()
    user = await api.new_user()
    response = await api.client.put(
        f"{USERS}{user.id}", json={"email": ADMIN_EMAIL}, headers=admin.headers
    )
    assert response.status_code == 409


async def _admin_change(
    api: Api, actor: UserHandle, target: UserHandle, **changes: bool
) -> httpx.Response:
    return await api.client.put(f"{USERS}{target.id}", json=changes, headers=actor.headers)


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(api: Api) -> None:
    admin = await api.admin()
    deputy = await api.new_user()
    assert (await _admin_change(api, admin, deputy, is_admin=True)).status_code == 200
    for _ in range(5):
        responses = await asyncio.gather(
            _admin_change(api, admin, deputy, is_admin=False),
            _admin_change(api, deputy, admin, is_admin=False),
        )
        statuses = sorted(response.status_code for response in responses)
        # The later request is refused: as the last admin's, or as a caller no longer admin.
        assert statuses in ([200, 403], [200, 409]), [response.text for response in responses]
        still_admin = [
            user
            for user in (admin, deputy)
            if (await api.me(user.tokens)).json()["is_admin"] is True
        ]
        assert len(still_admin) == 1
        # Whoever remains promotes the other again for the next attempt.
        [remaining] = still_admin
        [other] = [user for user in (admin, deputy) if user is not remaining]
        assert (await _admin_change(api, remaining, other, is_admin=True)).status_code == 200


class _StaleUsers(UserStore):
    """The user store, answering reads of one account with a snapshot taken earlier."""

    def __init__(self, store: UserStore, snapshot: Account) -> None:
        self.__dict__.update(store.__dict__)
        self._snapshot = snapshot

    async def get(self, user_id: int) -> Account | None:
        if user_id == self._snapshot.id:
            return self._snapshot
        return await super().get(user_id)


@asynccontextmanager
async def _user_service_reading(
    settings: Settings, stale: Account | None = None
) -> AsyncIterator[tuple[UserService, UserStore]]:
    """A UserService wired to the app's stores, whose user store answers reads of `stale`'s
    account with that earlier snapshot."""
    storage = build_storage(settings)
    hasher = PasswordHasher.from_settings(settings)
    users = _StaleUsers(storage.users, stale) if stale else storage.users
    accounts = AccountServices.build(
        settings,
        replace(storage, users=users),
        hasher=hasher,
        passwords=PasswordPolicy.from_settings(settings),
        limiter=RateLimiter(settings, storage.rate_limits, storage.rate_limit_guard),
        events=EventFanout(),
        trail=AuditTrail(storage.audit, SystemClock()),
        clock=SystemClock(),
    )
    try:
        yield accounts.users, storage.users
    finally:
        hasher.close()
        await storage.close()


async def test_a_demotion_decided_on_a_stale_read_cannot_remove_the_last_admin(
    api: Api, settings: Settings
) -> None:
    admin = await api.admin()
    deputy = await api.new_user()
    assert (await _admin_change(api, admin, deputy, is_admin=True)).status_code == 200
    assert (await _admin_change(api, admin, deputy, is_active=False)).status_code == 200
    async with _user_service_reading(settings) as (_, store):
        actor = Principal(account=to_account_of(await store.get(admin.id)), session_id="unused")
        # A request that started now reads the deputy as an inactive admin: demoting an
        # inactive admin removes no active one.
        read_early = to_account_of(await store.get(deputy.id))
    assert not read_early.is_active
    # Meanwhile the deputy is reactivated and the admin steps down, both committed.
    assert (await _admin_change(api, admin, deputy, is_active=True)).status_code == 200
    assert (await _admin_change(api, admin, admin, is_admin=False)).status_code == 200
    async with _user_service_reading(settings, stale=read_early) as (service, store):
        with pytest.raises(LastAdmin):
            await service.admin_update_user(actor, deputy.id, AdminUserUpdate(is_admin=False))
        # The deputy's sessions ended when it was deactivated: read it from the store.
        kept = to_account_of(await store.get(deputy.id))
    assert kept.is_admin
    assert kept.is_active


def to_account_of(account: Account | None) -> Account:
    assert account is not None
    return account
