"""The neonize backend against real neonize 0.5.2 objects, offline: what is neonize's own (the scenarios
both backends share are in test_backend_conformance.py).

Events are serialized Neonize_pb2 messages handed to the client's own dispatcher through the same ctypes
callback types Go calls (NEONIZE.md, "Testing the real client offline"); what the supervisor would
receive is what the backend emits. Commands reach tests/go_standin.py, which stands in for the Go library
only and answers as whatsmeow does.
"""

import ctypes
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from django.conf import settings

from sessions_app.backends.base import BackendError
from sessions_app.backends.neonize_backend import NeonizeBackend
from sessions_app.protocol import (
    BackendEvent, ConnectFailure, Connected, Error, KeepaliveRestored, KeepaliveTimeout, LoggedOut, Receipt, TemporaryBan,
)
from tests.conftest import make_pdf
from tests.files import make_image
from tests.go_standin import GoStandIn, jid, message_source, run_on
from tests.whatsapp_proxy import WhatsAppProxy

PHONE = "51987654321"
OWN_PHONE = "51911111111"


def feed(client, message, code: int | None = None) -> None:
    """Deliver one event the way Go does."""
    from neonize._binder import func_callback_bytes
    from neonize.events import EVENT_TO_INT

    data = message.SerializeToString() if hasattr(message, "SerializeToString") else message
    callback = func_callback_bytes(client.event.execute)
    buffer = ctypes.create_string_buffer(data, len(data) or 1)
    code = EVENT_TO_INT[type(message)] if code is None else code
    callback(client.uuid, ctypes.addressof(buffer), len(data), code)


def feed_qr(client, code: str) -> None:
    from neonize._binder import func_string

    callback = func_string(client._NewClient__onQr)
    buffer = ctypes.create_string_buffer(code.encode())
    callback(client.uuid, ctypes.addressof(buffer))


def receipt(kind: str, ids=("3EB0AAA", "3EB0BBB"), timestamp: int = 1_700_000_000):
    from neonize.proto import Neonize_pb2 as pb

    return pb.Receipt(
        MessageSource=message_source(PHONE, PHONE, False), MessageIDs=list(ids), Timestamp=timestamp,
        Type=pb.Receipt.ReceiptType.Value(kind),
    )


class Recorder:
    def __init__(self):
        self.events: list[BackendEvent] = []
        self.changed = threading.Condition()

    def __call__(self, event: BackendEvent) -> None:
        with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    def kinds(self) -> list[str]:
        return [e.name for e in self.events]

    def wait_for(self, kind: str, timeout: float = 10.0) -> BackendEvent:
        with self.changed:
            assert self.changed.wait_for(lambda: kind in self.kinds(), timeout), self.events
            return next(e for e in self.events if e.name == kind)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def backend(tmp_path, recorder, monkeypatch, settings):
    # create_client installs the child's unraisable hook; give the test process its own back afterwards.
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
    settings.SESSIONS_DIR = tmp_path / "sessions"
    b = NeonizeBackend("tienda_lima", tmp_path, recorder)
    b.create_client()
    yield b
    b._cancel_qr_timer()


def connect_offline(backend) -> None:
    from neonize.proto import Neonize_pb2 as pb

    device = pb.Device(JID=jid(PHONE), Platform="", BussinessName="", PushName="", Initialized=True)
    feed(backend.client, device, code=0)  # Go sends the stored device first; neonize keeps it as `me`
    feed(backend.client, pb.Connected(status=True))


@pytest.fixture
def on_go(tmp_path, recorder, monkeypatch, settings):
    """on_go(GoStandIn(...)): a NeonizeBackend whose real client runs (connect() included) on that Go
    stand-in. Afterwards it is stopped, and no Go function outside the stand-in was called."""
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
    settings.SESSIONS_DIR = tmp_path / "sessions"
    running = []

    def start(go: GoStandIn) -> NeonizeBackend:
        b = NeonizeBackend("tienda_lima", tmp_path, recorder)
        running.append((b, go, run_on(b, go)))
        return b

    yield start
    for b, go, thread in running:
        b.stop()
        thread.join(10)
        go.close()
        b._cancel_qr_timer()
        assert not thread.is_alive() and go.unexpected == []


