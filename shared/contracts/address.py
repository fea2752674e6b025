"""The address systems' operations: the integrated address system and the welfare address system.

Who may call what is part of each operation. Only the business systems entitled to My
Numbers (番号利用事務) may ask by My Number or see one; the intermediate server asks by
integrated address number and is given nothing it did not ask for (M07).
"""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from shared.contracts.base import Message, Operation
from shared.contracts.types import BirthDate, IntegratedAddressNumber, KanaName, MyNumber, PersonName, Sex

#: Business systems that use My Numbers for their affairs (番号利用事務) and may see them.
MY_NUMBER_USERS = frozenset({"health_mgmt", "welfare_address"})

#: What an address lookup can return; a caller names the items it needs and gets no more.
AddressItem = Literal["my_number", "name", "name_kana", "sex", "birth_date", "address", "status", "resident_code"]


class AssignNumberRequest(Message):
    """Ask for the integrated address number of a person, assigning one if they have none."""

    my_number: MyNumber


class AssignNumberReply(Message):
    integrated_address_number: IntegratedAddressNumber
    assigned: bool  # false: the person already had this number


class AddressLookupRequest(Message):
    """Look a person up by exactly one key, asking for the items the affair needs."""

    my_number: MyNumber | None = None
    integrated_address_number: IntegratedAddressNumber | None = None
    items: frozenset[AddressItem]

    @model_validator(mode="after")
    def _one_key(self) -> AddressLookupRequest:
        if (self.my_number is None) == (self.integrated_address_number is None):
            raise ValueError("give exactly one of my_number and integrated_address_number")
        if not self.items:
            raise ValueError("name at least one item")
        return self


class AddressView(Message):
    """The items asked for, and nothing else (unasked items are absent, not empty)."""

    integrated_address_number: IntegratedAddressNumber
    my_number: MyNumber | None = None
    resident_code: str | None = None
    name: str | None = None
    name_kana: str | None = None
    sex: Sex | None = None
    birth_date: BirthDate | None = None
    address: str | None = None
    status: str | None = None


class NonResidentRegistration(Message):
    """住登外宛名: a person the city deals with who is not on its resident register."""

    my_number: MyNumber | None = None
    name: PersonName
    name_kana: KanaName
    sex: Sex
    birth_date: BirthDate
    address: PersonName


class WelfareNumberReply(Message):
    welfare_address_number: str
    integrated_address_number: IntegratedAddressNumber | None = None


INTEGRATED_ADDRESS_OPERATIONS = [
    Operation(
        owner="integrated_address",
        name="assign",
        request=AssignNumberRequest,
        reply=AssignNumberReply,
        callers=MY_NUMBER_USERS,
        person_field="reply.integrated_address_number",
        summary="The person's integrated address number (統合宛名番号), assigned once (flow [03]).",
    ),
    Operation(
        owner="integrated_address",
        name="lookup",
        request=AddressLookupRequest,
        reply=AddressView,
        callers=MY_NUMBER_USERS | {"intermediate_server"},
        person_field="reply.integrated_address_number",
        summary="Address items of one person, cut to the items asked for.",
    ),
]

WELFARE_ADDRESS_OPERATIONS = [
    Operation(
        owner="welfare_address",
        name="lookup",
        request=AddressLookupRequest,
        reply=AddressView,
        callers=frozenset({"health_mgmt"}),
        person_field="reply.integrated_address_number",
        summary="Address items of a resident or non-resident (住登外) known to the welfare address system.",
    ),
    Operation(
        owner="welfare_address",
        name="register_non_resident",
        request=NonResidentRegistration,
        reply=WelfareNumberReply,
        callers=frozenset({"health_mgmt"}),
        person_field="reply.welfare_address_number",
        summary="Register a non-resident (住登外者) and return their welfare address number.",
    ),
]

OPERATIONS = INTEGRATED_ADDRESS_OPERATIONS + WELFARE_ADDRESS_OPERATIONS
