"""Identifiers and identifying items, checked on entry (assessment measure M02).

Three numbers carry a modulus-11 check digit fixed by statute or public notice:

- My Number (個人番号), 12 digits: 11 digits and a check digit computed by the formula
  of 番号法施行令 art. 8 as set out in 総務省令第85号 (平成26年) art. 5.
- Resident code (住民票コード), 11 digits: 10 random digits and a check digit
  (住民基本台帳法施行規則 art. 1; formula in 平成14年総務省告示第436号).
- Local-government code (全国地方公共団体コード), 6 digits: 5 digits and a check digit.

Both personal numbers use weights 2, 3, 4, 5, 6, 7, 2, 3, … counted from the lowest
digit of the body and map a remainder of 0 or 1 to check digit 0. The local-government
code weighs its 5 digits 6, 5, 4, 3, 2 and keeps the last digit of 11 − remainder.
docs/identity.md gives the sources and the single-digit errors these rules cannot see.

Validators normalise what people type (full-width digits, spaces and hyphens between
groups) and return the canonical form, or raise :class:`InvalidIdentifier`, whose message
never repeats the value: a rejected number is still personal data.
"""

from __future__ import annotations

import random
import re
import unicodedata
from datetime import date, datetime
from enum import Enum

_SEPARATORS = re.compile(r"[\s\-]+")
_ASCII_DIGITS = re.compile(r"[0-9]+")
_CONTROL_CATEGORIES = frozenset({"Cc", "Cf"})
# Variation selectors (including IVS) are format characters that belong to a name.
_NAME_FORMAT_CHARACTERS_ALLOWED = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef\u200d]")

EARLIEST_BIRTH_DATE = date(1870, 1, 1)

MY_NUMBER_LENGTH = 12
RESIDENT_CODE_LENGTH = 11
LOCAL_GOVERNMENT_CODE_LENGTH = 6


class Reason(str, Enum):
    """Why an identifying item was refused."""

    EMPTY = "empty"
    FORMAT = "format"
    CHECK_DIGIT = "check_digit"
    OUT_OF_RANGE = "out_of_range"


