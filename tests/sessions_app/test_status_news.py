"""The last error as the person linking a number reads it: the real client's failures (as measured from
neonize 0.5.2 offline and through the suite's refusing proxy), the worker's own, and never a password."""

import pytest

from sessions_app.status_news import readable_error

DIAL = 'failed to dial whatsapp web websocket: failed to WebSocket dial: failed to send handshake request: '


@pytest.mark.parametrize(
    "last_error, sentence, detail",
    [
        (f'connect_failure: connect_failed: {DIAL}Get "https://web.whatsapp.com/ws/chat": dial tcp: lookup '
         'web.whatsapp.com on 10.255.255.53:53: no such host',
         "No se encontró el servidor de WhatsApp: este equipo no puede resolver nombres de internet (sin DNS o sin "
         "conexión).", 'lookup web.whatsapp.com on 10.255.255.53:53: no such host'),
        (f'connect_failure: connect_failed: {DIAL}Get "https://web.whatsapp.com/ws/chat": unexpected EOF',
         "La conexión con WhatsApp se cortó antes de establecerse (¿un proxy o un cortafuegos la bloquea?).",
         'Get "https://web.whatsapp.com/ws/chat": unexpected EOF'),
        ('connect_failure: connect_failed: dial tcp 157.240.0.53:443: i/o timeout',
         "WhatsApp no respondió a tiempo: la red es lenta o está bloqueada.", "dial tcp 157.240.0.53:443: i/o timeout"),
        ("process_exited: killed by SIGKILL", "El proceso de la sesión terminó inesperadamente.", "killed by SIGKILL"),
        ("no_heartbeat: the session process stopped answering",
         "El proceso de la sesión dejó de responder y fue reemplazado.", "the session process stopped answering"),
        ("connect_failure: service_unavailable: try later", "No se pudo conectar con WhatsApp.", "try later"),
    ],
)
def test_a_failure_reads_as_a_sentence_then_its_technical_detail(last_error, sentence, detail):
    text = readable_error(last_error)
    assert text.startswith(sentence + " Detalle técnico: ")
    assert text.endswith(detail)
    assert "connect_failure:" not in text and "connect_failed:" not in text  # machine codes are not for people


def test_a_go_package_prefix_is_part_of_the_detail():
    text = readable_error('start_failed: pq: password authentication failed for user "wa"')
    assert text == ('No se pudo iniciar el proceso de la sesión. Detalle técnico: pq: password authentication '
                    'failed for user "wa"')


def test_a_bare_code_is_a_sentence_alone():
    assert readable_error("qr_timeout") == "El código QR expiró sin ser escaneado."


def test_passwords_are_never_in_it():
    text = readable_error("start_failed: could not open postgres://wa:Sup3r%40Secreta@db:5432/whatsapp, "
                          "socks5://ana:clave1@proxy.local:1080 and host=db password=Sup3rSecreta")
    assert "Sup3r" not in text and "clave1" not in text
    assert "postgres://wa:***@db:5432/whatsapp" in text and "socks5://ana:***@proxy.local:1080" in text
    assert text.startswith("No se pudo iniciar el proceso de la sesión.")


def test_a_long_error_keeps_its_end_where_the_cause_is():
    text = readable_error("process_exited: " + "wrapped: " * 100 + "the real cause")
    assert text.endswith("the real cause") and len(text) < 400 and "…" in text
