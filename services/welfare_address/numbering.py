"""Drawing welfare address numbers (福祉宛名番号): nine random digits and a Damm check digit
(format and check in ``shared.contracts.address``). A draw that hits a number already
given is drawn again (the primary key refuses the duplicate)."""

from __future__ import annotations

import secrets

from shared.ids import welfare_address_number

SERIAL_DIGITS = 9


def draw_number() -> str:
    """A fresh welfare address number, not yet checked for uniqueness."""
    return welfare_address_number(f"{secrets.randbelow(10**SERIAL_DIGITS):0{SERIAL_DIGITS}d}")
