"""Does a webhook receiver that is down slow down sending? Sending throughput through the real service
(`manage.py serve`, embedded worker, simulator backend, pacing off) with status webhooks:
- off (no WEBHOOK_URLS),
- to a receiver that answers 200 at once,
- to a receiver that is down (connection refused) for the whole run,
- to a receiver that accepts connections and never answers (every attempt waits WEBHOOK_TIMEOUT_SECONDS).
Retries are made aggressive (base 0.5 s, window 20 s) so the down receivers are retried during the run.
Prints JSON: messages per second for each, and what became of the webhook events.

    .venv/bin/python bench/webhooks_throughput.py [--database sqlite|postgres] [--quick]
"""

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dispatch import ROOT, Service, free_port, throughput  # noqa: E402

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()  # a Standard Webhooks secret
RETRIES = {"WEBHOOK_SECRET": SECRET, "WEBHOOK_RETRY_BASE_SECONDS": "0.5", "WEBHOOK_RETRY_WINDOW_SECONDS": "20",
           "WEBHOOK_TIMEOUT_SECONDS": "5", "WEBHOOK_POLL_SECONDS": "1"}


class Ok(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def outcomes(env: dict) -> dict:
    code = ("import json\nfrom django.db.models import Count\nfrom webhooks.models import WebhookDelivery as W\n"
            "print(json.dumps(dict(W.objects.values_list('status').annotate(n=Count('id')))))\n")
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run(tmp: Path, database: str, name: str, sessions: int, per_session: int, pdf: str, **env) -> dict:
    result = throughput(tmp, database, name, sessions, per_session, pdf, **env)
    if env.get("WEBHOOK_URLS"):
        probe = Service(tmp / name, database, [], **env)
        result["webhook_deliveries_after_run"] = outcomes(probe.env)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--quick", action="store_true", help="fewer messages")
    args = parser.parse_args()
    pdf = base64.b64encode(b"%PDF-1.4\n" + os.urandom(20_000)).decode()
    sessions, per_session = 10, (20 if args.quick else 60)
    result = {"database": args.database, "sessions": sessions, "messages": sessions * per_session}

    ok = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=ok.serve_forever, daemon=True).start()
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(1024)  # connections complete in the kernel; nobody ever answers
    urls = {
        "receiver_ok": f"http://127.0.0.1:{ok.server_address[1]}/hook",
        "receiver_down": f"http://127.0.0.1:{free_port()}/hook",
        "receiver_hanging": f"http://127.0.0.1:{hanging.getsockname()[1]}/hook",
    }
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        result["webhooks_off"] = run(tmp, args.database, "off", sessions, per_session, pdf)
        for name, url in urls.items():
            result[name] = run(tmp, args.database, name, sessions, per_session, pdf, WEBHOOK_URLS=url, **RETRIES)
    base = result["webhooks_off"]["messages_per_s"]
    for name in urls:
        result[name]["of_webhooks_off"] = round(result[name]["messages_per_s"] / base, 2)
    ok.shutdown()
    hanging.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
