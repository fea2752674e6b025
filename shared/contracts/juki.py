"""The Juki-net community server's operations for the city's business systems (flow [04])."""

from __future__ import annotations

from pydantic import model_validator

from shared.contracts.base import Message, Operation
from shared.contracts.types import BirthDate, KanaName, MyNumber, PersonName, Sex


class IdentityQuery(Message):
    """Ask for the identity information (本人確認情報) of someone who may live elsewhere:
    by My Number, or by the four basic items (基本4情報), of which name and birth date are needed."""

    my_number: MyNumber | None = None
    name: PersonName | None = None
    name_kana: KanaName | None = None
    sex: Sex | None = None
    birth_date: BirthDate | None = None
    address: str | None = None
    purpose: str  # the affair the lookup is for; recorded with it

    @model_validator(mode="after")
    def _enough(self) -> IdentityQuery:
        if self.my_number is None and (self.name is None or self.birth_date is None):
            raise ValueError("give my_number, or at least name and birth_date")
        return self


class IdentityCandidate(Message):
    resident_code: str
    name: str
    name_kana: str
    sex: Sex
    birth_date: BirthDate
    address: str
    city: str
    score: float


class IdentityCandidates(Message):
    candidates: list[IdentityCandidate]


OPERATIONS = [
    Operation(
        owner="juki_cs",
        name="identity_lookup",
        request=IdentityQuery,
        reply=IdentityCandidates,
        callers=frozenset({"health_mgmt", "welfare_address"}),
        summary="Identity information of residents and non-residents, ranked by how well they match (flow [04]).",
    ),
]
