"""Someone who has learned an account's password tries to keep the account from its owner,
whose mailed links are the way back: a reset link, the undo link of an email change. And a
signed-in user tries to use the email change to mail-bomb or probe addresses."""

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.attacks.guesses import assert_429
from tests.attacks.test_email_tokens import (
    NEW_PASSWORD,
    _mails,
    _password_is,
    _refused,
    _reset,
    _reset_token,
)
from tests.clock import OffsetClock
from tests.conftest import serve
from tests.factories import ADMIN_EMAIL, ADMIN_PASSWORD, DEFAULT_PASSWORD, Api, UserHandle
from tests.mail_server import MailServer, token_in
from tests.mailing import mailed_settings
from tests.routes import CONFIRM_EMAIL_CHANGE, ME, UNDO_EMAIL_CHANGE, USERS

CONFIRM_SUBJECT = "Confirm your new email address"
CHANGED_SUBJECT = "The email address of your"
THIEF = "thief@example.com"
THIEF_LATER = "thief-later@example.com"
THIEF_PASSWORD = "the thief's own passphrase"


@pytest.fixture
async def api(database_url: str, smtp: MailServer, clock: OffsetClock) -> AsyncIterator[Api]:
    async with serve(mailed_settings(database_url, smtp.port), clock) as (_, served):
        yield served


async def _ask_to_move(api: Api, user: UserHandle, email: str, **body: Any) -> None:
    asked = await api.client.put(
        ME, json={"email": email, "current_password": DEFAULT_PASSWORD, **body},
        headers=user.headers,
    )  # fmt: skip
    assert asked.status_code == 202, asked.text


async def _move(api: Api, smtp: MailServer, user: UserHandle, email: str, nth: int = 1) -> None:
    """Change the account's address to `email` (asked and confirmed)."""
    await _ask_to_move(api, user, email)
    confirmation = (await _mails(smtp, email, CONFIRM_SUBJECT, nth))[nth - 1]
    confirmed = await api.client.post(CONFIRM_EMAIL_CHANGE, json={"token": token_in(confirmation)})
    assert confirmed.status_code == 200, confirmed.text


async def _undo_token(smtp: MailServer, address: str, nth: int = 1) -> str:
    return token_in((await _mails(smtp, address, CHANGED_SUBJECT, nth))[nth - 1])


async def _undo(api: Api, token: str) -> int:
    return (await api.client.post(UNDO_EMAIL_CHANGE, json={"token": token})).status_code


async def _email_of(api: Api, password: str, *candidates: str) -> str:
    """Which of the candidate addresses signs in with `password` now."""
    signs_in = [
        email for email in candidates if (await api.login(email, password)).status_code == 200
    ]
    assert len(signs_in) == 1, signs_in
    return signs_in[0]


async def test_the_owners_undo_link_outlives_a_second_change_and_the_thiefs_own_undo(
    api: Api, smtp: MailServer
) -> None:
    owner = await api.new_user()
    await _move(api, smtp, owner, THIEF)
    owners_undo = await _undo_token(smtp, owner.email)
    # The thief moves the account on, then undoes that to an address of their own, which
    # would have voided every other undo link.
    await _move(api, smtp, owner, THIEF_LATER)
    thiefs_undo = await _undo_token(smtp, THIEF)
    assert await _undo(api, thiefs_undo) == 200
    assert await _email_of(api, DEFAULT_PASSWORD, owner.email, THIEF, THIEF_LATER) == THIEF
    assert await _undo(api, owners_undo) == 200
    assert await _email_of(api, DEFAULT_PASSWORD, owner.email, THIEF, THIEF_LATER) == owner.email


async def test_undoing_a_change_voids_the_links_issued_after_it(api: Api, smtp: MailServer) -> None:
    owner = await api.new_user()
    await _move(api, smtp, owner, THIEF)
    owners_undo = await _undo_token(smtp, owner.email)
    await _move(api, smtp, owner, THIEF_LATER)
    thiefs_undo = await _undo_token(smtp, THIEF)
    await _ask_to_move(api, owner, "thief-pending@example.com")
    [pending] = await _mails(smtp, "thief-pending@example.com", CONFIRM_SUBJECT)
    assert await _undo(api, owners_undo) == 200
    _refused(
        await api.client.post(UNDO_EMAIL_CHANGE, json={"token": thiefs_undo}), "email_token_used"
    )
    _refused(
        await api.client.post(CONFIRM_EMAIL_CHANGE, json={"token": token_in(pending)}),
        "email_token_used",
    )
    assert (
        await _email_of(
            api, DEFAULT_PASSWORD, owner.email, THIEF, THIEF_LATER, "thief-pending@example.com"
        )
        == owner.email
    )


