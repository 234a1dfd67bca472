"""Create .env with a random API_STATIC_TOKEN when there is none, and say where it is."""

import secrets
import sys
from pathlib import Path

path = Path(sys.argv[1] if len(sys.argv) > 1 else ".env").resolve()
example = path.with_name(".env.example")

if path.exists() and "API_STATIC_TOKEN=" in path.read_text():
    sys.exit(0)

lines = example.read_text().splitlines() if example.exists() else []
lines = [line for line in lines if not line.startswith(("API_STATIC_TOKEN=", "DJANGO_SECRET_KEY="))]
lines += [f"API_STATIC_TOKEN={secrets.token_urlsafe(32)}", f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}"]
existing = path.read_text() if path.exists() else ""
path.write_text(existing + "\n".join(lines) + "\n")
path.chmod(0o600)
print(f"Created {path} with a new random API_STATIC_TOKEN (read it there; it is not printed).")
