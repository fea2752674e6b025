"""The address systems' operations: the integrated address system and the welfare address system.

Who may call what is part of each operation. Only the business systems entitled to My
Numbers (番号利用事務) may ask by My Number or see one; the intermediate server asks by
integrated address number and is given nothing it did not ask for (M07).

Both address numbers carry a check digit, so that a mistyped number is refused on entry
(M02) instead of finding nobody or somebody else:

- integrated address number (統合宛名番号), 15 digits: the first five digits of the issuing
  city's local-government code, nine random digits, and a Damm check digit over the 14;
- welfare address number (福祉宛名番号), 10 digits: nine random digits and a Damm check digit.

The Damm algorithm (a totally anti-symmetric quasigroup of order 10) catches every
single-digit error and every swap of two adjacent digits, with one decimal digit.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, PlainSerializer, model_serializer, model_validator

from shared.contracts.base import Message, Operation
from shared.contracts.types import (
    BirthDate,
    IntegratedAddressNumber,
    KanaName,
    MyNumber,
    PersonName,
    Sex,
    WelfareAddressNumber,
)
from shared.ids import validate_name

#: Business systems that use My Numbers for their affairs (番号利用事務) and may see them.
MY_NUMBER_USERS = frozenset({"health_mgmt", "welfare_address"})

#: What an address lookup can return; a caller names the items it needs and gets no more.
AddressItem = Literal["my_number", "name", "name_kana", "sex", "birth_date", "address", "status", "resident_code"]
ADDRESS_ITEMS: tuple[str, ...] = AddressItem.__args__
#: A set of items, written in a stable (sorted) order so the same request is the same bytes.
ItemSet = Annotated[frozenset[AddressItem], PlainSerializer(sorted, return_type=list[AddressItem])]

#: 住民 / 転出 / 死亡 / 住登外: a person who left or died keeps their entry and number (M31).
AddresseeStatus = Literal["resident", "moved_out", "deceased", "non_resident"]

AddressText = Annotated[
    str, AfterValidator(lambda v: validate_name(v, field="address")), Field(max_length=200, description="住所")
]


# --- messages -------------------------------------------------------------------------


class PersonItems(Message):
    """The four items (基本4情報) and reading of a person the caller knows about."""

    name: PersonName
    name_kana: KanaName
    sex: Sex
    birth_date: BirthDate
    address: AddressText


class AssignNumberRequest(Message):
    """Ask for the integrated address number of a person, assigning one if they have none.

    ``items`` may carry what the caller knows of a person who is not on the resident
    register (住登外者, flow [02]); they are kept for such a person only: a resident's items
    come from the resident register alone.
    """

    my_number: MyNumber
    items: PersonItems | None = None


class AssignNumberReply(Message):
    integrated_address_number: IntegratedAddressNumber
    assigned: bool  # false: the person already had this number


class OnlyAskedItems(Message):
    """A view whose serialised form holds only the fields that were set: an item that was
    not asked for is absent, while an item asked for but unknown is ``null``."""

    @model_serializer(mode="wrap")
    def _only_set(self, handler) -> dict[str, Any]:
        data = handler(self)
        return {key: value for key, value in data.items() if key in self.model_fields_set}


class AddressLookupRequest(Message):
    """Look a person up by exactly one key, asking for the items the affair needs."""

    my_number: MyNumber | None = None
    integrated_address_number: IntegratedAddressNumber | None = None
    items: ItemSet

    @model_validator(mode="after")
    def _one_key(self) -> AddressLookupRequest:
        if (self.my_number is None) == (self.integrated_address_number is None):
            raise ValueError("give exactly one of my_number and integrated_address_number")
        if not self.items:
            raise ValueError("name at least one item")
        return self


class AddressView(OnlyAskedItems):
    """The items asked for, and nothing else (unasked items are absent, not empty)."""

    integrated_address_number: IntegratedAddressNumber
    my_number: MyNumber | None = None
    resident_code: str | None = None
    name: str | None = None
    name_kana: str | None = None
    sex: Sex | None = None
    birth_date: BirthDate | None = None
    address: str | None = None
    status: AddresseeStatus | None = None


class WelfareLookupRequest(Message):
    """Look a person up in the welfare address system by exactly one key."""

    my_number: MyNumber | None = None
    integrated_address_number: IntegratedAddressNumber | None = None
    welfare_address_number: WelfareAddressNumber | None = None
    items: ItemSet

    @model_validator(mode="after")
    def _one_key(self) -> WelfareLookupRequest:
        keys = (self.my_number, self.integrated_address_number, self.welfare_address_number)
        if sum(key is not None for key in keys) != 1:
            raise ValueError("give exactly one of my_number, integrated_address_number and welfare_address_number")
        if not self.items:
            raise ValueError("name at least one item")
        return self


class WelfareAddressView(OnlyAskedItems):
    """A welfare addressee's numbers and the items asked for; a non-resident without a My
    Number has no integrated address number (``null``)."""

    welfare_address_number: WelfareAddressNumber
    integrated_address_number: IntegratedAddressNumber | None
    my_number: MyNumber | None = None
    resident_code: str | None = None
    name: str | None = None
    name_kana: str | None = None
    sex: Sex | None = None
    birth_date: BirthDate | None = None
    address: str | None = None
    status: AddresseeStatus | None = None


class NonResidentRegistration(Message):
    """住登外宛名: a person the city deals with who is not on its resident register."""

    my_number: MyNumber | None = None
    name: PersonName
    name_kana: KanaName
    sex: Sex
    birth_date: BirthDate
    address: AddressText

    def items(self) -> PersonItems:
        return PersonItems(
            name=self.name, name_kana=self.name_kana, sex=self.sex, birth_date=self.birth_date, address=self.address
        )


class WelfareNumberReply(Message):
    welfare_address_number: WelfareAddressNumber
    integrated_address_number: IntegratedAddressNumber | None = None
    registered: bool = True  # false: the person was already known and kept their number


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
        request=WelfareLookupRequest,
        reply=WelfareAddressView,
        callers=frozenset({"health_mgmt"}),
        person_field="reply.welfare_address_number",
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

# Kept importable from here while callers move to shared.ids.
from shared.ids import integrated_address_number, welfare_address_number  # noqa: E402, F401
