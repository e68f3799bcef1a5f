"""Profile changes, and the admin's listing and editing of users."""

from sqlalchemy.ext.asyncio import AsyncSession as DbSession

from app.core.errors import CurrentPasswordInvalid, LastAdmin, UserNotFound
from app.core.events import SecurityEvent
from app.models import User
from app.schemas.user import AdminUserUpdate, ProfileUpdate
from app.services.context import Principal, ServiceContext
from app.services.passwords import check_password_policy
from app.storage.users import Account, UserFilter, UserRepository, to_account


async def _apply_identity_and_password(
    ctx: ServiceContext,
    users: UserRepository,
    user: User,
    *,
    email: str | None,
    username: str | None,
    password: str | None,
) -> bool:
    """Apply email, username and password changes; return whether the password changed."""
    new_email = email or user.email
    new_username = username or user.username
    await users.ensure_unique(email=new_email, username=new_username, except_id=user.id)
    user.email = new_email
    user.username = new_username
    if password is None:
        return False
    check_password_policy(ctx.settings, password, email=new_email, username=new_username)
    user.hashed_password = await ctx.hasher.hash(password)
    return True


async def update_profile(
    ctx: ServiceContext, db: DbSession, *, principal: Principal, changes: ProfileUpdate
) -> Account:
    """Change the caller's own username, email or password.

    Email and password changes need the current password; a password change ends every other
    session of the user.
    """
    users = UserRepository(db)
    user = await users.get(principal.account.id)
    if user is None:
        raise UserNotFound
    sensitive = changes.password is not None or (
        changes.email is not None and changes.email != user.email
    )
    if sensitive:
        valid, _ = await ctx.hasher.verify(changes.current_password or "", user.hashed_password)
        if not valid:
            raise CurrentPasswordInvalid
    password_changed = await _apply_identity_and_password(
        ctx, users, user, email=changes.email, username=changes.username, password=changes.password
    )
    user.updated_at = ctx.clock.now()
    if password_changed:
        # Before the flush: the embedded store shares SQLite, which allows one writer at a time.
        revoked = await ctx.sessions.revoke_all(
            user.id, now=ctx.clock.now(), keep_session_id=principal.session_id
        )
        ctx.events.emit(SecurityEvent.PASSWORD_CHANGED, user_id=user.id, sessions_revoked=revoked)
    await users.save()
    ctx.forget_user(user.id)
    return to_account(user)


async def list_users(
    db: DbSession, *, where: UserFilter, limit: int, offset: int
) -> tuple[list[Account], int]:
    """A page of users for an admin."""
    rows, total = await UserRepository(db).page(where, limit=limit, offset=offset)
    return [to_account(row) for row in rows], total


async def admin_update_user(
    ctx: ServiceContext,
    db: DbSession,
    *,
    actor: Principal,
    user_id: int,
    changes: AdminUserUpdate,
) -> Account:
    """An admin's change to any user.

    Deactivation and password resets end all the user's sessions. No change may leave the
    service without an active admin.
    """
    users = UserRepository(db)
    user = await users.get(user_id)
    if user is None:
        raise UserNotFound
    removes_rights = changes.is_admin is False or changes.is_active is False
    loses_admin = user.is_admin and user.is_active and removes_rights
    if loses_admin and await users.count_active_admins(except_id=user.id) == 0:
        raise LastAdmin
    password_changed = await _apply_identity_and_password(
        ctx, users, user, email=changes.email, username=changes.username, password=changes.password
    )
    deactivated = user.is_active and changes.is_active is False
    if changes.is_active is not None:
        user.is_active = changes.is_active
    if changes.is_admin is not None:
        user.is_admin = changes.is_admin
    user.updated_at = ctx.clock.now()
    if deactivated or password_changed:
        # Before the flush, for the same single-writer reason as in update_profile.
        await ctx.sessions.revoke_all(user.id, now=ctx.clock.now())
    await users.save()
    # The check above refuses the plain case before anything changes; this one catches two
    # admins removing each other at once. It runs for any removal of rights, whatever the
    # read above saw: that read may be stale (an admin reactivated meanwhile), and the flush
    # writes only the changed columns. Raising rolls the change back; sessions that a
    # refused deactivation revoked stay revoked, which only asks the admin to sign in again.
    if removes_rights and await users.count_active_admins_after_change() == 0:
        raise LastAdmin
    ctx.forget_user(user.id)
    ctx.events.emit(
        SecurityEvent.ADMIN_CHANGED_USER,
        user_id=user.id,
        admin_id=actor.account.id,
        fields=sorted(changes.model_fields_set),
    )
    return to_account(user)
