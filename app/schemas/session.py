"""Response bodies for sessions."""

from datetime import datetime

from pydantic import BaseModel


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
    expires_at: datetime
    current: bool
