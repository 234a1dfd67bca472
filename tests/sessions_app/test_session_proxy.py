"""A proxy per session (`proxy` in sessions.config.json, WHATSAPP_PROXY for the rest): validated at start,
applied by the neonize backend through the environment its process starts with, never shown."""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

from sessions_app import proxies
from sessions_app.config_file import ConfigError, SessionEntry, add_session_to_config, parse_config, read_config
from sessions_app.models import SessionStatus, WhatsAppSession
from sessions_app.startup import StartupError, prepare_service
from tests.conftest import AsgiClient
from tests.processes import ROOT, ServiceProcess, free_port, service_env, wait_for
from tests.whatsapp_proxy import Socks5Proxy, WhatsAppProxy, report_proxy_environment

PASSWORD = "Cl4ve-del-proxy"  # never in a log line, an error or an answer


def with_password(url: str, user: str) -> str:
    return url.replace("://", f"://{user}:{PASSWORD}@", 1)


@pytest.mark.parametrize("proxy", [
    f"socks5://tienda:{PASSWORD}@10.0.0.7:1080", "socks5://10.0.0.7:1080", "http://proxy.example:3128",
    f"https://user:{PASSWORD}@proxy.example:8443/", "http://[2001:db8::1]:8080",
])
def test_a_proxy_of_each_scheme_is_accepted_and_survives_a_rewrite_of_the_file(tmp_path, proxy):
    path = tmp_path / "sessions.config.json"
    path.write_text(json.dumps([{"sessionId": "tienda_lima", "proxy": proxy}]))
    assert read_config(path)[0].proxy == proxy
    # Adding a session rewrites the whole file atomically: the other entry keeps its proxy.
    assert add_session_to_config(SessionEntry("soporte_tecnico", "Soporte"), path)
    assert [(e.session_id, e.proxy) for e in read_config(path)] == [("tienda_lima", proxy), ("soporte_tecnico", "")]
    assert PASSWORD not in repr(read_config(path))  # an entry logged by accident does not show it


BAD_PROXIES = [
    f"ftp://u:{PASSWORD}@proxy.example:21",  # scheme
    f"socks4://u:{PASSWORD}@proxy.example:1080",
    f"socks5://u:{PASSWORD}@proxy.example",  # no port
    f"http://u:{PASSWORD}@proxy.example:99999",  # port out of range
    f"http://u:{PASSWORD}@proxy.example:80a",
    f"http://u:{PASSWORD}@:8080",  # no host
    f"proxy.example:{PASSWORD}",  # garbage
    f"http://u:{PASSWORD}@proxy.example:8080/path",
    f"http://u:{PASSWORD}@proxy.example:8080?x=1",
    f"http://u:{PASSWORD} @proxy.example:8080",
    42, ["http://proxy.example:8080"],
]


@pytest.mark.parametrize("bad", BAD_PROXIES, ids=range(len(BAD_PROXIES)))
def test_a_bad_proxy_is_named_with_its_entry_and_never_repeated(bad):
    text = json.dumps([{"sessionId": "tienda_lima"}, {"sessionId": "soporte_tecnico", "proxy": bad}])
    with pytest.raises(ConfigError) as raised:
        parse_config(text)
    assert str(raised.value) == ('sessions.config.json: entry 1 (soporte_tecnico): "proxy" must be socks5://, '
                                 'http:// or https:// with a host and port')


def test_a_bad_whatsapp_proxy_stops_the_start(service_files, transactional_db, settings):
    settings.WHATSAPP_PROXY = f"socks5://u:{PASSWORD}@proxy.example"
    with pytest.raises(StartupError) as raised:
        prepare_service()
    assert "WHATSAPP_PROXY must be socks5://, http:// or https:// with a host and port" in str(raised.value)
    assert PASSWORD not in str(raised.value)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["config", "environment"])
