"""Response bodies for sessions."""

from datetime import datetime

from pydantic import BaseModel, Field

from app.domain.sessions import SessionRecord


class DeviceRead(BaseModel):
    browser: str
    os: str
    device_type: str


class SessionRead(BaseModel):
    id: str
    device: DeviceRead
    user_agent: str | None
    ip_address: str | None
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime = Field(description="When the session ends unless it is refreshed.")
    absolute_expires_at: datetime | None = Field(
        description="The latest the session can last, however it is refreshed "
        "(SESSION_ABSOLUTE_LIFETIME_DAYS after sign-in); null without that limit."
    )
    idle_expires_at: datetime | None = Field(
        description="When the session ends if it is not refreshed before "
        "(SESSION_IDLE_TIMEOUT_MINUTES after its last refresh or sign-in); null without "
        "an idle timeout."
    )
    current: bool

    @classmethod
    def of(cls, record: SessionRecord, *, current_session_id: str | None) -> "SessionRead":
        return cls(
            id=record.id,
            device=DeviceRead(browser=record.browser, os=record.os, device_type=record.device_type),
            user_agent=record.user_agent,
            ip_address=record.ip_address,
            created_at=record.created_at,
            last_seen_at=record.last_seen_at,
            expires_at=record.expires_at,
            absolute_expires_at=record.absolute_expires_at,
            idle_expires_at=record.idle_expires_at,
            current=record.id == current_session_id,
        )