def test_a_failed_pairing_is_an_error_event(backend, recorder):
    from neonize.proto import Neonize_pb2 as pb

    failed = pb.PairStatus(
        ID=jid(""), BusinessName="", Platform="", Status=pb.PairStatus.ERROR, Error="bad signature"
    )
    feed(backend.client, failed)
    assert recorder.events == [Error("pairing failed: bad signature")]


def test_logged_out_is_said_once_and_not_followed_by_a_transient_disconnect(on_go, recorder):
    from neonize.proto import Neonize_pb2 as pb

    go = GoStandIn(phone=OWN_PHONE)
    on_go(go)
    go.unlink_from_phone()
    go.deliver(pb.Disconnected(status=True))  # the socket closing after the stream error
    go.deliver(pb.LoggedOut(OnConnect=True, Reason=pb.LOGGED_OUT))
    assert recorder.events == [Connected(OWN_PHONE), LoggedOut("device_removed")]


@pytest.mark.parametrize("reason, said", [("LOGGED_OUT", "device_removed"), ("MAIN_DEVICE_GONE", "main_device_gone"),
                                          ("UNKNOWN_LOGOUT", "unknown_logout")])
def test_connect_failure_401_403_406_means_logged_out(backend, recorder, reason, said):
    from neonize.proto import Neonize_pb2 as pb

    reason_code = pb.ConnectFailureReason.Value(reason)
    feed(backend.client, pb.ConnectFailure(Reason=reason_code, Message="", Raw=pb.Node(Tag="failure")))
    assert recorder.events == [LoggedOut(said)]


def test_other_connect_failures_and_keepalives(on_go, recorder):
    from neonize.proto import Neonize_pb2 as pb

    go = GoStandIn(phone=OWN_PHONE)
    on_go(go)
    unavailable = pb.ConnectFailure(
        Reason=pb.SERVICE_UNAVAILABLE, Message="try later", Raw=pb.Node(Tag="failure")
    )
    go.deliver(unavailable)
    go.deliver(pb.KeepAliveTimeout(ErrorCount=2, LastSuccess=1_700_000_000))
    go.deliver(pb.KeepAliveRestored())
    assert recorder.events[1:] == [
        ConnectFailure("service_unavailable", "try later"),
        KeepaliveTimeout(),
        KeepaliveRestored(),
    ]


@pytest.mark.parametrize("reason, code", [("SEND_TO_TOO_MANY_PEOPLE", 101), ("BLOCKED_BY_USERS", 102),
                                          ("CREATED_TOO_MANY_GROUPS", 103), ("SENT_TOO_MANY_SAME_MESSAGE", 104),
                                          ("BROADCAST_LIST", 106)])
def test_a_temporary_ban_carries_whatsapps_own_code(backend, recorder, reason, code):
    """neonize renumbers whatsmeow's TempBanReason 1-5; the contract keeps WhatsApp's codes."""
    from neonize.proto import Neonize_pb2 as pb

    feed(backend.client, pb.TemporaryBan(Code=pb.TemporaryBan.TempBanReason.Value(reason), Expire=3600))
    assert recorder.events == [TemporaryBan(code, 3600)]


def test_receipts_by_type(backend, recorder):
    # SERVER_ERROR is what neonize 0.5.2 sends for whatsmeow's played-self; READ_SELF is the own phone.
    for kind in ("DELIVERED", "READ", "READ_SELF", "PLAYED", "PLAYED_SELF", "SERVER_ERROR", "RETRY", "SENDER"):
        feed(backend.client, receipt(kind))
    ids, at = ("3EB0AAA", "3EB0BBB"), 1_700_000_000.0
    assert recorder.events == [Receipt(ids, "delivered", at), Receipt(ids, "read", at), Receipt(ids, "played", at)]


def test_qr_timeout_when_the_codes_stop_coming(backend, recorder):
    from neonize.events import event as neonize_stop_event

    backend.QR_FIRST_SECONDS, backend.QR_NEXT_SECONDS, backend.QR_GRACE_SECONDS = 0.6, 0.3, 0.1
    feed_qr(backend.client, "2@first")
    time.sleep(0.4)  # before the first code's life ends: the next code keeps the link alive
    feed_qr(backend.client, "2@second")
    time.sleep(0.2)
    assert recorder.kinds() == ["qr", "qr"]
    recorder.wait_for("qr_timeout")
    time.sleep(0.5)
    assert recorder.kinds() == ["qr", "qr", "qr_timeout"]
    # The client is told to stop (connect() polls this event), and nothing connects again.
    assert neonize_stop_event.is_set()
    backend.run()
    feed_qr(backend.client, "2@late")
    assert recorder.kinds() == ["qr", "qr", "qr_timeout"]


