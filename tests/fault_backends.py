"""Session processes that misbehave, for the fault tests: the simulator, plus one fault each.
Selected with WHATSAPP_BACKEND="tests.fault_backends:<Class>"; the fault hits the session named in
FAULT_SESSION only, so the others show that they keep working."""

import os
import threading
import time
from pathlib import Path

from sessions_app.protocol import Receipt
from simulator.backend import SimulatorBackend


class FloodingBackend(SimulatorBackend):
    """Sends receipts up its pipe as fast as it can, for ever: a client gone mad."""

    def run(self) -> None:
        if self.session_id == os.environ.get("FAULT_SESSION"):
            threading.Thread(target=self._flood, daemon=True).start()
        super().run()

    def _flood(self) -> None:
        while True:
            self.emit(Receipt(("3EB0FLOOD",), "delivered", time.time()))


class ExitMidSendBackend(SimulatorBackend):
    """The first send of the session ends the process in the middle of it, before WhatsApp got it."""

    def send_document(self, to, data, file_name, mimetype, caption):
        marker = Path(self.store_dir) / "exited-mid-send"
        if self.session_id == os.environ.get("FAULT_SESSION") and not marker.exists():
            marker.write_text("1")
            os._exit(1)
        return super().send_document(to, data, file_name, mimetype, caption)


class BusyBackend(SimulatorBackend):
    """Sends receipts up its pipe at FAULT_RATE a second, below the flood limit, for ever: a number
    with a lot of traffic, or a client that repeats itself, that keeps the supervisor's database busy."""

    def run(self) -> None:
        if self.session_id == os.environ.get("FAULT_SESSION"):
            threading.Thread(target=self._chatter, daemon=True).start()
        super().run()

    def _chatter(self) -> None:
        interval = 1.0 / float(os.environ.get("FAULT_RATE", "1000"))
        next_at = time.monotonic()
        while True:
            # WhatsApp's receipt timestamps are whole seconds; each its own is the harder case.
            self.emit(Receipt(("3EB0BUSY",), "delivered", time.time()))
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
