"""Session ids: the one check that stands between outside input and the file system."""

import re
from pathlib import Path

from django.conf import settings

SESSION_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


class InvalidSessionId(ValueError):
    pass


def validate_session_id(value: object) -> str:
    if not isinstance(value, str) or not SESSION_ID_RE.fullmatch(value):
        shown = repr(value)[:80]
        raise InvalidSessionId(
            f"invalid session id {shown}: use 1 to 64 letters, digits, '_' or '-'"
        )
    return value


def session_dir(session_id: str) -> Path:
    """The folder holding one session's credentials; built only from a validated id."""
    validate_session_id(session_id)
    base = Path(settings.SESSIONS_DIR).resolve()
    path = (base / session_id).resolve()
    if path.parent != base:  # belt and braces: the regex already forbids separators and dots-only names
        raise InvalidSessionId(f"session id {session_id!r} escapes the sessions folder")
    return path
