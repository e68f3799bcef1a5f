"""Print a strong SECRET_KEY, or write it into .env with --write.

With --admin-password, generate ADMIN_PASSWORD instead (printed once when written).
"""

import argparse
import re
import secrets
from pathlib import Path

KEY_BYTES = 48
ADMIN_PASSWORD_BYTES = 18


def _set_variable(env_file: Path, name: str, value: str) -> None:
    text = env_file.read_text(encoding="utf-8") if env_file.exists() else ""
    line = f"{name}={value}"
    pattern = rf"^{name}=.*$"
    if re.search(pattern, text, flags=re.MULTILINE):
        text = re.sub(pattern, lambda _: line, text, count=1, flags=re.MULTILINE)
    else:
        text = f"{text.rstrip()}\n{line}\n".lstrip()
    env_file.write_text(text, encoding="utf-8")
    env_file.chmod(0o600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="set the value in the .env file")
    parser.add_argument("--admin-password", action="store_true", help="ADMIN_PASSWORD instead")
    parser.add_argument("--env-file", default=".env", type=Path)
    args = parser.parse_args()
    if args.admin_password:
        name, value = "ADMIN_PASSWORD", secrets.token_urlsafe(ADMIN_PASSWORD_BYTES)
    else:
        name, value = "SECRET_KEY", secrets.token_urlsafe(KEY_BYTES)
    if not args.write:
        print(f"{name}={value}")
        return
    _set_variable(args.env_file, name, value)
    if args.admin_password:
        print(f"wrote a new ADMIN_PASSWORD to {args.env_file}: {value}")
    else:
        print(f"wrote a new SECRET_KEY to {args.env_file}")


if __name__ == "__main__":
    main()
