"""Fill in what .env lacks for `make run` (which runs this each time), and say where; never print a value.

- No API_STATIC_TOKEN: .env gets a random one and a DJANGO_SECRET_KEY (from .env.example when new).
- Webhook URLs set (WEBHOOK_URLS, or a session's "webhookUrls" in sessions.config.json) and no
  WEBHOOK_SECRET: .env gets a new Standard Webhooks secret (whsec_...). A variable set in the
  environment wins over .env, as in the service's settings: then .env is left alone.

Runs with the system's Python before the virtualenv exists: the standard library only.
"""

import json
import os
import re
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from webhooks.signing import new_secret  # noqa: E402  (the standard library only)

LINE = re.compile(r"\A(?:export )?([A-Za-z_0-9]+)=(.*)\Z")  # as django-environ's read_env


def read_env_file(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        if match := LINE.match(line):
            value = match.group(2)
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[match.group(1)] = value
    return values


def webhook_urls_set(value, base: Path) -> bool:
    """URLs in WEBHOOK_URLS or in any session's webhookUrls (a broken config is left to the service to report)."""
    if any(url.strip() for url in value("WEBHOOK_URLS").split(",")):
        return True
    config = Path(value("SESSIONS_CONFIG") or "sessions.config.json")
    try:
        entries = json.loads((base / config).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(entries, list) and any(isinstance(e, dict) and e.get("webhookUrls") for e in entries)


def main(path: Path) -> None:
    existing = path.read_text() if path.exists() else ""
    values = read_env_file(existing)

    def value(name: str) -> str:
        return os.environ[name] if name in os.environ else values.get(name, "")

    lines, said = existing.splitlines(), []
    if "API_STATIC_TOKEN" not in values:
        example = path.with_name(".env.example")
        if not existing and example.exists():
            lines = [line for line in example.read_text().splitlines()
                     if not line.startswith(("API_STATIC_TOKEN=", "DJANGO_SECRET_KEY="))]
        lines.append(f"API_STATIC_TOKEN={secrets.token_urlsafe(32)}")
        if "DJANGO_SECRET_KEY" not in values:
            lines.append(f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}")
        said.append(f"Created {path} with a new random API_STATIC_TOKEN (read it there; it is not printed)."
                    if not existing else
                    f"Added a new random API_STATIC_TOKEN to {path} (read it there; it is not printed).")
    if "WEBHOOK_SECRET" not in os.environ and not value("WEBHOOK_SECRET").strip() \
            and webhook_urls_set(value, path.parent):
        line = f"WEBHOOK_SECRET={new_secret()}"
        named = [n for n, text in enumerate(lines) if (m := LINE.match(text)) and m.group(1) == "WEBHOOK_SECRET"]
        if named:  # the last one is the one read: replace it, empty as it is
            lines[named[-1]] = line
        else:
            lines.append(line)
        said.append(f"Webhook URLs are set and WEBHOOK_SECRET was not: wrote a new one to {path} "
                    "(give it to your receivers; read it there, it is not printed).")
    if not said:
        return
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    print("\n".join(said))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ".env").resolve())
