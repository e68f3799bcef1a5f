"""The files a user of the repository relies on stay in step with the code."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from app.core.config import Settings

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


def test_readme_names_every_setting_and_route() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert name in readme, name
    for route in (
        "/api/v1/auth/register",
        "/api/v1/auth/login-form",
        "/api/v1/sessions/{session_id}",
        "/api/v1/users/{user_id}",
        "/metrics",
    ):
        assert route in readme, route
    assert "./scripts/serve" in readme
    assert "./scripts/test" in readme


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
