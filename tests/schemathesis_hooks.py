"""Schemathesis hooks for this API's schema (SCHEMATHESIS_HOOKS=tests.schemathesis_hooks): the values of
the `phone` format, which no pattern can say (a number libphonenumber knows as valid, digits with country
code, '+', spaces and dashes tolerated)."""

import phonenumbers
import schemathesis
from hypothesis import strategies as st

from core.phones import phone_digits

VALID_NUMBERS = sorted({
    digits
    for region in phonenumbers.SUPPORTED_REGIONS
    for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE)
    if (number := phonenumbers.example_number_for_type(region, kind)) is not None
    and phone_digits(digits := f"{number.country_code}{number.national_number}") == digits
})


def _written(digits: str, plus: bool, separator: str) -> str:
    if separator:
        digits = separator.join(digits[i:i + 3] for i in range(0, len(digits), 3))
    return ("+" if plus else "") + digits


schemathesis.openapi.format(
    "phone",
    st.builds(_written, st.sampled_from(VALID_NUMBERS), st.booleans(), st.sampled_from(["", "", " ", "-"])),
)
