"""The files a user of the repository relies on stay in step with the code."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from app.core.config import Settings
from app.main import create_app

ROOT = Path(__file__).resolve().parents[1]


def test_requirements_txt_matches_pyproject_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    requirements = [line for line in lines if line and not line.startswith("#")]
    assert requirements == project["dependencies"]


def test_env_example_documents_every_setting_with_a_comment() -> None:
    text = (ROOT / ".env.example").read_text()
    documented = re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE)
    assert sorted(documented) == sorted(Settings.model_fields)
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]*=", line):
            before = lines[index - 1]
            assert before.startswith("#") or re.match(r"^[A-Z]", before), line


def test_configuration_page_includes_env_example_itself() -> None:
    # One source for the settings: the page includes the file rather than a copy of it.
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert '--8<-- ".env.example"' in page


def test_api_guide_names_every_route(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        ENVIRONMENT="test",
        DATABASE_URL=f"sqlite:///{tmp_path / 'routes.db'}",
    )
    paths = create_app(settings).openapi()["paths"]
    guide = (ROOT / "docs" / "api.md").read_text()
    assert "/api/v1/auth/login-form" in paths
    for path in paths:
        assert f"`{path}`" in guide, path


def test_readme_is_short_and_names_the_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 260
    for command in ("./scripts/serve", "./scripts/test", "--embedded-only"):
        assert command in readme, command
    # Commands run with the project's virtualenv, never a bare interpreter.
    assert not re.search(r"(^|[\s`(])python[ ]", readme, flags=re.MULTILINE)


def test_every_page_of_the_docs_navigation_exists() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    nav = config[config.index("\nnav:") :]
    pages = re.findall(r"([\w./-]+\.md)\s*$", nav, flags=re.MULTILINE)
    assert "index.md" in pages
    for page in pages:
        assert (ROOT / "docs" / page).is_file(), page


def test_ci_runs_the_readme_test_command() -> None:
    assert "./scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_generate_secret_key_prints_a_strong_key() -> None:
    output = subprocess.run(
        [sys.executable, str(ROOT / "generate_secret_key.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    name, _, key = output.partition("=")
    assert name == "SECRET_KEY"
    assert len(key) >= 48


def test_generate_secret_key_writes_env_in_place(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY=old\nADMIN_PASSWORD=your-secure-password\nOTHER=1\n")
    for extra in ([], ["--admin-password"]):
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "generate_secret_key.py"),
                "--write",
                "--env-file",
                str(env_file),
                *extra,
            ],
            capture_output=True,
            check=True,
        )
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    assert values["OTHER"] == "1"
    assert values["SECRET_KEY"] != "old"
    assert len(values["SECRET_KEY"]) >= 48
    assert values["ADMIN_PASSWORD"] != "your-secure-password"
    assert env_file.stat().st_mode & 0o077 == 0
