"""What session processes inherit from the forkserver (sessions_app.session_process.preload_modules)."""

import json
import os
import subprocess
import sys

from django.conf import settings

from sessions_app import session_process
from simulator.backend import SimulatorBackend

# A fresh interpreter, so its forkserver is started here with spawn()'s preload list (a forkserver
# already running in the test process keeps the list it was started with).
CHILD = """
import gc, json, multiprocessing, sys
import django
django.setup()
from sessions_app import session_process
from simulator.backend import SimulatorBackend


def report(conn):
    conn.send([gc.get_freeze_count(), "sessions_app.protocol" in sys.modules])


if __name__ == "__main__":
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(session_process.preload_modules(SimulatorBackend))  # as spawn() does
    ours, theirs = ctx.Pipe()
    process = ctx.Process(target=report, args=(theirs,), daemon=True)
    process.start()
    theirs.close()
    print(json.dumps(ours.recv()))
    process.join(10)
"""


def test_a_session_process_inherits_the_preloads_frozen_out_of_its_collections(tmp_path):
    """Frozen, the objects the preloads built are never walked by a child's collections, so their pages
    stay shared instead of being copied into each session process."""
    assert session_process.preload_modules(SimulatorBackend)[-1] == "sessions_app.forkserver_freeze"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "whatsapp_service.settings", "ENV_FILE": os.devnull,
           "PYTHONPATH": str(settings.BASE_DIR), "SESSIONS_DIR": str(tmp_path / "sessions")}
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    frozen, has_protocol = json.loads(out.stdout.strip().splitlines()[-1])
    assert has_protocol and frozen > 1000, frozen
