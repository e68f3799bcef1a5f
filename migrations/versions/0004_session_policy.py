"""The session policy's limits on each session: its absolute end and its idle end.

Sessions signed in before this migration keep NULL, no absolute end, as they were granted;
REFRESH_TOKEN_EXPIRE_DAYS without a refresh still ends them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.base import UtcDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("auth_sessions") as sessions:
        sessions.add_column(sa.Column("absolute_expires_at", UtcDateTime(), nullable=True))
        sessions.add_column(sa.Column("idle_expires_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("auth_sessions") as sessions:
        sessions.drop_column("idle_expires_at")
        sessions.drop_column("absolute_expires_at")
