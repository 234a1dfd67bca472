"""A session's journal of what WhatsApp acknowledged: it answers "was this sent?" after a crash, and its
memory and file stay bounded however long the session runs."""

from multiprocessing import Pipe

from django.test import override_settings

from sessions_app.sent_journal import SentJournal
from sessions_app.session_process import _Child


def test_what_was_recorded_is_found_again_after_a_crash(tmp_path):
    path = tmp_path / "sent-journal.jsonl"
    SentJournal(path).record("m-1", "3EB0AA", 1700000000.0)
    with open(path, "a") as f:
        f.write('{"ref": "m-2", "wa_mess')  # a crash mid-write leaves a torn last line

    again = SentJournal(path)
    assert again.lookup(["m-1", "m-2", "m-3"]) == {"m-1": {"wa_message_id": "3EB0AA", "timestamp": 1700000000.0}}


def test_a_long_running_session_remembers_a_bounded_number_of_sends(tmp_path):
    path = tmp_path / "sent-journal.jsonl"
    journal = SentJournal(path, keep=100)
    for n in range(1000):
        journal.record(f"m-{n}", f"WA{n}", None)
        assert len(journal.entries) <= 200
    assert len(path.read_text().splitlines()) <= 200
    # The newest are kept, in memory and on disk.
    assert journal.lookup(["m-999", "m-900"]).keys() == {"m-999", "m-900"}
    assert SentJournal(path, keep=100).lookup(["m-999", "m-900", "m-0"]).keys() == {"m-999", "m-900"}


@override_settings(SENT_JOURNAL_KEEP=7)
def test_the_session_process_keeps_as_many_as_configured(tmp_path):
    ours, theirs = Pipe()
    child = _Child("tienda_lima", theirs, 1.0, tmp_path, float("inf"))
    assert child.journal.keep == 7
