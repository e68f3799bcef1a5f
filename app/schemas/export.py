"""The body of a data export: what the service holds about one account."""

from datetime import datetime

from pydantic import BaseModel, Field

from app.domain.accounts import AccountExport
from app.schemas.session import SessionRead
from app.schemas.user import UserRead


class SecurityEventRead(BaseModel):
    event: str
    at: datetime
    details: dict[str, object]


class AccountExportRead(BaseModel):
    exported_at: datetime
    profile: UserRead
    sessions: list[SessionRead] = Field(description="The account's live sessions.")
    security_events: list[SecurityEventRead] = Field(
        description="The account's latest security events (sign-ins, refreshes, changes), "
        "newest first."
    )

    @classmethod
    def of(cls, export: AccountExport, *, current_session_id: str | None) -> "AccountExportRead":
        return cls(
            exported_at=export.exported_at,
            profile=UserRead.model_validate(export.account),
            sessions=[
                SessionRead.of(record, current_session_id=current_session_id)
                for record in export.sessions
            ],
            security_events=[
                SecurityEventRead(event=entry.event, at=entry.at, details=entry.details)
                for entry in export.events
            ],
        )
