"""The community server's HTTP models (staff terminal and operations).

Items are taken as staff type them or as a card's chip yields them: a birth date may be
written in the Japanese calendar, sex as 1/2 or 男/女. Each is checked on the way in, so a
request that cannot be read is refused before anything is looked up.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.juki_cs.matching import InvalidQuery, normalize_sex, parse_birth_date
from shared.contracts.juki import FourItem, Purpose
from shared.contracts.residents import ResidentStatus
from shared.contracts.types import MyNumber, PersonName, ResidentCode, Sex

Item = Annotated[str, Field(min_length=1, max_length=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _readable_birth_date(value: str | None) -> str | None:
    if value is not None:
        try:
            parse_birth_date(value)
        except InvalidQuery as exc:
            raise ValueError(str(exc)) from None
    return value


def _readable_sex(value: str | None) -> str | None:
    if value is not None:
        try:
            normalize_sex(value)
        except InvalidQuery as exc:
            raise ValueError(str(exc)) from None
    return value


class CardCheckRequest(_Strict):
    """What the My Number card's chip yields (券面事項入力補助), as the card reader passes it on."""

    my_number: MyNumber
    name: PersonName
    birth_date: Item
    sex: Item
    address: PersonName
    card_expires_on: date
    card_serial: Annotated[str, Field(pattern=r"^[0-9A-Za-z-]{4,32}$", description="the card's serial, kept with the check")]

    _birth = field_validator("birth_date")(_readable_birth_date)
    _sex = field_validator("sex")(_readable_sex)


class CardCheckReply(BaseModel):
    """``verified`` or why not: ``card_expired``, ``unknown_person``, ``item_mismatch`` (with the
    items), ``deceased``, ``moved_out``."""

    verification_id: int  # quoted at a business system's intake (M01)
    verified: bool
    reasons: list[str]
    mismatched_items: list[FourItem]
    resident_code: ResidentCode | None
    status: ResidentStatus | None


class FourItemSearch(_Strict):
    """A 4-item search (基本4情報検索): any of the items, each as staff write it, and the purpose."""

    name: Item | None = Field(default=None, description="氏名 in kanji or kana; ＊ or 〓 for a character outside the set")
    name_kana: Item | None = None
    birth_date: Item | None = Field(default=None, description="1975-03-01, 19750301, 昭和50年3月1日, S50.3.1")
    sex: Item | None = Field(default=None, description="1/2, 男/女, M/F, male/female")
    address: Item | None = None
    purpose: Purpose
    limit: int = Field(default=10, ge=1, le=50)
    other_cities: bool = Field(default=False, description="also ask the prefecture server (non-residents, flow [04])")

    _birth = field_validator("birth_date")(_readable_birth_date)
    _sex = field_validator("sex")(_readable_sex)


class IdentityView(BaseModel):
    """本人確認情報 of one person as the terminal shows it (the My Number is not shown)."""

    resident_code: ResidentCode
    name: str
    name_kana: str
    sex: Sex
    birth_date: date
    address: str
    status: ResidentStatus
    updated_at: datetime


class ConsistencyCheckRequest(_Strict):
    repair: bool = Field(default=False, description="send this CS's records again for the codes found to differ")


class ConsistencyReport(BaseModel):
    id: int
    outcome: str  # consistent | differences
    records_here: int
    records_there: int
    only_here: list[str]
    only_there: list[str]
    different: list[str]
    rounds: int
    digests_exchanged: int
    records_exchanged: int
    repaired: int
    forwarding_pending: int  # changes not yet at the prefecture server when the check ended: they differ until sent
    started_at: datetime
    finished_at: datetime


class ForwardingStatus(BaseModel):
    prefecture_url: str | None
    pending: int
    forwarded: int
    oldest_pending_at: datetime | None
    last_error: str | None
