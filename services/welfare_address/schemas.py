"""HTTP models of the welfare address staff API, beyond the contract models it shares with the bus."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, model_validator

from shared.contracts.address import AddressText
from shared.contracts.types import BirthDate, KanaName, PersonName, Sex


class NonResidentCorrection(BaseModel):
    """A correction of a non-resident's items: only what changes, nothing unknown (M04)."""

    model_config = ConfigDict(extra="forbid")

    name: PersonName | None = None
    name_kana: KanaName | None = None
    sex: Sex | None = None
    birth_date: BirthDate | None = None
    address: AddressText | None = None

    @model_validator(mode="after")
    def _something(self) -> NonResidentCorrection:
        if not self.model_fields_set:
            raise ValueError("name at least one item to correct")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be emptied")
        return self

    def changes(self) -> dict:
        return self.model_dump(include=self.model_fields_set)
