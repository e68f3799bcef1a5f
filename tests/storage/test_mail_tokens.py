"""The mail store's tokens on the real database: of tokens issued at once for one account and
purpose, one stays usable."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import Connection, Table, func, select

from app.domain.mail import Mail, TokenPurpose
from app.models import EmailToken
from app.services.account_emails import new_mail_id
from app.services.email_tokens import EmailTokens
from app.storage.factory import build_storage
from tests.conftest import make_settings, serve

_TOKENS = cast(Table, EmailToken.__table__)


async def test_tokens_issued_at_once_leave_one_usable(database_url: str) -> None:
    settings = make_settings(database_url)
    async with serve(settings) as (_, api):
        user = await api.new_user()
        storage = build_storage(settings)
        try:
            now = datetime.now(UTC)
            issued = [
                EmailTokens.new(
                    user_id=user.id,
                    purpose=TokenPurpose.RESET_PASSWORD,
                    email=user.email,
                    now=now,
                    lifetime=timedelta(minutes=30),
                )
                for _ in range(12)
            ]
            await asyncio.gather(
                *(
                    storage.mail.issue(
                        token.stored,
                        Mail(id=new_mail_id(), kind="reset_password", address=user.email),
                        now=now,
                    )
                    for token in issued
                )
            )

            def usable(db: Connection) -> int:
                return int(
                    db.execute(
                        select(func.count())
                        .select_from(_TOKENS)
                        .where(
                            _TOKENS.c.user_id == user.id,
                            _TOKENS.c.purpose == TokenPurpose.RESET_PASSWORD.value,
                            _TOKENS.c.used_at.is_(None),
                        )
                    ).scalar_one()
                )

            assert await storage.database.read(usable) == 1
        finally:
            await storage.close()
