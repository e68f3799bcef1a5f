"""Request and response bodies for users."""

import contextlib
from datetime import datetime
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    model_validator,
)

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
# A password being set. Its length bounds are settings (PASSWORD_MIN_LENGTH and
# PASSWORD_MAX_LENGTH), which the password policy enforces; the app's OpenAPI document writes
# them into every field carrying this marker (app.api.openapi).
PASSWORD_POLICY_MARKER = "x-password-policy"
NewPassword = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_PASSWORD_INPUT,
        json_schema_extra={PASSWORD_POLICY_MARKER: True},
    ),
]


class UserCreate(BaseModel):
    """Registration. Unknown fields, such as the seed's `is_admin`, are ignored by design."""

    model_config = ConfigDict(extra="ignore")

    email: Email
    username: Username
    password: NewPassword


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    username: str
    is_active: bool
    is_admin: bool
    is_verified: bool
    created_at: datetime
    updated_at: datetime


class ProfileUpdate(BaseModel):
    """A user's change to their own account; `current_password` guards email and password."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "dependentRequired": {
                "email": ["current_password"],
                "password": ["current_password"],
            }
        },
    )

    email: Email | None = None
    username: Username | None = None
    password: NewPassword | None = None
    current_password: Password | None = None

    @model_validator(mode="after")
    def _sensitive_changes_need_the_current_password(self) -> "ProfileUpdate":
        # Sent at all, even as null, as the schema's dependentRequired says.
        sensitive = self.model_fields_set & {"email", "password"}
        if sensitive and self.current_password is None:
            raise ValueError("`current_password` is needed to change the email or the password")
        return self


class AdminUserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    username: Username | None = None
    password: NewPassword | None = None
    is_active: bool | None = None
    is_admin: bool | None = None
    is_verified: bool | None = None


class AccountDeletion(BaseModel):
    """Deleting your own account takes your password."""

    model_config = ConfigDict(extra="forbid")

    password: Password


class UserPage(BaseModel):
    items: list[UserRead]
    total: int
    limit: int
    offset: int
