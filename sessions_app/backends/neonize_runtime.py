"""neonize imported in two steps, so that session processes forked from one parent share most of it.

Importing this module loads neonize's Python side (its modules and ~30 MB of protobuf descriptors) with
the Go library left out (neonize skips it when SPHINX is set). The forkserver imports this module once
(NeonizeBackend.PRELOAD_MODULES); every session process forked from it shares those pages copy-on-write.
`load_go_library()` then loads the Go library in the session process itself: the Go runtime starts its
threads when the library is loaded, and threads do not survive a fork, so it cannot be shared.

Importing neonize also configures the root logger at INFO and starts a thread that forwards whatsmeow's
log lines; the first is undone here, the second is restarted in the child (a forked child has no threads).
whatsmeow's lines then reach the service's logging as loggers `whatsmeow.*`; neonize's print() of each
login status becomes a debug record, and anything else written to stdout is turned into records by the
session process (session_process._stdout_into_logging).
"""

import ctypes
import importlib
import logging
import os
import queue
import threading

# whatsmeow is chatty at INFO; WHATSMEOW_LOG_LEVEL=DEBUG (or INFO) shows what it does, for diagnosis.
NEONIZE_LOG_LEVEL = logging.getLevelName(os.environ.get("WHATSMEOW_LOG_LEVEL", "WARNING").upper())
if not isinstance(NEONIZE_LOG_LEVEL, int):
    NEONIZE_LOG_LEVEL = logging.WARNING
_GO_LOCK = threading.Lock()


def _import_python_side() -> None:
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, list(root.handlers)
    saved_sphinx = os.environ.get("SPHINX")
    os.environ["SPHINX"] = "1"
    try:
        import neonize.client  # noqa: F401  (the import is the point: it pulls in the protobuf modules)
        import neonize.events  # noqa: F401
        import neonize.exc  # noqa: F401
    finally:
        if saved_sphinx is None:
            os.environ.pop("SPHINX", None)
        else:
            os.environ["SPHINX"] = saved_sphinx
        # neonize calls logging.basicConfig(level=INFO) at import; the host decides how it logs.
        root.setLevel(saved_level)
        root.handlers[:] = saved_handlers
    # "neonize.utils.log" is set by name because connect() passes that logger's own level to Go.
    for name in ("neonize", "neonize.utils.log", "whatsmeow", "Whatsmeow"):
        logging.getLogger(name).setLevel(NEONIZE_LOG_LEVEL)
    # neonize print()s every login status; a log record instead.
    neonize.client.NewClient._NewClient__onLoginStatus = _log_login_status
    # Sessions send documents only; the warning that ffmpeg (for stickers and video) is missing is noise.
    logging.getLogger("neonize.utils.ffmpeg").setLevel(logging.ERROR)


def _log_login_status(client, uuid, status) -> None:
    logging.getLogger("neonize.client").debug("login status %s", status)


_import_python_side()


def go_library_loaded() -> bool:
    import neonize._binder

    return isinstance(neonize._binder.gocode, ctypes.CDLL)


def load_go_library() -> None:
    """Load the Go library into this process (idempotent) and restart neonize's log forwarder if a
    fork left it behind. Call it in the session process before creating a client."""
    import neonize._binder
    import neonize.client

    # Not `from neonize.utils import log`: the package rebinds that name to a Logger.
    neonize_log = importlib.import_module("neonize.utils.log")

    with _GO_LOCK:
        if not go_library_loaded():
            saved_sphinx = os.environ.pop("SPHINX", None)
            try:
                # Re-running _binder without SPHINX loads the library and declares every signature.
                importlib.reload(neonize._binder)
            finally:
                if saved_sphinx is not None:
                    os.environ["SPHINX"] = saved_sphinx
        # client.py bound the placeholder with `from ._binder import gocode`; NewClient reads this global.
        neonize.client.gocode = neonize._binder.gocode
        if not neonize_log._thread.is_alive():
            # A fresh queue too: the old one's condition still lists the dead thread as a waiter.
            neonize_log._log_queue = queue.Queue()
            neonize_log._thread = threading.Thread(
                target=neonize_log._worker, name="whatsmeow-log", daemon=True
            )
            neonize_log._thread.start()
