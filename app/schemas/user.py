"""Request and response bodies for users."""

import contextlib
from datetime import datetime
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

MAX_PASSWORD_INPUT = 1024


def _lower(value: str) -> str:
    return value.lower()


def normalize_email(value: str) -> str:
    """The form registration stores: validated and normalised when possible, lower case."""
    text = value.strip()
    with contextlib.suppress(EmailNotValidError):
        text = validate_email(text, check_deliverability=False).normalized
    return text.lower()


Email = Annotated[EmailStr, Field(max_length=254), AfterValidator(_lower)]
Username = Annotated[
    str,
    StringConstraints(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
]
Password = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_INPUT)]


class UserCreate(BaseModel):
    """Registration. Unknown fields, such as the seed's `is_admin`, are ignored by design."""

    model_config = ConfigDict(extra="ignore")

    email: Email
    username: Username
    password: Password


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    username: str
    is_active: bool
    is_admin: bool
    created_at: datetime
    updated_at: datetime


class ProfileUpdate(BaseModel):
    """A user's change to their own account; `current_password` guards email and password."""

    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    username: Username | None = None
    password: Password | None = None
    current_password: Password | None = None


class AdminUserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    username: Username | None = None
    password: Password | None = None
    is_active: bool | None = None
    is_admin: bool | None = None


class UserPage(BaseModel):
    items: list[UserRead]
    total: int
    limit: int
    offset: int
