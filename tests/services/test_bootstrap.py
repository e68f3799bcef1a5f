"""Start-up: migrations and the default admin, including several workers starting at once."""

import gc
import threading
from pathlib import Path

import anyio
import bcrypt
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Row, Table, select, update
from sqlalchemy.engine import Connection

from app.core.clock import SystemClock
from app.core.config import Settings
from app.core.passwords import PasswordHasher
from app.db.base import Base
from app.models import User
from app.services.bootstrap import prepare_database, prepare_from_settings
from app.storage.factory import Storage, build_storage
from tests.conftest import make_settings, serve
from tests.factories import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.routes import LOGIN, ME

_USERS: Table = User.__table__  # type: ignore[assignment]


async def _users(settings: Settings) -> list[Row[tuple[object, ...]]]:
    """Every user row, hashes included, read beside the service."""
    storage = build_storage(settings)
    try:
        async with storage.engine.connect() as connection:
            return list(await connection.execute(select(_USERS)))
    finally:
        await storage.close()


async def _set_password_hash(settings: Settings, user_id: int, hashed_password: str) -> None:
    storage = build_storage(settings)
    try:
        async with storage.engine.begin() as connection:
            await connection.execute(
                update(_USERS).where(_USERS.c.id == user_id).values(hashed_password=hashed_password)
            )
    finally:
        await storage.close()


# SQLite cannot reflect the expression index on lower(username); it is checked by name instead.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
async def test_migrations_create_exactly_the_models_schema(settings: Settings) -> None:
    await prepare_from_settings(settings)
    storage = build_storage(settings)

    def differences(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))

    try:
        async with storage.engine.connect() as connection:
            assert await connection.run_sync(differences) == []
            definition_query = (
                "SELECT sql FROM sqlite_master WHERE name = 'uq_users_username_lower'"
                if connection.dialect.name == "sqlite"
                else "SELECT indexdef FROM pg_indexes WHERE indexname = 'uq_users_username_lower'"
            )
            definition = str((await connection.exec_driver_sql(definition_query)).scalar_one())
            assert "lower(" in definition
            assert "username" in definition
            assert "UNIQUE" in definition.upper()
    finally:
        await storage.close()


async def test_the_data_folder_is_created_on_demand(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/nested/data/auth.db")
    await prepare_from_settings(settings)
    assert (tmp_path / "nested" / "data" / "auth.db").exists()


async def test_default_admin_is_created_once(settings: Settings) -> None:
    await prepare_from_settings(settings)
    await prepare_from_settings(settings)
    users = await _users(settings)
    assert [(user.email, user.is_admin, user.is_active) for user in users] == [
        (ADMIN_EMAIL, True, True)
    ]


async def test_workers_starting_together_create_one_admin(settings: Settings) -> None:
    hasher = PasswordHasher.from_settings(settings)
    storages = [build_storage(settings) for _ in range(4)]
    try:
        async with anyio.create_task_group() as group:
            for storage in storages:
                group.start_soon(_prepare, storage, settings, hasher)
    finally:
        for storage in storages:
            await storage.close()
    assert len([user for user in await _users(settings) if user.is_admin]) == 1


async def _prepare(storage: Storage, settings: Settings, hasher: PasswordHasher) -> None:
    await prepare_database(storage, settings=settings, hasher=hasher, clock=SystemClock())


async def test_a_changed_admin_password_is_never_overwritten(settings: Settings) -> None:
    async with serve(settings) as (_, api):
        admin = await api.admin()
        response = await api.client.put(
            ME,
            json={"password": "changed after start-up", "current_password": ADMIN_PASSWORD},
            headers=admin.headers,
        )
        assert response.status_code == 200
    async with serve(settings) as (_, api):
        assert (await api.login(ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 401
        assert (await api.login(ADMIN_EMAIL, "changed after start-up")).status_code == 200


async def test_no_admin_without_complete_credentials(database_url: str) -> None:
    settings = make_settings(database_url, ADMIN_PASSWORD="")
    await prepare_from_settings(settings)
    assert await _users(settings) == []


async def test_a_legacy_bcrypt_hash_is_upgraded_at_login(settings: Settings) -> None:
    async with serve(settings) as (_, api):
        user = await api.new_user()
        legacy = bcrypt.hashpw(b"imported from the old system", bcrypt.gensalt(4)).decode()
        await _set_password_hash(settings, user.id, legacy)
        assert (await api.login(user.email, "imported from the old system")).status_code == 200
        stored = {u.id: u.hashed_password for u in await _users(settings)}[user.id]
        assert stored.startswith("$argon2id$")
        assert (await api.login(user.email, "imported from the old system")).status_code == 200


async def test_an_upgrade_never_overwrites_a_password_changed_meanwhile(settings: Settings) -> None:
    async with serve(settings) as (_, api):
        user = await api.new_user()
        storage = build_storage(settings)
        try:
            await storage.users.upgrade_password_hash(
                user.id, old="$2b$04$the-hash-read-before-the-change", new="$argon2id$stale"
            )
        finally:
            await storage.close()
        stored = {u.id: u.hashed_password for u in await _users(settings)}[user.id]
        assert stored != "$argon2id$stale"
        assert (await api.login(user.email, user.password)).status_code == 200


async def test_bcrypt_scheme_end_to_end(database_url: str) -> None:
    settings = make_settings(database_url, PASSWORD_HASH_SCHEME="bcrypt")
    async with serve(settings) as (_, api):
        password = "пароль-" * 12
        user = await api.new_user(password=password)
        assert (await api.login(user.email, password)).status_code == 200
        assert (await api.login(user.email, password[:72])).status_code == 401
    stored = {u.email: u.hashed_password for u in await _users(settings)}
    assert stored[user.email].startswith("$bcrypt-sha256$")
    assert stored[ADMIN_EMAIL].startswith("$bcrypt-sha256$")


async def test_start_up_freezes_what_it_built_out_of_the_collectors_reach(
    tmp_path: Path,
) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    async with serve(make_settings(f"sqlite:///{tmp_path}/auth.db")):
        assert gc.get_freeze_count() > 10_000
    gc.unfreeze()


async def test_shutdown_ends_the_apps_hashing_and_store_threads(tmp_path: Path) -> None:
    def service_threads() -> int:
        names = ("password-hash", "sqlite-writes", "sqlite-reads")
        return sum(thread.name.startswith(names) for thread in threading.enumerate())

    # Other tests' apps may still hold threads: this app's are counted as a difference.
    before = service_threads()
    async with serve(make_settings(f"sqlite:///{tmp_path}/auth.db")) as (_, api):
        response = await api.client.post(
            LOGIN, json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert response.status_code == 200
        assert service_threads() > before
    for _ in range(200):
        if service_threads() == before:
            break
        await anyio.sleep(0.01)
    assert service_threads() == before
