"""How the service logs: JSON lines (LOG_FORMAT=json, production) or readable lines (text, the default),
one switch for every process (web, worker, session processes).

Each record gets `session_id` and `message_id` fields: given with `extra=`, set for the whole process
(a session process is one session: `set_process_fields`), or taken from the house convention of
log calls, `log.info("session %s: message %s ...", session_id, message_id)`. Every line is scrubbed
before it is written: tokens, base64 runs (PDF contents), PDF bytes and phone numbers beyond their last
three digits never reach the log.
"""

import atexit
import json
import logging
import os
import queue
import re
import threading
import time

# Fields every record of this process carries (a session process: its session id).
_process_fields: dict[str, str] = {}
# The placeholders of a %-format string, to find which argument follows "session " or "message ".
_PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[diouxXeEfFgGcrsa%]")
_FIELD_WORDS = {"session": "session_id", "message": "message_id"}

_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+")
_TOKEN_PARAM = re.compile(r"(?i)\b(token=)[^\s&\"',;]+")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{120,}={0,2}")
_PDF_BYTES = re.compile(r"b['\"]%PDF-.*?(?:['\"]|$)", re.DOTALL)
# 8 to 15 digits (a phone number with country code), alone: not inside an id or a word (a message id's
# first group, "12345678-9abc-...", is all digits one time in 40).
_PHONE = re.compile(r"(?<![A-Za-z0-9_.\-])\+?\d{5,12}(\d{3})(?![A-Za-z0-9_\-])")
# Written for people: a leading + and groups, "+51 987-654-321".
_SPACED_PHONE = re.compile(r"\+\d{1,3}(?:[ \-]?\d){5,12}[ \-]?(\d{3})(?![\d])")


def set_process_fields(**fields: str) -> None:
    _process_fields.update(fields)


def _secrets() -> list[str]:
    try:
        from django.conf import settings

        values = [settings.API_STATIC_TOKEN, getattr(settings, "METRICS_TOKEN", ""), settings.SECRET_KEY]
    except Exception:  # settings not configured (a bare forkserver): the patterns still apply
        return []
    return [v for v in values if v and len(v) >= 8]


def redact(text: str) -> str:
    for secret in _secrets():
        text = text.replace(secret, "[redacted]")
    text = _BEARER.sub(r"\1[redacted]", text)
    text = _TOKEN_PARAM.sub(r"\1[redacted]", text)
    text = _PDF_BYTES.sub("[pdf bytes]", text)
    text = _BASE64_RUN.sub(lambda m: f"[base64: {len(m.group())} chars]", text)
    text = _SPACED_PHONE.sub(lambda m: "***" + m.group(1), text)
    return _PHONE.sub(lambda m: "***" + m.group(1), text)


def _fields_from_convention(record: logging.LogRecord) -> dict[str, str]:
    """"session %s: message %s ..." with its arguments: the arguments after those words."""
    if not isinstance(record.msg, str) or not isinstance(record.args, tuple) or not record.args:
        return {}
    found, index = {}, 0
    for match in _PLACEHOLDER.finditer(record.msg):
        if match.group() == "%%":
            continue
        if index >= len(record.args):
            break
        word = record.msg[: match.start()].rstrip().rsplit(None, 1)[-1:] or [""]
        field = _FIELD_WORDS.get(word[0].lower())
        if field and field not in found and isinstance(record.args[index], (str, int)):
            found[field] = str(record.args[index])
        index += 1
    return found


class ContextFilter(logging.Filter):
    """Puts session_id and message_id on the record (None where the line is about neither)."""

    def filter(self, record: logging.LogRecord) -> bool:
        guessed = None
        for field in ("session_id", "message_id"):
            if getattr(record, field, None) is None:
                if field in _process_fields:
                    value = _process_fields[field]
                else:
                    guessed = _fields_from_convention(record) if guessed is None else guessed
                    value = guessed.get(field)
                setattr(record, field, value)
        return True


