"""The simulated assessments (課税・保護の決定), deterministic and framework-free.

Local tax for a fiscal year (年度) is assessed by the city where a person lived on 1 January
of the year it starts in (賦課期日); someone who came later, or was born later, has no record
here for that year. Of those assessed:

- a household on public assistance (生活保護, about 1.7 % of households) is not taxed;
- under 20 on 1 January: not taxed (no income of their own);
- 65 or over: 45 % not taxed (pensions below the threshold); other adults: 20 %.

The draws are keyed hashes of the city, the resident code or household and the fiscal year,
so that the same people get the same statuses in every run, whichever order the resident
feed and the integrated address numbers arrive in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

ASSISTANCE_RATE = 0.017
EXEMPT_RATE_ELDERLY = 0.45
EXEMPT_RATE_ADULT = 0.20
ADULT_AGE = 20
ELDERLY_AGE = 65


def fiscal_year_of(day: date) -> int:
    """年度 of a day: April to March, named by the year it starts in."""
    return day.year if day.month >= 4 else day.year - 1


def assessment_day(fiscal_year: int) -> date:
    """賦課期日: 1 January of the fiscal year's start."""
    return date(fiscal_year, 1, 1)


def age_on(birth_date: date, day: date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def _draw(*parts: object) -> float:
    digest = hashlib.blake2b("/".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class Assessment:
    """What the systems record of one person for one fiscal year."""

    fiscal_year: int
    local_tax: str  # taxed | tax_exempt
    public_assistance: bool


def assess(city: str, resident_code: str, household_id: str | None, birth_date: date, resident_since: date | None, fiscal_year: int) -> Assessment | None:
    """The person's assessment for ``fiscal_year``, or ``None`` when they were not a resident on its 賦課期日."""
    day = assessment_day(fiscal_year)
    if birth_date > day or (resident_since is not None and resident_since > day):
        return None
    assisted = _draw("assistance", city, household_id or resident_code, fiscal_year) < ASSISTANCE_RATE
    age = age_on(birth_date, day)
    if assisted or age < ADULT_AGE:
        exempt = True
    else:
        rate = EXEMPT_RATE_ELDERLY if age >= ELDERLY_AGE else EXEMPT_RATE_ADULT
        exempt = _draw("local_tax", city, resident_code, fiscal_year) < rate
    return Assessment(fiscal_year, "tax_exempt" if exempt else "taxed", assisted)
