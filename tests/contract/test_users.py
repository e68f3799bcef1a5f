"""The user store's contract, kept by every backend that implements it (see conftest.py): SQL
on SQLite (its own threads) and on PostgreSQL."""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.core.errors import EmailTaken, LastAdmin, UsernameTaken, UserNotFound
from app.domain.accounts import AccountChanges, NewAccount, UserFilter
from app.storage.users import UserStore
from tests.factories import ADMIN_EMAIL, ADMIN_ID


async def test_credentials_are_found_by_exact_email_only(users: UserStore) -> None:
    found = await users.credentials(ADMIN_EMAIL)
    assert found is not None
    assert found.account.id == ADMIN_ID
    assert found.account.email == ADMIN_EMAIL
    assert found.account.is_admin
    assert found.account.is_active
    assert found.hashed_password.startswith("$argon2id$")
    assert found.account.created_at.tzinfo is not None
    for other in (ADMIN_EMAIL.upper(), "nobody@example.com", ADMIN_EMAIL + "\x00", "%", ""):
        assert await users.credentials(other) is None


async def test_an_account_is_read_by_id(users: UserStore) -> None:
    admin = await users.get(ADMIN_ID)
    assert admin is not None
    assert admin.email == ADMIN_EMAIL
    assert await users.get(ADMIN_ID + 1000) is None


async def test_a_rehash_lands_only_over_the_hash_it_replaces(users: UserStore) -> None:
    found = await users.credentials(ADMIN_EMAIL)
    assert found is not None
    await users.upgrade_password_hash(ADMIN_ID, old="$argon2id$not-the-stored-one", new="x")
    unchanged = await users.credentials(ADMIN_EMAIL)
    assert unchanged is not None
    assert unchanged.hashed_password == found.hashed_password
    await users.upgrade_password_hash(ADMIN_ID, old=found.hashed_password, new="$argon2id$new")
    upgraded = await users.credentials(ADMIN_EMAIL)
    assert upgraded is not None
    assert upgraded.hashed_password == "$argon2id$new"


async def test_concurrent_reads_all_get_the_account(users: UserStore) -> None:
    results = await asyncio.gather(*(users.get(ADMIN_ID) for _ in range(50)))
    assert {account.id for account in results if account is not None} == {ADMIN_ID}
    assert all(account is not None for account in results)


def _new(email: str, username: str, *, is_admin: bool = False) -> NewAccount:
    return NewAccount(
        email=email,
        username=username,
        hashed_password="$argon2id$stand-in",
        is_admin=is_admin,
        created_at=datetime.now(UTC),
    )


async def test_a_taken_email_or_username_is_refused_whatever_its_case(users: UserStore) -> None:
    created = await users.create(_new("new@example.com", "NewUser"))
    assert created.is_active
    assert not created.is_admin
    assert await users.get(created.id) == created
    with pytest.raises(EmailTaken):
        await users.create(_new("new@example.com", "other"))
    with pytest.raises(UsernameTaken):
        await users.create(_new("other@example.com", "newuser"))
    with pytest.raises(UsernameTaken):
        await users.ensure_available(
            email="free@example.com", username="NEWUSER", now=datetime.now(UTC)
        )
    await users.ensure_available(
        email="new@example.com", username="newuser", now=datetime.now(UTC), except_id=created.id
    )


async def test_an_update_sets_only_what_it_names(users: UserStore) -> None:
    created = await users.create(_new("edit@example.com", "editme"))
    later = created.created_at + timedelta(minutes=1)
    updated = await users.update(created.id, AccountChanges(username="edited"), now=later)
    assert updated == replace(created, username="edited", updated_at=later)
    with pytest.raises(EmailTaken):
        await users.update(created.id, AccountChanges(email=ADMIN_EMAIL), now=later)
    with pytest.raises(UserNotFound):
        await users.update(ADMIN_ID + 1000, AccountChanges(username="ghost"), now=later)
    assert await users.get(created.id) == updated


async def test_the_last_active_admin_cannot_be_removed(users: UserStore) -> None:
    now = datetime.now(UTC)
    for change in (AccountChanges(is_admin=False), AccountChanges(is_active=False)):
        with pytest.raises(LastAdmin):
            await users.update(ADMIN_ID, change, now=now)
    deputy = await users.create(_new("deputy@example.com", "deputy", is_admin=True))
    assert await users.count_active_admins() == 2
    assert await users.count_active_admins(except_id=ADMIN_ID) == 1
    demoted = await users.update(ADMIN_ID, AccountChanges(is_admin=False), now=now)
    assert not demoted.is_admin
    with pytest.raises(LastAdmin):
        await users.update(deputy.id, AccountChanges(is_active=False), now=now)


async def test_a_page_filters_searches_and_counts(users: UserStore) -> None:
    for index in range(5):
        await users.create(_new(f"page{index}@example.com", f"Page_{index}"))
    page, total = await users.page(UserFilter(search="page"), limit=2, offset=1)
    assert total == 5
    assert [account.username for account in page] == ["Page_1", "Page_2"]
    admins, admin_total = await users.page(UserFilter(is_admin=True), limit=10, offset=0)
    assert (admin_total, [account.id for account in admins]) == (1, [ADMIN_ID])
    # LIKE's wildcards and a NUL match only themselves.
    for term in ("%", "e_%", "\\", "page\x00"):
        assert (await users.page(UserFilter(search=term), limit=10, offset=0))[1] == 0
