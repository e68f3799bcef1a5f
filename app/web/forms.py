"""Reading a page's form: every field as text, validated by a pydantic model, each problem
told in words beside its field, and what was typed kept for the next rendering (never a
password)."""

from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

M = TypeVar("M", bound=BaseModel)
FORM_ERROR = "_form"
# What a hostile field can hold before the form is refused outright: more than any real field.
MAX_FIELD_CHARACTERS = 4096


async def form_fields(request: Request) -> dict[str, str]:
    """The form's text fields; a file where text belongs counts as missing (and is closed)."""
    form = await request.form()
    fields: dict[str, str] = {}
    for name, value in form.items():
        if isinstance(value, str):
            fields[name] = value
        else:
            await value.close()
    return fields


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    context = error.get("ctx") or {}
    if kind == "missing":
        return "This field is required."
    if kind == "string_too_short":
        return f"Use at least {context.get('min_length')} characters."
    if kind == "string_too_long":
        return f"Use at most {context.get('max_length')} characters."
    if kind == "string_pattern_mismatch":
        return (
            "Use only letters, digits, dots, dashes and underscores, starting with a letter "
            "or digit."
        )
    if kind == "value_error" and "email" in str(error.get("msg", "")).lower():
        return "Enter an email address such as name@example.com."
    return str(error.get("msg", "This value is not valid.")).removeprefix("Value error, ")


def validate(model: type[M], fields: dict[str, str]) -> tuple[M | None, dict[str, str]]:
    """The form as `model`, or the message for each field that failed (FORM_ERROR for the
    form as a whole)."""
    try:
        return model.model_validate(fields), {}
    except ValidationError as invalid:
        problems: dict[str, str] = {}
        for error in invalid.errors(include_input=False):
            where = str(error["loc"][0]) if error["loc"] else FORM_ERROR
            problems.setdefault(where, _message(error))
        return None, problems


def kept(fields: dict[str, str], *names: str) -> dict[str, str]:
    """What the user typed into `names`, to show again (cut to a sane length)."""
    return {name: fields[name][:MAX_FIELD_CHARACTERS] for name in names if name in fields}
