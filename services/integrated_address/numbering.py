"""Drawing integrated address numbers (統合宛名番号).

A number is the first five digits of the city's local-government code, nine digits drawn
at random, and a Damm check digit (format and check in ``shared.contracts.address``).
Random rather than sequential: a number says nothing about when, or in which order,
people became known, and cannot be guessed from a neighbour's. A draw that hits a number
already given is simply drawn again (the primary key refuses the duplicate).
"""

from __future__ import annotations

import secrets

from shared.ids import integrated_address_number

SERIAL_DIGITS = 9


def draw_number(city: str) -> str:
    """A fresh integrated address number of ``city``, not yet checked for uniqueness."""
    return integrated_address_number(city, f"{secrets.randbelow(10**SERIAL_DIGITS):0{SERIAL_DIGITS}d}")
