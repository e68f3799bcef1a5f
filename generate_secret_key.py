"""Print a strong SECRET_KEY, or write it into .env with --write."""

import argparse
import re
import secrets
from pathlib import Path

KEY_BYTES = 48


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="set SECRET_KEY in .env")
    parser.add_argument("--env-file", default=".env", type=Path)
    args = parser.parse_args()
    key = secrets.token_urlsafe(KEY_BYTES)
    if not args.write:
        print(f"SECRET_KEY={key}")
        return
    env_file: Path = args.env_file
    text = env_file.read_text(encoding="utf-8") if env_file.exists() else ""
    line = f"SECRET_KEY={key}"
    if re.search(r"^SECRET_KEY=.*$", text, flags=re.MULTILINE):
        text = re.sub(r"^SECRET_KEY=.*$", line, text, count=1, flags=re.MULTILINE)
    else:
        text = f"{text.rstrip()}\n{line}\n".lstrip()
    env_file.write_text(text, encoding="utf-8")
    env_file.chmod(0o600)
    print(f"wrote a new SECRET_KEY to {env_file}")


if __name__ == "__main__":
    main()