def test_pairing_code_before_the_first_qr_and_with_no_client_in_go(backend, recorder):
    with pytest.raises(BackendError) as early:
        backend.pairing_code(PHONE)
    assert early.value.code == "not_waiting_for_link"
    feed_qr(backend.client, "2@code")
    # The real Go library, never connected, has no client to pair: an error comes back, the process survives.
    with pytest.raises(BackendError) as failed:
        backend.pairing_code("+51 987 654 321")
    assert failed.value.code == "pairing_failed"


def test_an_exception_in_a_handler_becomes_an_error_event(tmp_path, monkeypatch, settings):
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
    settings.SESSIONS_DIR = tmp_path / "sessions"
    received = Recorder()

    def emit(event):
        if event.name == "connected":
            raise BrokenPipeError("supervisor went away")
        received(event)

    b = NeonizeBackend("tienda_lima", tmp_path, emit)
    b.create_client()
    connect_offline(b)
    assert received.events == [
        Error("Connected handler failed: BrokenPipeError: supervisor went away")
    ]


def test_exceptions_inside_neonize_callbacks_become_error_events(backend, recorder):
    from neonize.events import EVENT_TO_INT, ReceiptEv

    feed(backend.client, b"\xff\xff\xff", code=99)  # an event code neonize does not know
    feed(backend.client, b"\x0a\xff\xff", code=EVENT_TO_INT[ReceiptEv])  # a truncated Receipt
    assert [e.name for e in recorder.events] == ["error", "error"]
    assert "UnsupportedEvent" in recorder.events[0].message
    assert "DecodeError" in recorder.events[1].message


REAL_CONNECT = """
import json, sys
import django
django.setup()
from pathlib import Path
from sessions_app.backends.base import BackendError
from sessions_app.backends.neonize_backend import NeonizeBackend
backend = NeonizeBackend("tienda_lima", Path(sys.argv[1]), lambda event: None)
try:
    backend.run()
    print(json.dumps({"code": None}))
except BackendError as exc:
    print(json.dumps({"code": exc.code, "message": exc.message, "store": backend.store_location}))
"""


