"""Operator commands: `python -m app.cli migrate`."""

import asyncio

import typer
from pydantic import ValidationError

from app.core.config import Settings
from app.services.bootstrap import prepare_from_settings

cli = typer.Typer(help="Operate the authentication service.", no_args_is_help=True)


@cli.command()
def migrate() -> None:
    """Apply pending database migrations and create the default admin from settings."""
    asyncio.run(prepare_from_settings(Settings()))
    typer.echo("database is up to date")


@cli.command()
def check() -> None:
    """List the settings that would make the service unsafe in production."""
    try:
        problems = Settings(ENVIRONMENT="development").security_problems()
    except ValidationError as exc:
        problems = [str(error["msg"]) for error in exc.errors()]
    for problem in problems:
        typer.echo(f"- {problem}")
    raise typer.Exit(code=1 if problems else 0)


if __name__ == "__main__":
    cli()
