"""Request and response bodies for sign-in, refresh and sign-out."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.tokens import MAX_TOKEN_LENGTH
from app.schemas.user import Password

TokenString = Annotated[str, Field(min_length=1, max_length=MAX_TOKEN_LENGTH)]
# Any text is accepted (a malformed email is just wrong credentials); the sign-in service
# normalises it as sign-up does.
SignInEmail = Annotated[str, Field(min_length=1, max_length=254)]
PASSWORD_GRANT = "password"
REFRESH_GRANT = "refresh_token"


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: SignInEmail
    password: Password


class TokenForm(BaseModel):
    """An OAuth2 token request (RFC 6749): the password grant, whose `username` carries the
    email, or the refresh_token grant. Without `grant_type`, the password grant."""

    model_config = ConfigDict(extra="ignore")

    grant_type: Annotated[str, Field(max_length=64)] = PASSWORD_GRANT
    username: SignInEmail | None = None
    password: Password | None = None
    refresh_token: TokenString | None = None
    scope: Annotated[str, Field(max_length=1024)] = ""

    @model_validator(mode="after")
    def _fields_of_the_grant(self) -> "TokenForm":
        if self.grant_type == PASSWORD_GRANT and (self.username is None or self.password is None):
            raise ValueError("the password grant needs `username` and `password`")
        if self.grant_type == REFRESH_GRANT and self.refresh_token is None:
            raise ValueError("the refresh_token grant needs `refresh_token`")
        return self


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: TokenString


class LogoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: TokenString | None = None


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")
