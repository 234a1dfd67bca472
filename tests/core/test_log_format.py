"""What the log redaction hides and what it must leave readable."""

from core.log_format import redact


def test_phone_numbers_are_hidden_but_message_ids_stay_whole():
    message_id = "12345678-9abc-4def-8123-456789abcdef"  # a uuid4 whose first group is all digits
    line = redact(f"session tienda_lima: message {message_id} to 51987654321 sent")
    assert message_id in line
    assert "51987654321" not in line and "***321" in line


def test_a_spaced_phone_number_is_hidden_too():
    assert redact("to +51 987-654-321 sent") == "to ***321 sent"
