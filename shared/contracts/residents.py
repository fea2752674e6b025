"""The resident registry's changes (異動), as the address systems and the Juki-net CS receive them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from shared.contracts.base import Event, Message
from shared.contracts.types import BirthDate, KanaName, MyNumber, PersonName, ResidentCode, Sex

#: 異動の種類: birth, move-in, special move-in with the card (特例転入), move-out, change of
#: address within the city (転居), death, correction (職権修正).
ChangeKind = Literal["birth", "move_in", "special_move_in", "move_out", "address_change", "death", "correction"]
ResidentStatus = Literal["resident", "moved_out", "deceased"]


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
    town: str
    household_id: str
    relation: str
    status: ResidentStatus = "resident"


class ResidentChanged(Message):
    """A change recorded on the register; consumers apply it exactly once, by ``change_id``."""

    change_id: str
    kind: ChangeKind
    effective_date: date
    recorded_at: datetime
    resident: ResidentRecord


RESIDENT_CHANGED = Event(
    owner="resident_registry",
    name="changed",
    model=ResidentChanged,
    consumers=frozenset({"integrated_address", "welfare_address", "juki_cs"}),
    summary="A resident's change (異動), with the resident's record after it (flows [01], [10]).",
)

EVENTS = [RESIDENT_CHANGED]
