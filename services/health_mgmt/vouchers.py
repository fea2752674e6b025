"""Voucher numbers (接種券番号): what the city prints on a person's vouchers and 予診票.

Ten digits: nine drawn at random and a Luhn check digit, so that a number mistyped by a
clinic is refused as malformed (M02) instead of finding somebody else.
"""

from __future__ import annotations

import re
import secrets

VOUCHER_LENGTH = 10
_DIGITS = re.compile(r"^[0-9]{10}$")


def luhn_check_digit(body: str) -> int:
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = ord(char) - 48
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10


def is_valid_voucher_number(value: str) -> bool:
    return bool(_DIGITS.match(value)) and luhn_check_digit(value[:-1]) == int(value[-1])


def voucher_number(serial: str) -> str:
    """The voucher number for a nine-digit ``serial``."""
    if len(serial) != 9 or not serial.isdigit():
        raise ValueError("a serial of nine digits is needed")
    return serial + str(luhn_check_digit(serial))


def draw_voucher_number() -> str:
    """A fresh voucher number; the caller makes sure it is not taken (the column is unique)."""
    return voucher_number(f"{secrets.randbelow(10**9):09d}")