def test_the_real_client_dials_whatsapp_through_the_proxy_and_fails_fast_when_refused(tmp_path):
    """The Go client reads HTTPS_PROXY from the environment its process started with: a fresh process
    dials web.whatsapp.com:443 through the proxy, which refuses, and run() fails at once."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "whatsapp_service.settings", "ENV_FILE": os.devnull,
           "SESSIONS_DIR": str(tmp_path / "sessions"), "CREDENTIALS_STORE": "files"}
    with WhatsAppProxy() as proxy:
        env["HTTPS_PROXY"] = proxy.url
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-c", REAL_CONNECT, str(tmp_path)], cwd=settings.BASE_DIR, env=env,
                             capture_output=True, text=True, timeout=120)
        elapsed = time.monotonic() - started
        assert out.returncode == 0, out.stderr
        assert proxy.targets == ["web.whatsapp.com:443"]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["code"] == "connect_failed"
    assert "web.whatsapp.com" in result["message"] and "unexpected EOF" in result["message"], result
    assert elapsed < 60  # generous: only shows that it does not hang
    # The store is the session's own file in its folder (credentials in files, as in these tests).
    assert result["store"] == str(tmp_path / "sessions" / "tienda_lima" / "whatsmeow.sqlite3")
    assert Path(result["store"]).exists()


def test_the_supervisor_side_import_stays_light():
    """Reading NeonizeBackend.PRELOAD_MODULES must not import neonize; the preloaded runtime imports
    neonize's Python side without its Go library and leaves the root logger alone."""
    code = """
import json, logging, sys
from sessions_app.backends import backend_class
cls = backend_class("neonize")
light = "neonize" not in sys.modules
root_before = (logging.getLogger().level, len(logging.getLogger().handlers))
for name in cls.PRELOAD_MODULES:
    __import__(name)
maps = open("/proc/self/maps").read()
print(json.dumps({"light": light, "python_side": "neonize.client" in sys.modules,
    "go_loaded": "neonize-linux" in maps,
    "root_same": root_before == (logging.getLogger().level, len(logging.getLogger().handlers))}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60, check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "light": True, "python_side": True, "go_loaded": False, "root_same": True,
    }


# ----- through the real worker ---------------------------------------------------------------------

START_LINE = re.compile(
    r"^(\S+ \S+) INFO sessions_app\.worker\.supervisor session tienda_lima: process (\d+) started \(epoch \d+\)$"
)


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def started_processes(log_text: str) -> list[tuple[float, int]]:
    """(time, pid) of every tienda_lima session process the worker started, from its log."""
    starts = []
    for line in log_text.splitlines():
        match = START_LINE.match(line)
        if match:
            when = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            starts.append((when, int(match.group(2))))
    return starts


@pytest.mark.slow
def test_a_failing_connect_retries_on_the_backoff_schedule_without_leaking_handles(
    service_files, transactional_db, tmp_path
):
    """WhatsApp is unreachable through the test's proxy, so every real connect fails: the session shows `disconnected` with
    the error, a new process is tried on the backoff schedule, and the worker's open files stay flat."""
    from sessions_app.config_file import load_and_mirror
    from sessions_app.models import SessionStatus, WhatsAppSession
    from tests.processes import ServiceProcess, service_env

    # One session, so that between its attempts the worker holds no session process at all.
    settings.SESSIONS_CONFIG.write_text(json.dumps([{"sessionId": "tienda_lima", "description": "Lima"}]))
    load_and_mirror()

    base, cap, attempts = 0.3, 1.2, 6
    proxy = WhatsAppProxy()  # refuses every connection: the real client's connect fails at once
    env = service_env(
        WHATSAPP_BACKEND="neonize",
        HTTPS_PROXY=proxy.url,
        SESSION_RESTART_BACKOFF_SECONDS=str(base),
        SESSION_RESTART_BACKOFF_MAX_SECONDS=str(cap),
        SESSION_POLL_SECONDS="0.05",
    )
    samples: list[tuple[float, int]] = []  # (time, open files of the worker)
    statuses: set[tuple[str, str]] = set()
    with ServiceProcess("runworker", env=env, log_path=tmp_path / "runworker.log") as worker:
        sampling = threading.Event()

        def sample_fds() -> None:  # often enough to see the worker between two session processes
            while not sampling.wait(0.005):
                fds = open_fds(worker.proc.pid)
                if fds is not None:
                    samples.append((time.time(), fds))

        sampler = threading.Thread(target=sample_fds, daemon=True)
        sampler.start()
        deadline = time.monotonic() + 60
        starts: list[tuple[float, int]] = []
        while len(starts) < attempts + 1 and time.monotonic() < deadline:
            assert worker.proc.poll() is None, worker.output()
            starts = started_processes(worker.output())
            statuses.add(WhatsAppSession.objects.values_list("status", "last_error").get(pk="tienda_lima"))
            time.sleep(0.02)
        sampling.set()
        sampler.join()
        output = worker.output()
    proxy.close()
    assert len(starts) >= attempts + 1, output
    assert proxy.targets.count("web.whatsapp.com:443") >= attempts, proxy.targets  # each attempt dialed out

    failures = {error for status, error in statuses if status == SessionStatus.DISCONNECTED}
    assert any("connect_failure" in e and "web.whatsapp.com" in e for e in failures), statuses
    assert len({pid for _, pid in starts}) == len(starts)  # a fresh process for every attempt

    # Attempt n waits base * 2^(n-1), capped, with equal jitter: between half and all of it. The upper
    # bound is generous: it only has to show that the worker does not give up or stall.
    gaps = [later - earlier for (earlier, _), (later, _) in zip(starts, starts[1:])]
    for n, gap in enumerate(gaps[:attempts], start=1):
        delay = min(cap, base * 2 ** (n - 1))
        assert delay / 2 - 0.05 <= gap <= delay + 5.0, (n, gaps)

    # Between two attempts no session process is left, so the fewest open files the worker has in a
    # stretch of gaps is its baseline (a database connection comes and goes with each query). The
    # first start also creates the forkserver: compare the gaps after starts 2-3 with those after 5-6.
    def fewest(first: int, last: int) -> int:
        begin, end = starts[first - 1][0], starts[last][0]
        return min(fds for when, fds in samples if begin <= when < end)

    early, late = fewest(2, 3), fewest(attempts - 1, attempts)
    assert late <= early, (early, late)


