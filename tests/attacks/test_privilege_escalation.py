"""Privilege escalation by ordinary users, tested as attacks: sign-up and profile fields,
admin routes, and other users' sessions."""

from tests.attacks.scene import Scene, assert_still_signed_in
from tests.factories import DEFAULT_PASSWORD, Api
from tests.routes import ME, METRICS, REGISTER, SESSIONS, USERS


async def test_registration_cannot_grant_privileges(api: Api) -> None:
    response = await api.client.post(
        REGISTER,
        json={
            "email": "climber@example.com",
            "username": "climber",
            "password": DEFAULT_PASSWORD,
            "is_admin": True,
            "is_active": False,
            "id": 1,
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["is_admin"], created["is_active"]) == (False, True)
    assert created["id"] != 1
    tokens = await api.tokens("climber@example.com", DEFAULT_PASSWORD)
    me = (await api.me(tokens)).json()
    assert (me["id"], me["is_admin"], me["is_active"]) == (created["id"], False, True)
    forbidden = await api.client.get(USERS, headers=tokens.headers)
    assert forbidden.status_code == 403
    assert forbidden.json()["code"] == "forbidden"


ESCALATING_PROFILE_CHANGES: tuple[dict[str, object], ...] = (
    {"is_admin": True},
    {"is_admin": True, "username": "sneaky"},
    {"is_active": True, "is_admin": "true"},
    {"id": 1},
)


async def test_profile_update_cannot_grant_admin(scene: Scene) -> None:
    for changes in ESCALATING_PROFILE_CHANGES:
        response = await scene.api.client.put(ME, json=changes, headers=scene.victim.headers)
        assert response.status_code == 422, (changes, response.text)
        assert response.json()["code"] == "validation_error"
    scene.clock.advance(scene.settings.SESSION_CACHE_SECONDS)
    me = (await scene.api.me(scene.victim.tokens)).json()
    assert (me["id"], me["username"], me["is_admin"]) == (
        scene.victim.id,
        scene.victim.username,
        False,
    )
    assert (await scene.api.client.get(USERS, headers=scene.victim.headers)).status_code == 403


async def test_ordinary_users_cannot_use_admin_routes(scene: Scene) -> None:
    headers = scene.victim.headers
    attempts = [
        ("GET", USERS, None),
        ("GET", f"{USERS}?is_admin=true", None),
        ("PUT", f"{USERS}{scene.victim.id}", {"is_admin": True}),
        ("PUT", f"{USERS}{scene.bystander.id}", {"is_active": False}),
        ("PUT", f"{USERS}{scene.admin_id}", {"password": "taken over by victim"}),
        ("GET", METRICS, None),
    ]
    for method, path, body in attempts:
        response = await scene.api.client.request(method, path, json=body, headers=headers)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json() == {
            "code": "forbidden",
            "detail": "You do not have permission to do this.",
        }
    scene.clock.advance(scene.settings.SESSION_CACHE_SECONDS)
    assert (await scene.api.me(scene.victim.tokens)).json()["is_admin"] is False
    await assert_still_signed_in(scene, scene.bystander)
    admin = await scene.api.admin()
    assert admin.id == scene.admin_id


async def test_revoking_another_users_session_is_not_found_and_leaves_it_working(
    scene: Scene,
) -> None:
    target = scene.bystander.tokens.session_id
    response = await scene.api.client.delete(f"{SESSIONS}{target}", headers=scene.victim.headers)
    assert response.status_code == 404, response.text
    assert response.json() == {"code": "session_not_found", "detail": "Session not found."}
    await assert_still_signed_in(scene, scene.bystander)
    listed = await scene.api.client.get(SESSIONS, headers=scene.bystander.headers)
    assert target in {session["id"] for session in listed.json()}
    refreshed = await scene.api.refresh(scene.bystander.tokens.refresh_token)
    assert refreshed.status_code == 200, refreshed.text
