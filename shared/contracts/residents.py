"""The resident registry's changes (異動), as the address systems, the Juki-net CS, the health management and the tax and welfare systems receive them."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from shared.contracts.base import Event, Message
from shared.contracts.types import BirthDate, KanaName, MyNumber, PersonName, ResidentCode, Sex
from shared.ids import validate_name

#: 異動の種類: birth, move-in, special move-in with the card (特例転入), move-out, change of
#: address within the city (転居), death, correction (職権修正).
ChangeKind = Literal["birth", "move_in", "special_move_in", "move_out", "address_change", "death", "correction"]
ResidentStatus = Literal["resident", "moved_out", "deceased"]
#: 続柄, relation to the head of household (世帯主).
Relation = Literal["head", "spouse", "child", "parent", "parent_in_law", "grandchild", "other_relative"]

Town = Annotated[str, Field(min_length=1, max_length=100, description="町字 (town), as on the address")]
STATUS_AFTER: dict[str, ResidentStatus] = {
    "birth": "resident",
    "move_in": "resident",
    "special_move_in": "resident",
    "move_out": "moved_out",
    "death": "deceased",
}
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

    def address_items(self, status: str) -> dict:
        """The items an address system or business register keeps of this record (宛名情報),
        names as one string (surname, ideographic space, given name)."""
        return {
            "resident_code": self.resident_code,
            "name": validate_name(f"{self.family_name} {self.given_name}"),
            "name_kana": validate_name(f"{self.family_name_kana} {self.given_name_kana}"),
            "sex": self.sex,
            "birth_date": self.birth_date,
            "address": self.address,
            "status": status,
        }


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

    def status_after(self) -> str:
        """The person's status once the change applies: a move-out or death sets it, a birth
        or move-in makes a resident, any other change keeps the record's own."""
        return STATUS_AFTER.get(self.kind, self.resident.status)


RESIDENT_CHANGED = Event(
    owner="resident_registry",
    name="changed",
    model=ResidentChanged,
    consumers=frozenset({"integrated_address", "welfare_address", "juki_cs", "health_mgmt", "tax_welfare"}),
    summary="A resident's change (異動), with the resident's record after it (flows [01], [10]).",
)

EVENTS = [RESIDENT_CHANGED]
