"""The in-house tax and welfare systems' operations (庁内連携, flow [06]).

The health management decides who pays the copayment of B類 vaccinations (実費徴収) from
local-tax status (住民税 課税 / 非課税) and public assistance (生活保護 受給). It asks the
city's tax and welfare systems for a batch of people of one fiscal year, each named by
integrated address number **and** birth date as its register holds them; no My Number
travels. The systems answer a status only for a record whose number and birth date both
agree; a record under the number with another birth date is reported as
``birth_date_mismatch`` without its status; a person they hold nothing on for the year is
``not_held``. Only the health management may ask (M15).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from shared.contracts.base import Message, Operation
from shared.contracts.types import BirthDate, IntegratedAddressNumber

#: 年度: a fiscal year runs from 1 April to 31 March and is named by the year it starts in.
FiscalYear = Annotated[int, Field(ge=1990, le=2100, description="年度 (fiscal year, April to March)")]
#: How many people one request may name.
MAX_PEOPLE = 1000

#: ``held``: a record with this number and birth date (its status follows); ``not_held``: no
#: record for the year; ``birth_date_mismatch``: a record under the number with another birth date.
AnswerOutcome = Literal["held", "not_held", "birth_date_mismatch"]
LocalTaxStatus = Literal["taxed", "tax_exempt"]  # 課税 / 非課税
AssistanceStatus = Literal["public_assistance"]  # 生活保護 受給


class PersonKey(Message):
    """A person as the asking register knows them: integrated address number and birth date."""

    integrated_address_number: IntegratedAddressNumber
    birth_date: BirthDate


class StatusRequest(Message):
    """The status of ``people`` in ``fiscal_year``; each person once."""

    fiscal_year: FiscalYear
    people: Annotated[list[PersonKey], Field(min_length=1, max_length=MAX_PEOPLE)]

    @model_validator(mode="after")
    def _each_once(self) -> StatusRequest:
        numbers = [person.integrated_address_number for person in self.people]
        if len(set(numbers)) != len(numbers):
            raise ValueError("name each person once")
        return self


class _Answer(Message):
    integrated_address_number: IntegratedAddressNumber
    birth_date: BirthDate  # as asked
    outcome: AnswerOutcome
    status: str | None = None

    @model_validator(mode="after")
    def _status_only_when_held(self):
        if (self.outcome == "held") != (self.status is not None):
            raise ValueError("a status is given for a held record, and only for one")
        return self


class LocalTaxAnswer(_Answer):
    """The person's local-tax status (住民税) when ``held``."""

    status: LocalTaxStatus | None = None


class PublicAssistanceAnswer(_Answer):
    """``public_assistance`` when ``held``: the person receives public assistance (生活保護) in the year."""

    status: AssistanceStatus | None = None


class LocalTaxReply(Message):
    """One answer per person asked, in the order asked."""

    fiscal_year: FiscalYear
    answers: list[LocalTaxAnswer]


class PublicAssistanceReply(Message):
    """One answer per person asked, in the order asked."""

    fiscal_year: FiscalYear
    answers: list[PublicAssistanceAnswer]


#: Who may ask: the business system that decides the copayment, and no other.
FEE_DECIDERS = frozenset({"health_mgmt"})

OPERATIONS = [
    Operation(
        owner="tax_welfare",
        name="local_tax_status",
        request=StatusRequest,
        reply=LocalTaxReply,
        callers=FEE_DECIDERS,
        summary="住民税 課税 / 非課税 of a batch of people in a fiscal year, by integrated address number and birth date (flow [06]).",
    ),
    Operation(
        owner="tax_welfare",
        name="public_assistance_status",
        request=StatusRequest,
        reply=PublicAssistanceReply,
        callers=FEE_DECIDERS,
        summary="生活保護 受給 of a batch of people in a fiscal year, by integrated address number and birth date (flow [06]).",
    ),
]