_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "session_id", "message_id"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
            "pid": record.process,
        }
        for field in ("session_id", "message_id"):
            if getattr(record, field, None) is not None:
                line[field] = str(getattr(record, field))
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                # Anything else (a request's repr carries its query string) is written as redacted text.
                native = value is None or isinstance(value, (bool, int, float))
                line[key] = value if native else redact(str(value))
        if record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`2026-01-31 12:00:00,123 INFO logger message [session=... message=...]`; the fields are added
    only where the message does not already name them."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        fields = [
            f"{name}={getattr(record, field)}"
            for field, name in (("session_id", "session"), ("message_id", "message"))
            if getattr(record, field, None) is not None and str(getattr(record, field)) not in message
        ]
        line = f"{self.formatTime(record)} {record.levelname} {record.name} {redact(message)}"
        if fields:
            line += " [" + " ".join(fields) + "]"
        if record.exc_info:
            line += "\n" + redact(self.formatException(record.exc_info))
        if record.stack_info:
            line += "\n" + redact(self.formatStack(record.stack_info))
        return line


class BackgroundStreamHandler(logging.StreamHandler):
    """Formats in the thread that logs, writes on a thread of its own: a slow stdout (a pipe to
    journald, a terminal) never stalls the event loop that logged. `flush()` waits for what is queued."""

    def __init__(self, stream=None):
        super().__init__(stream)
        self._start()
        os.register_at_fork(after_in_child=self._start)  # a forked child has the handler, not its thread
        atexit.register(self.flush)

    def _start(self) -> None:
        self._lines: queue.SimpleQueue[str | threading.Event] = queue.SimpleQueue()
        threading.Thread(target=self._write_forever, name="log-writer", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.put(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        done = threading.Event()
        self._lines.put(done)
        done.wait(5)

    def _write_forever(self) -> None:
        while True:
            items = [self._lines.get()]
            while len(items) < 1000:
                try:
                    items.append(self._lines.get_nowait())
                except queue.Empty:
                    break
            lines = [i for i in items if isinstance(i, str)]
            if not self._write(lines):
                for line in lines:  # one line the stream refuses must not take the others with it
                    self._write([line])
            for item in items:
                if isinstance(item, threading.Event):
                    item.set()

    def _write(self, lines: list[str]) -> bool:
        try:
            if lines:
                self.stream.write("".join(lines))
            self.stream.flush()
            return True
        except Exception:  # a closed or broken stream, a character it cannot encode
            return False


def logging_config(log_format: str, level: str) -> dict:
    """The LOGGING setting (Django applies it at setup)."""
    if log_format not in ("json", "text"):
        raise ValueError(f"LOG_FORMAT must be json or text, not {log_format!r}")
    formatter = "core.log_format.JsonFormatter" if log_format == "json" else "core.log_format.TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "core.log_format.ContextFilter"}},
        "formatters": {"service": {"()": formatter}},
        "handlers": {"console": {"class": "core.log_format.BackgroundStreamHandler",
                                 "formatter": "service", "filters": ["context"]}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            "httpx": {"level": "WARNING"},
            # uvicorn logs through these instead of its own handlers (serve passes log_config=None).
            "uvicorn": {"level": "WARNING"},
            "uvicorn.error": {"level": "WARNING"},
            "uvicorn.access": {"level": "WARNING"},
        },
    }


def apply(config: dict) -> None:
    """LOGGING_CONFIG: Django calls it with LOGGING at setup. Python's warnings become records too."""
    import logging.config

    logging.config.dictConfig(config)
    logging.captureWarnings(True)


def flush() -> None:
    """Write what is queued; before os._exit, which skips atexit."""
    for handler in logging.getLogger().handlers:
        handler.flush()


def configure_if_unconfigured() -> None:
    """For a process that did not run django.setup() itself (a forked session process): apply LOGGING."""
    if logging.getLogger().handlers:
        return
    from django.conf import settings

    apply(settings.LOGGING)
