"""Request bodies of the account's email flows."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.user import Email, NewPassword

# An email token: `<id>.<secret>`, both base64url.
EmailTokenText = Annotated[
    str, Field(min_length=3, max_length=128, pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
]


class AddressRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: EmailTokenText


class NewPasswordWithToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: EmailTokenText
    password: NewPassword
