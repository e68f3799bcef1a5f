"""Profile changes, and the admin's listing and editing of users."""

from dataclasses import replace

from app.core.errors import CurrentPasswordInvalid, LastAdmin, UserNotFound
from app.core.events import SecurityEvent
from app.domain.accounts import Account, AccountChanges, UserFilter
from app.domain.principals import Principal
from app.schemas.user import AdminUserUpdate, ProfileUpdate
from app.services.context import ServiceContext


async def _new_password_hash(
    ctx: ServiceContext, password: str | None, *, email: str, username: str
) -> str | None:
    if password is None:
        return None
    await ctx.passwords.check(password, email=email, username=username)
    return await ctx.hasher.hash(password)


async def update_profile(
    ctx: ServiceContext, *, principal: Principal, changes: ProfileUpdate
) -> Account:
    """Change the caller's own username, email or password.

    Email and password changes need the current password; a password change ends every other
    session of the user.
    """
    found = await ctx.users.credentials_of(principal.account.id)
    if found is None:
        raise UserNotFound
    current = found.account
    if changes.password is not None or (
        changes.email is not None and changes.email != current.email
    ):
        valid, _ = await ctx.hasher.verify(changes.current_password or "", found.hashed_password)
        if not valid:
            raise CurrentPasswordInvalid
    email = changes.email or current.email
    username = changes.username or current.username
    await ctx.users.ensure_available(email=email, username=username, except_id=current.id)
    hashed_password = await _new_password_hash(
        ctx, changes.password, email=email, username=username
    )
    if hashed_password is not None:
        # Before the change is stored: should storing it fail, the user signs in again with
        # the old password; the other way round, a thief's session would outlive the change.
        revoked = await ctx.sessions.revoke_all(
            current.id, now=ctx.clock.now(), keep_session_id=principal.session_id
        )
        ctx.events.emit(
            SecurityEvent.PASSWORD_CHANGED, user_id=current.id, sessions_revoked=revoked
        )
    account = await ctx.users.update(
        current.id,
        AccountChanges(email=email, username=username, hashed_password=hashed_password),
        now=ctx.clock.now(),
    )
    ctx.forget_user(account.id)
    return account


async def list_users(
    ctx: ServiceContext, *, where: UserFilter, limit: int, offset: int
) -> tuple[list[Account], int]:
    """A page of users for an admin."""
    return await ctx.users.page(where, limit=limit, offset=offset)


async def admin_update_user(
    ctx: ServiceContext, *, actor: Principal, user_id: int, changes: AdminUserUpdate
) -> Account:
    """An admin's change to any user.

    Deactivation and password resets end all the user's sessions. No change may leave the
    service without an active admin.
    """
    current = await ctx.users.get(user_id)
    if current is None:
        raise UserNotFound
    change = AccountChanges(
        email=changes.email,
        username=changes.username,
        is_active=changes.is_active,
        is_admin=changes.is_admin,
    )
    # The plain case is refused before anything changes; the store refuses the rest, such as
    # two admins demoting each other at once.
    if (
        current.is_admin
        and current.is_active
        and change.removes_admin_rights()
        and await ctx.users.count_active_admins(except_id=current.id) == 0
    ):
        raise LastAdmin
    email = changes.email or current.email
    username = changes.username or current.username
    await ctx.users.ensure_available(email=email, username=username, except_id=current.id)
    hashed_password = await _new_password_hash(
        ctx, changes.password, email=email, username=username
    )
    if (current.is_active and changes.is_active is False) or hashed_password is not None:
        # Before the change, for the same reason as in update_profile. Should the store then
        # refuse the change, the revoked sessions stay revoked: their owner signs in again.
        await ctx.sessions.revoke_all(current.id, now=ctx.clock.now())
    account = await ctx.users.update(
        current.id, replace(change, hashed_password=hashed_password), now=ctx.clock.now()
    )
    ctx.forget_user(account.id)
    ctx.events.emit(
        SecurityEvent.ADMIN_CHANGED_USER,
        user_id=account.id,
        admin_id=actor.account.id,
        fields=sorted(changes.model_fields_set),
    )
    return account
