"""User ids are never given again: AUTOINCREMENT on SQLite's users.id.

Without it SQLite gives a new row the largest id plus one, so the id of the newest account,
once deleted, went to the next registrant, who inherited whatever still named it (a session in
Redis, say). PostgreSQL's sequences never go back: there is nothing to do there.

SQLite cannot add AUTOINCREMENT to a table: users is rebuilt. Dropping the old table deletes
its rows first, and with foreign keys on (every connection has them, and a transaction cannot
switch them off) that deletes the sessions and email tokens of every account too: they are set
aside and put back. The counter starts from the largest id kept, so an id above it freed
before this migration may still be given once more.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.base import UtcDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables whose rows reference users (ON DELETE CASCADE), as of 0004.
_REFERENCING = ("auth_sessions", "email_tokens")


def _users_as_of_0004() -> sa.Table:
    """The table as 0001 and 0003 made it, given to the rebuild rather than reflected: SQLite's
    reflection skips the expression index on lower(username), which would then be lost."""
    users = sa.Table(
        "users",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("username", sa.String(32), nullable=False),
        sa.Column("hashed_password", sa.String(255), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("email_verified_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    sa.Index("uq_users_username_lower", sa.func.lower(users.c.username), unique=True)
    return users


def _rebuild_users(*, autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # The names in these statements are this module's constants.
    for table in _REFERENCING:
        op.execute(f"CREATE TEMP TABLE kept_{table} AS SELECT * FROM {table}")  # noqa: S608
    with op.batch_alter_table(
        "users",
        recreate="always",
        copy_from=_users_as_of_0004(),
        table_kwargs={"sqlite_autoincrement": autoincrement},
    ):
        pass
    for table in _REFERENCING:
        # Emptied by the cascade, unless foreign keys were off on this connection.
        op.execute(f"DELETE FROM {table}")  # noqa: S608
        op.execute(f"INSERT INTO {table} SELECT * FROM kept_{table}")  # noqa: S608
        op.execute(f"DROP TABLE kept_{table}")


def upgrade() -> None:
    _rebuild_users(autoincrement=True)


def downgrade() -> None:
    _rebuild_users(autoincrement=False)
