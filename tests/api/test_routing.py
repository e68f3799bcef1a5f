"""Each route documents, from its declaration, every status it can answer and the codes behind
each, and nothing else."""

from fastapi import FastAPI

from tests.routes import LOGIN, ME, ROOT, SESSIONS, USER

STORE_FREE = {("get", ROOT)}


def _operations(app: FastAPI) -> dict[tuple[str, str], dict[str, object]]:
    spec = app.openapi()
    return {
        (method, path): operation
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    }


def _statuses(operation: dict[str, object]) -> set[str]:
    responses = operation["responses"]
    assert isinstance(responses, dict)
    return set(responses)


async def test_every_route_documents_what_it_can_answer_and_nothing_else(app: FastAPI) -> None:
    operations = _operations(app)
    assert _statuses(operations[("get", ME)]) == {"200", "401", "429", "503"}
    assert _statuses(operations[("get", SESSIONS)]) == {"200", "401", "429", "503"}
    # 403: email_not_verified, when REQUIRE_VERIFIED_EMAIL is on.
    assert _statuses(operations[("post", LOGIN)]) == {
        "200", "400", "401", "403", "413", "422", "429", "503"
    }  # fmt: skip
    assert _statuses(operations[("put", USER)]) == {
        "200", "400", "401", "403", "404", "409", "413", "422", "429", "503"
    }  # fmt: skip
    for key, operation in operations.items():
        assert ("503" in _statuses(operation)) is (key not in STORE_FREE), key


async def test_each_documented_error_names_its_codes(app: FastAPI) -> None:
    conflict = _operations(app)[("put", USER)]["responses"]
    assert isinstance(conflict, dict)
    description = conflict["409"]["description"]
    for code in ("email_taken", "username_taken", "last_admin"):
        assert f"`{code}`" in description
