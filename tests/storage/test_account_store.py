"""The sign-in path's account reads, on SQLite (its own thread) and on PostgreSQL."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.core.config import Settings
from app.services.startup import prepare_from_settings
from app.storage.factory import build_storage
from app.storage.users import AccountStore
from tests.conftest import empty_postgres_tables, make_settings
from tests.factories import ADMIN_EMAIL

ADMIN_ID = 1


@pytest.fixture(params=["sqlite", "postgresql"])
def database_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return make_settings(f"sqlite:///{tmp_path}/auth.db")
    url: str = request.getfixturevalue("postgres_database")
    asyncio.run(empty_postgres_tables())
    return make_settings(url).model_copy(update={"REDIS_URL": None})


@pytest.fixture
async def accounts(database_settings: Settings) -> AsyncIterator[AccountStore]:
    await prepare_from_settings(database_settings)
    storage = build_storage(database_settings)
    yield storage.accounts
    await storage.close()


async def test_credentials_are_found_by_exact_email_only(accounts: AccountStore) -> None:
    found = await accounts.credentials(ADMIN_EMAIL)
    assert found is not None
    assert found.account.id == ADMIN_ID
    assert found.account.email == ADMIN_EMAIL
    assert found.account.is_admin
    assert found.account.is_active
    assert found.hashed_password.startswith("$argon2id$")
    assert found.account.created_at.tzinfo is not None
    for other in (ADMIN_EMAIL.upper(), "nobody@example.com", ADMIN_EMAIL + "\x00", "%", ""):
        assert await accounts.credentials(other) is None


async def test_an_account_is_read_by_id(accounts: AccountStore) -> None:
    admin = await accounts.get(ADMIN_ID)
    assert admin is not None
    assert admin.email == ADMIN_EMAIL
    assert await accounts.get(ADMIN_ID + 1000) is None


async def test_a_rehash_lands_only_over_the_hash_it_replaces(accounts: AccountStore) -> None:
    found = await accounts.credentials(ADMIN_EMAIL)
    assert found is not None
    await accounts.upgrade_password_hash(ADMIN_ID, old="$argon2id$not-the-stored-one", new="x")
    unchanged = await accounts.credentials(ADMIN_EMAIL)
    assert unchanged is not None
    assert unchanged.hashed_password == found.hashed_password
    await accounts.upgrade_password_hash(ADMIN_ID, old=found.hashed_password, new="$argon2id$new")
    upgraded = await accounts.credentials(ADMIN_EMAIL)
    assert upgraded is not None
    assert upgraded.hashed_password == "$argon2id$new"


async def test_concurrent_reads_all_get_the_account(accounts: AccountStore) -> None:
    results = await asyncio.gather(*(accounts.get(ADMIN_ID) for _ in range(50)))
    assert {account.id for account in results if account is not None} == {ADMIN_ID}
    assert all(account is not None for account in results)