def test_a_worker_with_a_bad_proxy_does_not_start_and_says_which(service_files, transactional_db, where):
    bad = f"socks5://u:{PASSWORD}@proxy.example:0"
    env = service_env()
    if where == "config":
        settings.SESSIONS_CONFIG.write_text(json.dumps([{"sessionId": "tienda_lima"},
                                                        {"sessionId": "tienda_cusco", "proxy": bad}]))
        said = 'entry 1 (tienda_cusco): "proxy" must be socks5://, http:// or https:// with a host and port'
    else:
        env["WHATSAPP_PROXY"] = bad
        said = "WHATSAPP_PROXY must be socks5://, http:// or https:// with a host and port"
    result = subprocess.run([sys.executable, "manage.py", "runworker"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert said in result.stderr
    assert PASSWORD not in result.stderr + result.stdout


def test_a_proxied_process_starts_with_its_proxy_and_the_worker_environment_stays_as_it_was():
    """Processes of one proxy come from one forkserver started with that proxy; processes without one from
    multiprocessing's own, with the worker's environment; the worker's os.environ never changes."""
    before = dict(os.environ)
    proxy_a, proxy_b = f"socks5://127.0.0.1:{free_port()}", f"http://u:{PASSWORD}@127.0.0.1:{free_port()}"

    def child_of(proxy: str) -> dict:
        ctx = proxies.process_context(proxy)
        ctx.set_forkserver_preload(["sessions_app.proxies"])
        ours, theirs = ctx.Pipe()
        process = ctx.Process(target=report_proxy_environment, args=(theirs,), daemon=True)
        process.start()
        theirs.close()
        report = ours.recv()
        process.join(10)
        assert process.exitcode == 0
        return report

    first, second, other, unproxied = child_of(proxy_a), child_of(proxy_a), child_of(proxy_b), child_of("")
    assert (first["HTTPS_PROXY"], first["HTTP_PROXY"]) == (proxy_a, proxy_a)
    assert second["forkserver"] == first["forkserver"]  # sessions sharing a proxy share its forkserver
    assert (other["HTTPS_PROXY"], other["HTTP_PROXY"]) == (proxy_b, proxy_b)
    assert len({first["forkserver"], other["forkserver"], unproxied["forkserver"]}) == 3
    assert unproxied["HTTPS_PROXY"] == before["HTTPS_PROXY"]  # the suite's refusing proxy
    assert dict(os.environ) == before
    assert PASSWORD not in json.dumps(proxies.forkserver_pids())  # shown redacted


def redacted_answers(auth) -> str:
    from whatsapp_service.asgi import application

    client = AsgiClient(application)
    answers = [client.get("/api/sessions", headers=auth)]
    answers += [client.get(f"/api/sessions/{sid}", headers=auth) for sid in ("tienda_lima", "soporte_tecnico")]
    assert all(a.status_code == 200 for a in answers)
    return "\n".join(a.text for a in answers)


def run_until_both_failed(tmp_path, env: dict) -> tuple[dict, str]:
    """A real `manage.py runworker` with the neonize backend, until each session has failed to connect."""
    with ServiceProcess("runworker", env=env, log_path=tmp_path / "runworker.log") as worker:
        def failed() -> dict | None:
            assert worker.proc.poll() is None, worker.output()
            rows = dict(WhatsAppSession.objects.filter(status=SessionStatus.DISCONNECTED)
                        .exclude(last_error="").values_list("session_id", "last_error"))
            return rows if len(rows) == 2 else None

        errors = wait_for(failed, timeout=90, what="both sessions failing to connect")
        output = worker.output()
    return errors, output


@pytest.mark.slow
def test_a_session_with_a_proxy_dials_whatsapp_through_it_and_the_other_does_not(
    service_files, transactional_db, tmp_path, auth
):
    from sessions_app.config_file import load_and_mirror

    with Socks5Proxy() as socks, WhatsAppProxy() as default:
        own = with_password(socks.url, "tienda")
        settings.SESSIONS_CONFIG.write_text(json.dumps([{"sessionId": "tienda_lima", "proxy": own},
                                                        {"sessionId": "soporte_tecnico"}]))
        load_and_mirror()
        env = service_env(WHATSAPP_BACKEND="neonize", HTTPS_PROXY=default.url, LOG_LEVEL="DEBUG",
                          WHATSMEOW_LOG_LEVEL="DEBUG", SESSION_RESTART_BACKOFF_SECONDS="30")
        errors, output = run_until_both_failed(tmp_path, env)
        socks.wait_for("web.whatsapp.com:443")
        default.wait_for("web.whatsapp.com:443")
    assert set(socks.targets) == {"web.whatsapp.com:443"}
    # Every connection the session's proxy saw presented the session's user: none came from the other one.
    assert socks.users == ["tienda"] * len(socks.targets)
    assert f"socks connect tcp 127.0.0.1:{socks.port}->web.whatsapp.com:443" in errors["tienda_lima"]
    assert "socks" not in errors["soporte_tecnico"] and "unexpected EOF" in errors["soporte_tecnico"]
    assert "whatsmeow" in output  # the grep below looks at a log that shows what the client did
    assert PASSWORD not in output
    assert PASSWORD not in redacted_answers(auth)


@pytest.mark.slow
def test_whatsapp_proxy_serves_the_sessions_without_one_of_their_own(service_files, transactional_db, tmp_path, auth):
    from sessions_app.config_file import load_and_mirror

    with Socks5Proxy() as socks, WhatsAppProxy() as for_all, WhatsAppProxy() as default:
        settings.SESSIONS_CONFIG.write_text(json.dumps([
            {"sessionId": "tienda_lima", "proxy": with_password(socks.url, "tienda")},
            {"sessionId": "soporte_tecnico"},
        ]))
        load_and_mirror()
        env = service_env(WHATSAPP_BACKEND="neonize", HTTPS_PROXY=default.url, LOG_LEVEL="DEBUG",
                          WHATSAPP_PROXY=with_password(for_all.url, "todos"), SESSION_RESTART_BACKOFF_SECONDS="30")
        errors, output = run_until_both_failed(tmp_path, env)
        for_all.wait_for("web.whatsapp.com:443")
        socks.wait_for("web.whatsapp.com:443")
    assert default.targets == []  # no session went the worker's own way
    assert socks.users == ["tienda"] * len(socks.targets)  # its own proxy wins over WHATSAPP_PROXY
    assert f"socks connect tcp 127.0.0.1:{socks.port}->" in errors["tienda_lima"]
    assert "unexpected EOF" in errors["soporte_tecnico"]
    assert PASSWORD not in output
    assert PASSWORD not in redacted_answers(auth)


def test_a_session_whose_proxy_became_invalid_is_not_started_without_it(service_files, transactional_db):
    """The file is read again at each start: an entry edited to a bad proxy meanwhile stops that start
    (the supervisor then shows the error and retries) instead of connecting from the worker's own address."""
    from sessions_app.session_process import spawn

    settings.SESSIONS_CONFIG.write_text(json.dumps([{"sessionId": "tienda_lima", "proxy": f"http://u:{PASSWORD}@h"}]))
    with pytest.raises(ConfigError, match=r'entry 0 \(tienda_lima\): "proxy" must be') as raised:
        spawn("tienda_lima", backend="neonize")
    assert PASSWORD not in str(raised.value)