def test_session_processes_share_neonize_when_the_worker_runs_from_another_directory(tmp_path):
    """The forkserver preloads neonize's Python side (what makes 50 sessions fit in 1 GiB) even when
    the worker was started as `python /path/to/manage.py runworker` from elsewhere."""
    code = f"""
import json, sys
sys.path.insert(0, {str(settings.BASE_DIR)!r})  # what running /path/to/manage.py gives: not PYTHONPATH
import django
django.setup()
from multiprocessing import forkserver
from sessions_app.session_process import spawn
process, conn = spawn("tienda_lima", backend="neonize")
event = conn.recv()
while event.name == "heartbeat":
    event = conn.recv()
process.join(20)
maps = open(f"/proc/{{forkserver._forkserver._forkserver_pid}}/maps").read()
print(json.dumps({{"event": event.name, "preloaded": "_upb/_message" in maps}}))
"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "whatsapp_service.settings", "ENV_FILE": os.devnull,
           "SESSIONS_DIR": str(tmp_path / "sessions"), "WHATSAPP_BACKEND": "neonize"}
    env.pop("PYTHONPATH", None)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"event": "connect_failure", "preloaded": True}




# ----- commands, through neonize's real Python code to the Go stand-in ------------------------------

CAPTION = "Boleta B001-77. Dudas: @51987654321 o en el grupo @120363000000000000@g.us"


def test_send_document_uploads_the_pdf_and_sends_a_document_message_of_its_own(on_go):
    go = GoStandIn(phone=OWN_PHONE)
    backend = on_go(go)
    pdf = make_pdf(5000)
    result = backend.send_document(PHONE, pdf, "F001-77.pdf", "application/pdf", CAPTION)
    ack = go.acks[-1]
    assert result == {"wa_message_id": ack.ID, "timestamp": float(ack.Timestamp)}
    ((media_type, uploaded, _),) = go.uploads.values()
    assert (media_type, uploaded) == (3, pdf)  # neonize's MediaDocument: the PDF's own bytes
    ((to, message),) = go.sent
    assert (to.User, to.Server) == (PHONE, "s.whatsapp.net")
    document = message.documentMessage
    assert (document.mimetype, document.fileName, document.caption) == ("application/pdf", "F001-77.pdf", CAPTION)
    assert document.fileSHA256 == hashlib.sha256(pdf).digest() and document.fileLength == len(pdf)
    assert not document.HasField("contextInfo")  # no mention made up from "@51987654321"
    # Nothing but the lookup, the upload and the send reached Go: no group lookup for "...@g.us".
    assert go.calls[go.calls.index("IsOnWhatsApp"):] == ["IsOnWhatsApp", "Upload", "SendMessage"]
    assert go.received_documents()[0]["data"] == pdf  # what the recipient's phone decrypts

    backend.send_document(PHONE, pdf, "F001-78.pdf", "application/pdf", "")
    assert go.calls[-2:] == ["Upload", "SendMessage"]  # the JID WhatsApp answered is remembered
    assert not go.sent[-1][1].documentMessage.HasField("caption")


def test_send_image_uploads_as_an_image_and_sends_an_image_message_of_its_own(on_go):
    go = GoStandIn(phone=OWN_PHONE)
    backend = on_go(go)
    png = make_image("PNG")
    result = backend.send_image(PHONE, png, "image/png", CAPTION)
    assert result == {"wa_message_id": go.acks[-1].ID, "timestamp": float(go.acks[-1].Timestamp)}
    ((media_type, uploaded, _),) = go.uploads.values()
    assert (media_type, uploaded) == (0, png)  # neonize's MediaImage: the image's own bytes
    ((to, message),) = go.sent
    assert (to.User, [field.name for field, _ in message.ListFields()]) == (PHONE, ["imageMessage"])
    image = message.imageMessage
    assert (image.mimetype, image.caption) == ("image/png", CAPTION)
    assert image.fileSHA256 == hashlib.sha256(png).digest() and image.fileLength == len(png)
    assert not image.HasField("contextInfo")  # no mention made up from "@51987654321"
    assert go.calls[go.calls.index("IsOnWhatsApp"):] == ["IsOnWhatsApp", "Upload", "SendMessage"]
    assert go.received_media()[0]["data"] == png  # what the recipient's phone decrypts, with image keys


def test_send_text_goes_as_written_to_the_jid_whatsapp_answered_for(on_go):
    go = GoStandIn(phone=OWN_PHONE, jids={"525512345678": "5215512345678"})  # Mexico's extra 1
    backend = on_go(go)
    text = "Su boleta B001-77 (S/ 120.50) ya está lista. Consultas: @51987654321 o ventas@tienda.pe"
    result = backend.send_text("+52 55 1234 5678", text)
    assert result == {"wa_message_id": go.acks[-1].ID, "timestamp": float(go.acks[-1].Timestamp)}
    ((to, message),) = go.sent
    assert (to.User, to.Server) == ("5215512345678", "s.whatsapp.net")
    assert message.conversation == text and not message.HasField("extendedTextMessage")  # no mentions made up


def test_failed_uploads_sends_and_lookups_have_their_codes(on_go):
    go = GoStandIn(phone=OWN_PHONE)
    backend = on_go(go)
    go.fail["Upload"] = "upload failed with status code 500"
    with pytest.raises(BackendError) as refused:
        backend.send_document(PHONE, make_pdf(), "a.pdf", "application/pdf", "")
    assert refused.value.code == "send_failed" and "500" in refused.value.message
    assert "SendMessage" not in go.calls
    go.fail = {"SendMessage": "server returned error 479"}
    with pytest.raises(BackendError) as refused:
        backend.send_text(PHONE, "hola")
    assert refused.value.code == "send_failed" and "479" in refused.value.message
    go.fail = {"IsOnWhatsApp": "info query timed out"}
    with pytest.raises(BackendError) as refused:
        backend.check_numbers(["51999888777"])
    assert refused.value.code == "check_failed" and "timed out" in refused.value.message


def test_numbers_are_looked_up_once_each_with_their_plus(on_go):
    go = GoStandIn(phone=OWN_PHONE, unregistered=["51900000000"])
    backend = on_go(go)
    answer = backend.check_numbers(["51987654321", "+51 900 000 000", "51987654321"])
    assert answer == {"51987654321": True, "+51 900 000 000": False}
    assert go.lookups == [["+51987654321", "+51900000000"]]


def test_logout_tells_whatsapp_and_the_device_is_forgotten(on_go, recorder):
    go = GoStandIn(phone=OWN_PHONE)
    backend = on_go(go)
    go.fail["Logout"] = "server returned error 500"
    with pytest.raises(BackendError) as refused:
        backend.logout()
    assert refused.value.code == "logout_failed" and go.device == OWN_PHONE
    del go.fail["Logout"]
    backend.logout()
    assert go.calls.count("Logout") == 2 and go.device is None
    assert recorder.events[1:] == [LoggedOut("logout")]


def test_a_pairing_code_is_the_one_whatsmeow_gave(on_go, recorder):
    go = GoStandIn()
    backend = on_go(go)
    recorder.wait_for("qr")
    code = backend.pairing_code("+51 911 111 111")
    assert go.codes == [code]
    (params,) = go.pairings
    assert (params.phone, params.showPushNotification) == (OWN_PHONE, True)


def test_without_the_stored_device_the_phone_comes_from_go_once_connected(on_go, recorder):
    go = GoStandIn(phone=OWN_PHONE, announce_device=False)
    on_go(go)
    assert recorder.events == [Connected(OWN_PHONE)]
    assert go.calls.index("IsConnected") < go.calls.index("GetMe")


def test_go_is_not_asked_for_the_phone_of_a_client_that_is_not_connected(on_go, recorder):
    """GetMe on a client that is not connected aborts the process: the stand-in fails the test if so."""
    from neonize.proto import Neonize_pb2 as pb

    go = GoStandIn()
    on_go(go)
    go.socket = False  # the connection dropped again before the event was handled
    go.deliver(pb.Connected(status=True))
    assert recorder.events[-1] == Connected(None)
    assert "GetMe" not in go.calls
