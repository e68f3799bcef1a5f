"""The scene the attacks on tokens, privileges and sign-in answers are played in."""

import pytest

from app.core.config import Settings
from tests.attacks.scene import Scene
from tests.clock import OffsetClock
from tests.factories import Api


@pytest.fixture
async def scene(api: Api, settings: Settings, clock: OffsetClock) -> Scene:
    """A victim, a bystander and the admin, signed in; the client holds no cookies."""
    victim = await api.new_user()
    bystander = await api.new_user()
    admin = await api.admin()
    # Sign-in sets session cookies too; each attack presents exactly one credential.
    api.client.cookies.clear()
    return Scene(api, settings, clock, victim, bystander, admin.id)