async def test_the_old_address_is_held_for_its_undo_link(api: Api, smtp: MailServer) -> None:
    owner = await api.new_user()
    await _move(api, smtp, owner, THIEF)
    owners_undo = await _undo_token(smtp, owner.email)
    # The thief registers the freed address, so that undoing would find it taken.
    taken = await api.register(email=owner.email, username="squatter")
    assert taken.status_code == 409, taken.text
    assert taken.json()["code"] == "email_taken"
    other = await api.new_user()
    await _ask_to_move(api, other, owner.email)
    assert await _undo(api, owners_undo) == 200
    assert await _email_of(api, DEFAULT_PASSWORD, owner.email, THIEF) == owner.email
    # The other account's request for the address was not mailed at all.
    assert not [
        mail for mail in smtp.inbox.to(owner.email) if CONFIRM_SUBJECT in str(mail["Subject"])
    ]


async def test_a_pending_email_change_dies_with_a_password_reset(
    api: Api, smtp: MailServer
) -> None:
    owner = await api.new_user()
    await _ask_to_move(api, owner, THIEF)
    [confirmation] = await _mails(smtp, THIEF, CONFIRM_SUBJECT)
    reset = await _reset_token(api, smtp, owner)
    assert (await _reset(api, reset)).status_code == 200
    _refused(
        await api.client.post(CONFIRM_EMAIL_CHANGE, json={"token": token_in(confirmation)}),
        "email_token_used",
    )
    assert await _password_is(api, owner, NEW_PASSWORD)


async def test_a_reset_link_dies_when_the_password_is_changed_another_way(
    api: Api, smtp: MailServer
) -> None:
    owner = await api.new_user()
    stale = await _reset_token(api, smtp, owner)
    changed = await api.client.put(
        ME, json={"password": THIEF_PASSWORD, "current_password": DEFAULT_PASSWORD},
        headers=owner.headers,
    )  # fmt: skip
    assert changed.status_code == 200, changed.text
    _refused(await _reset(api, stale), "email_token_used")
    # The same when an admin sets the password.
    admin = await api.tokens(ADMIN_EMAIL, ADMIN_PASSWORD)
    admins = {"Authorization": f"Bearer {admin.access_token}"}
    stale = await _reset_token(api, smtp, owner, nth=2)
    set_by_admin = await api.client.put(
        f"{USERS}{owner.id}", json={"password": "an admin's chosen passphrase"}, headers=admins
    )
    assert set_by_admin.status_code == 200, set_by_admin.text
    _refused(await _reset(api, stale), "email_token_used")
    assert await _password_is(api, owner, "an admin's chosen passphrase")


async def test_no_link_works_for_a_deactivated_account(api: Api, smtp: MailServer) -> None:
    owner = await api.new_user()
    reset = await _reset_token(api, smtp, owner)
    await _ask_to_move(api, owner, THIEF)
    [confirmation] = await _mails(smtp, THIEF, CONFIRM_SUBJECT)
    admin = await api.tokens(ADMIN_EMAIL, ADMIN_PASSWORD)
    deactivated = await api.client.put(
        f"{USERS}{owner.id}",
        json={"is_active": False},
        headers={"Authorization": f"Bearer {admin.access_token}"},
    )
    assert deactivated.status_code == 200, deactivated.text
    _refused(await _reset(api, reset), "email_token_invalid")
    _refused(
        await api.client.post(CONFIRM_EMAIL_CHANGE, json={"token": token_in(confirmation)}),
        "email_token_invalid",
    )


async def test_the_right_token_survives_passwords_the_policy_refuses(
    api: Api, smtp: MailServer
) -> None:
    owner = await api.new_user()
    token = await _reset_token(api, smtp, owner)
    for _ in range(8):
        refused = await _reset(api, token, "password123")
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "password_rejected"
    assert (await _reset(api, token)).status_code == 200
    assert await _password_is(api, owner, NEW_PASSWORD)


async def test_email_changes_spend_the_new_addresses_mail_budget(
    database_url: str, smtp: MailServer, clock: OffsetClock
) -> None:
    settings = mailed_settings(database_url, smtp.port, RATE_LIMIT_MAIL="3/minute")
    async with serve(settings, clock) as (_, api):
        user = await api.new_user()
        for _ in range(3):
            await _ask_to_move(api, user, "victim@example.com")
        refused = await api.client.put(
            ME, json={"email": "victim@example.com", "current_password": DEFAULT_PASSWORD},
            headers=user.headers,
        )  # fmt: skip
        assert_429(refused)
        assert len(await _mails(smtp, "victim@example.com", CONFIRM_SUBJECT, 3)) == 3
        # Another address has its own budget.
        await _ask_to_move(api, user, "someone-else@example.com")