class InvalidIdentifier(ValueError):
    """An identifying item (number, birth date, name) that fails its logical check."""

    def __init__(self, field: str, reason: Reason, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.reason = reason
        self.detail = detail


# --- check digits -------------------------------------------------------------------


# Qn of 総務省令第85号 art. 5 for n = 1 … 11 (n counted from the lowest digit): n + 1 up to 6, then n − 5.
_PERSONAL_NUMBER_WEIGHTS = tuple(n + 1 if n <= 6 else n - 5 for n in range(1, 12))


def _personal_number_check_digit(body: str) -> int:
    """Modulus 11, weights 2..7 repeating from the lowest digit; remainder <= 1 gives 0."""
    total = sum(
        (code - 48) * weight for code, weight in zip(reversed(body.encode("ascii")), _PERSONAL_NUMBER_WEIGHTS)
    )
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def my_number_check_digit(first11: str) -> int:
    """The check digit (検査用数字) of a My Number whose first 11 digits are given.

    総務省令第85号 art. 5: 11 − (Σ Pn × Qn mod 11), or 0 when the remainder is ≤ 1,
    where Pn is the n-th digit counted from the lowest and Qn = n + 1 for n ≤ 6,
    n − 5 for 7 ≤ n ≤ 11.
    """
    if len(first11) != MY_NUMBER_LENGTH - 1 or not _is_ascii_digits(first11):
        raise InvalidIdentifier("my_number", Reason.FORMAT, "the body must be 11 digits")
    return _personal_number_check_digit(first11)


def resident_code_check_digit(first10: str) -> int:
    """The check digit (検査数字) of a resident code whose first 10 digits are given.

    Same shape as the My Number rule over 10 digits: weights 2, 3, 4, 5, 6, 7, 2, 3, 4, 5
    from the lowest digit, 11 − remainder, 0 when the remainder is ≤ 1.
    """
    if len(first10) != RESIDENT_CODE_LENGTH - 1 or not _is_ascii_digits(first10):
        raise InvalidIdentifier("resident_code", Reason.FORMAT, "the body must be 10 digits")
    return _personal_number_check_digit(first10)


def local_government_code_check_digit(first5: str) -> int:
    """The check digit of a local-government code (全国地方公共団体コード) from its 5 digits.

    Weights 6, 5, 4, 3, 2 from the highest digit; the check digit is the last digit of
    11 − (sum mod 11), so a remainder of 0 gives 1 and a remainder of 1 gives 0.
    """
    if len(first5) != LOCAL_GOVERNMENT_CODE_LENGTH - 1 or not _is_ascii_digits(first5):
        raise InvalidIdentifier("local_government_code", Reason.FORMAT, "the body must be 5 digits")
    total = sum(int(char) * weight for char, weight in zip(first5, (6, 5, 4, 3, 2)))
    return (11 - total % 11) % 10


# --- validation ---------------------------------------------------------------------


def _is_ascii_digits(text: str) -> bool:
    return _ASCII_DIGITS.fullmatch(text) is not None


def _canonical_digits(value: object, field: str, length: int) -> str:
    if not isinstance(value, str):
        raise InvalidIdentifier(field, Reason.FORMAT, "must be given as text")
    digits = _SEPARATORS.sub("", unicodedata.normalize("NFKC", value))
    if not digits:
        raise InvalidIdentifier(field, Reason.EMPTY, "is empty")
    if not _is_ascii_digits(digits):
        raise InvalidIdentifier(field, Reason.FORMAT, "must contain digits only")
    if len(digits) != length:
        raise InvalidIdentifier(field, Reason.FORMAT, f"must be {length} digits")
    return digits


def validate_my_number(value: object, *, field: str = "my_number") -> str:
    """The canonical 12-digit My Number, or :class:`InvalidIdentifier`."""
    digits = _canonical_digits(value, field, MY_NUMBER_LENGTH)
    if _personal_number_check_digit(digits[:-1]) != int(digits[-1]):
        raise InvalidIdentifier(field, Reason.CHECK_DIGIT, "check digit does not match")
    return digits


def validate_resident_code(value: object, *, field: str = "resident_code") -> str:
    """The canonical 11-digit resident code, or :class:`InvalidIdentifier`."""
    digits = _canonical_digits(value, field, RESIDENT_CODE_LENGTH)
    if _personal_number_check_digit(digits[:-1]) != int(digits[-1]):
        raise InvalidIdentifier(field, Reason.CHECK_DIGIT, "check digit does not match")
    return digits


def validate_local_government_code(value: object, *, field: str = "local_government_code") -> str:
    """The canonical 6-digit local-government code, or :class:`InvalidIdentifier`."""
    digits = _canonical_digits(value, field, LOCAL_GOVERNMENT_CODE_LENGTH)
    if local_government_code_check_digit(digits[:-1]) != int(digits[-1]):
        raise InvalidIdentifier(field, Reason.CHECK_DIGIT, "check digit does not match")
    return digits


def is_valid_my_number(value: object) -> bool:
    """True when :func:`validate_my_number` accepts the value."""
    return _accepts(validate_my_number, value)


def is_valid_resident_code(value: object) -> bool:
    """True when :func:`validate_resident_code` accepts the value."""
    return _accepts(validate_resident_code, value)


def is_valid_local_government_code(value: object) -> bool:
    """True when :func:`validate_local_government_code` accepts the value."""
    return _accepts(validate_local_government_code, value)


def _accepts(validator, value: object) -> bool:
    try:
        validator(value)
    except InvalidIdentifier:
        return False
    return True


def local_government_code(first5: str) -> str:
    """The 6-digit code for a 5-digit one (``"11222"`` → ``"112224"``)."""
    return first5 + str(local_government_code_check_digit(first5))


# --- synthetic numbers ----------------------------------------------------------------


def generate_my_number(rng: random.Random) -> str:
    """A valid synthetic My Number drawn from ``rng`` (uniqueness is the caller's concern)."""
    body = f"{rng.randrange(10 ** (MY_NUMBER_LENGTH - 1)):011d}"
    return body + str(_personal_number_check_digit(body))


def generate_resident_code(rng: random.Random) -> str:
    """A valid synthetic resident code drawn from ``rng`` (uniqueness is the caller's concern)."""
    body = f"{rng.randrange(10 ** (RESIDENT_CODE_LENGTH - 1)):010d}"
    return body + str(_personal_number_check_digit(body))


# --- other identifying items ----------------------------------------------------------


def validate_birth_date(
    value: object, *, today: date | None = None, field: str = "birth_date"
) -> date:
    """A real calendar date (生年月日), not in the future and not before 1870-01-01.

    Accepts a :class:`date` (a datetime is cut to its date) or text as ``YYYY-MM-DD``,
    ``YYYY/MM/DD`` or ``YYYYMMDD``, full-width digits included.
    """
    if isinstance(value, datetime):
        parsed = value.date()
    elif isinstance(value, date):
        parsed = value
    elif isinstance(value, str):
        parsed = _parse_date_text(value, field)
    else:
        raise InvalidIdentifier(field, Reason.FORMAT, "must be a date or date text")
    if parsed < EARLIEST_BIRTH_DATE:
        raise InvalidIdentifier(field, Reason.OUT_OF_RANGE, "is before 1870-01-01")
    if parsed > (today or date.today()):
        raise InvalidIdentifier(field, Reason.OUT_OF_RANGE, "is in the future")
    return parsed


_DATE_TEXT = re.compile(r"(\d{4})[-/]?(\d{2})[-/]?(\d{2})")


def _parse_date_text(text: str, field: str) -> date:
    cleaned = unicodedata.normalize("NFKC", text).strip()
    if not cleaned:
        raise InvalidIdentifier(field, Reason.EMPTY, "is empty")
    match = _DATE_TEXT.fullmatch(cleaned)
    if match is None:
        raise InvalidIdentifier(field, Reason.FORMAT, "must be YYYY-MM-DD")
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise InvalidIdentifier(field, Reason.FORMAT, "is not a calendar date") from None


def validate_name(value: object, *, field: str = "name") -> str:
    """A name (氏名) with its whitespace tidied, refused when nothing is left.

    Runs of spaces, ASCII or ideographic, become one ideographic space (全角スペース,
    the registry's separator between surname and given name), or one ASCII space in an
    all-ASCII name. Characters themselves are kept as given: old forms and variation
    selectors are part of a registered name. Control characters are refused.
    """
    if not isinstance(value, str):
        raise InvalidIdentifier(field, Reason.FORMAT, "must be given as text")
    words = value.split()
    if not words:
        raise InvalidIdentifier(field, Reason.EMPTY, "is empty")
    for char in value:
        if (
            unicodedata.category(char) in _CONTROL_CATEGORIES
            and not char.isspace()
            and not _NAME_FORMAT_CHARACTERS_ALLOWED.match(char)
        ):
            raise InvalidIdentifier(field, Reason.FORMAT, "contains a control character")
    separator = " " if all(word.isascii() for word in words) else "\u3000"
    return separator.join(words)


# --- the city's own address numbers (統合宛名番号, 福祉宛名番号) -------------------------------
# Both carry a Damm check digit (a totally anti-symmetric quasigroup of order 10), which
# catches every single-digit error and every swap of two adjacent digits.

INTEGRATED_ADDRESS_NUMBER_LENGTH = 15
WELFARE_ADDRESS_NUMBER_LENGTH = 10


_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)
def damm_check_digit(body: str) -> int:
    """The Damm check digit of a string of ASCII digits (a valid number then reduces to 0)."""
    if not _ASCII_DIGITS.fullmatch(body):
        raise ValueError("the body must be digits")
    interim = 0
    for char in body:
        interim = _DAMM[interim][ord(char) - 48]
    return interim


