"""Identity verification from a My Number card at the counter (個人番号カードによる本人確認, M01).

The card's chip yields the four items, the My Number, the card's expiry and its serial.
The person is verified when the card is in date, the number is on file for a resident, and
every item agrees with the identity information on file. Items are compared as the
4-item search compares them (old and new character forms, widths, kana alike), except
that the address must agree in full: a card carries the whole address, not a part.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from services.juki_cs.matching import WILDCARD, fold_name, normalize_address, normalize_sex, parse_birth_date
from services.juki_cs.models import CardVerification, IdentityInfo
from shared.models import as_utc

CARD_EXPIRED = "card_expired"
UNKNOWN_PERSON = "unknown_person"
ITEM_MISMATCH = "item_mismatch"
DECEASED = "deceased"
MOVED_OUT = "moved_out"
_STATUS_REASONS = {"deceased": DECEASED, "moved_out": MOVED_OUT}


@dataclass(frozen=True)
class CardChip:
    """What the card's chip yields (券面事項)."""

    my_number: str
    name: str
    birth_date: date | str
    sex: str
    address: str
    expires_on: date
    serial: str


@dataclass(frozen=True)
class CardCheck:
    verified: bool
    reasons: tuple[str, ...]  # why not; empty when verified
    mismatched_items: tuple[str, ...]
    resident_code: str | None
    status: str | None


def check_card(chip: CardChip, on_file: IdentityInfo | None, today: date, municipality_prefixes: tuple[str, ...]) -> CardCheck:
    """Compare the chip with the identity information on file for its My Number."""
    reasons: list[str] = []
    if chip.expires_on < today:
        reasons.append(CARD_EXPIRED)
    if on_file is None:
        return CardCheck(False, (*reasons, UNKNOWN_PERSON), (), None, None)
    mismatched = tuple(_mismatched_items(chip, on_file, municipality_prefixes))
    if mismatched:
        reasons.append(ITEM_MISMATCH)
    if on_file.status in _STATUS_REASONS:
        reasons.append(_STATUS_REASONS[on_file.status])
    return CardCheck(not reasons, tuple(reasons), mismatched, on_file.resident_code, on_file.status)


def _mismatched_items(chip: CardChip, row: IdentityInfo, prefixes: tuple[str, ...]):
    if not _same_name(chip.name, f"{row.family_name}\u3000{row.given_name}"):
        yield "name"
    if parse_birth_date(chip.birth_date) != row.birth_date:
        yield "birth_date"
    if normalize_sex(chip.sex) != row.sex:
        yield "sex"
    if normalize_address(chip.address, prefixes) != normalize_address(row.address, prefixes):
        yield "address"


def _same_name(chip_name: str, registered: str) -> bool:
    """Equal after folding; a character the chip could not encode (〓) stands for any one."""
    left, right = fold_name(chip_name), fold_name(registered)
    return len(left) == len(right) and all(a == b or WILDCARD in (a, b) for a, b in zip(left, right))


def vouches_for(
    verification: CardVerification | None, holder: IdentityInfo | None, now: datetime, valid_for: timedelta
) -> str | None:
    """Why a recorded card check does not vouch for the person ``holder`` now, or None (M01)."""
    if verification is None or not verification.verified:
        return "not_verified"
    if holder is None or holder.resident_code != verification.resident_code:
        return "another_person"
    if as_utc(verification.at) + valid_for < now:
        return "too_old"
    return None
