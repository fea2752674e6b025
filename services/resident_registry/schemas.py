"""HTTP models of the registry's counter (窓口): a change as staff enter it, and what they read back."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from services.resident_registry.clock import today_in_japan
from shared.contracts.residents import ChangeKind, HouseholdId, Relation, ResidentRecord, Town
from shared.contracts.types import BirthDate, KanaName, MyNumber, PersonName, ResidentCode, Sex
from shared.ids import EARLIEST_BIRTH_DATE


def _effective_date(value: date) -> date:
    if value > today_in_japan():
        raise ValueError("effective_date: is in the future; record a change once it has happened")
    if value < EARLIEST_BIRTH_DATE:
        raise ValueError("effective_date: is before 1870-01-01")
    return value


EffectiveDate = Annotated[date, AfterValidator(_effective_date), Field(description="異動日: the day the change took effect")]

#: The items of a person that a change may carry; which of them a change needs depends on its kind.
PERSON_ITEMS = (
    "resident_code",
    "my_number",
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "sex",
    "birth_date",
    "address",
    "town",
    "household_id",
    "relation",
)


class ChangeRequest(BaseModel):
    """A change (異動届) as entered at the counter.

    Every item is checked on entry (M02) and unknown items are refused (M04); which items a
    kind needs and admits is checked next (see ``register.ITEMS``), before anything is stored.
    """

    model_config = ConfigDict(extra="forbid")

    kind: ChangeKind
    effective_date: EffectiveDate
    resident_code: ResidentCode | None = None
    my_number: MyNumber | None = None
    family_name: PersonName | None = None
    given_name: PersonName | None = None
    family_name_kana: KanaName | None = None
    given_name_kana: KanaName | None = None
    sex: Sex | None = None
    birth_date: BirthDate | None = None
    address: PersonName | None = None
    town: Town | None = None
    household_id: HouseholdId | None = None
    relation: Relation | None = None

    def given_items(self) -> dict[str, object]:
        """The person's items this request carries, by name."""
        return {name: getattr(self, name) for name in PERSON_ITEMS if getattr(self, name) is not None}


class ChangeView(BaseModel):
    """One change on the register (異動履歴), with the person's record after it."""

    change_id: str
    kind: ChangeKind
    effective_date: date
    recorded_at: AwareDatetime
    recorded_by: str
    resident: ResidentRecord