def _check_number(value: str, length: int, what: str) -> str:
    if len(value) != length or not _ASCII_DIGITS.fullmatch(value):
        raise ValueError(f"{what} is {length} digits")
    if damm_check_digit(value) != 0:
        raise ValueError(f"{what}: check digit does not match")
    return value


def validate_integrated_address_number(value: str) -> str:
    """A 15-digit integrated address number whose last digit is its Damm check digit."""
    return _check_number(value, INTEGRATED_ADDRESS_NUMBER_LENGTH, "an integrated address number (統合宛名番号)")


def validate_welfare_address_number(value: str) -> str:
    """A 10-digit welfare address number whose last digit is its Damm check digit."""
    return _check_number(value, WELFARE_ADDRESS_NUMBER_LENGTH, "a welfare address number (福祉宛名番号)")


def integrated_address_number(city: str, serial: str) -> str:
    """The number issued by ``city`` (six-digit code) for a nine-digit ``serial``."""
    if len(serial) != 9 or not _ASCII_DIGITS.fullmatch(serial) or len(city) != 6:
        raise ValueError("a city code of six digits and a serial of nine digits are needed")
    body = city[:5] + serial
    return body + str(damm_check_digit(body))


def welfare_address_number(serial: str) -> str:
    """The welfare address number for a nine-digit ``serial``."""
    if len(serial) != 9 or not _ASCII_DIGITS.fullmatch(serial):
        raise ValueError("a serial of nine digits is needed")
    return serial + str(damm_check_digit(serial))
