"""Phone numbers as the API takes them: digits with the country code; '+', spaces, dashes, brackets and
dots tolerated. One rule for every field that holds a number ('to', 'phone')."""

import re

import phonenumbers

_TOLERATED = re.compile(r"[\s+\-().]")


def phone_digits(value: object) -> str | None:
    """The number's digits (e.g. "51987654321"), or None when it is not a valid number."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    digits = _TOLERATED.sub("", value)
    if not digits.isascii() or not digits.isdigit() or not 8 <= len(digits) <= 15:
        return None
    try:
        return digits if phonenumbers.is_valid_number(phonenumbers.parse("+" + digits)) else None
    except phonenumbers.NumberParseException:
        return None
