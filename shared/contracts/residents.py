"""The resident registry's changes (異動), as the address systems and the Juki-net CS receive them."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from shared.contracts.base import Event, Message
from shared.contracts.types import BirthDate, KanaName, MyNumber, PersonName, ResidentCode, Sex

#: 異動の種類: birth, move-in, special move-in with the card (特例転入), move-out, change of
#: address within the city (転居), death, correction (職権修正).
ChangeKind = Literal["birth", "move_in", "special_move_in", "move_out", "address_change", "death", "correction"]
ResidentStatus = Literal["resident", "moved_out", "deceased"]
#: 続柄, relation to the head of household (世帯主).
Relation = Literal["head", "spouse", "child", "parent", "parent_in_law", "grandchild", "other_relative"]

Town = Annotated[str, Field(min_length=1, max_length=100, description="町字 (town), as on the address")]
HouseholdId = Annotated[
    str, Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z-]+$", description="世帯番号 (household number)")
]


class ResidentRecord(Message):
    """One person's entry on the resident register (住民票), after the change."""

    resident_code: ResidentCode
    my_number: MyNumber
    family_name: PersonName
    given_name: PersonName
    family_name_kana: KanaName
    given_name_kana: KanaName
    sex: Sex
    birth_date: BirthDate
    address: PersonName
    town: Town
    household_id: HouseholdId
    relation: Relation
    status: ResidentStatus = "resident"


class ResidentChanged(Message):
    """A change recorded on the register; consumers apply it exactly once, by ``change_id``.

    ``effective_date`` is the day the change took effect (異動日); ``recorded_at`` the moment
    the register recorded it (届出・処理日時), in UTC.
    """

    change_id: Annotated[str, Field(min_length=1, max_length=64)]
    kind: ChangeKind
    effective_date: date
    recorded_at: AwareDatetime
    resident: ResidentRecord


RESIDENT_CHANGED = Event(
    owner="resident_registry",
    name="changed",
    model=ResidentChanged,
    consumers=frozenset({"integrated_address", "welfare_address", "juki_cs"}),
    summary="A resident's change (異動), with the resident's record after it (flows [01], [10]).",
)

EVENTS = [RESIDENT_CHANGED]
