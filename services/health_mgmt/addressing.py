"""Who a person is, from the address systems (宛名システム等, flow [03]): over the bus only.

Enrolment asks the integrated address system for the person's integrated address number
by My Number (``integrated_address.assign``, assigning one if they have none), then for
exactly the items the register keeps (``integrated_address.lookup``). The My Number is used
for the call and not kept.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from shared.contracts.address import AddressLookupRequest, AssignNumberRequest, PersonItems
from shared.contracts.juki import CardVerificationQuery
from shared.errors import Conflict

#: What the register keeps of a person's address information, and nothing more (M04).
REGISTER_ITEMS = frozenset({"name", "name_kana", "sex", "birth_date", "address", "status", "resident_code"})
#: The four items (基本4情報) a person is confirmed by, with their My Number (M03).
FOUR_ITEMS = ("name", "sex", "birth_date", "address")


class AddressInfo:
    """The address system's answer, as the register's columns."""

    def __init__(self, number: str, items: dict[str, Any], assigned: bool) -> None:
        self.number = number
        self.items = items
        self.assigned = assigned


async def identify(ctx, my_number: str, items: PersonItems | None = None) -> AddressInfo:
    """The person's integrated address number and register items, from the integrated address system."""
    city = ctx.settings.city
    assign = ctx.registry.operation("integrated_address", "assign")
    lookup = ctx.registry.operation("integrated_address", "lookup")
    number = await ctx.bus.request(assign, city, AssignNumberRequest(my_number=my_number, items=items))
    view = await ctx.bus.request(
        lookup, city, AddressLookupRequest(integrated_address_number=number.integrated_address_number, items=REGISTER_ITEMS)
    )
    values = view.model_dump(include=REGISTER_ITEMS)
    return AddressInfo(number.integrated_address_number, values, number.assigned)


def mismatched_items(presented: PersonItems, held: dict[str, Any]) -> list[str]:
    """Which of the four items the person presented differ from the address system's record.

    Compared as written, up to width and spacing (NFKC, runs of spaces): ``１丁目`` is
    ``1丁目``, but ``1-2-3`` is not ``一丁目2番3号``; an item the record lacks differs.
    """
    return [item for item in FOUR_ITEMS if _comparable(getattr(presented, item)) != _comparable(held.get(item))]


def _comparable(value: Any) -> str | None:
    if value is None:
        return None
    return " ".join(unicodedata.normalize("NFKC", str(value)).split())


async def check_identity(ctx, my_number: str, proof) -> None:
    """M01: before anything is taken in, the person has proved who they are. A My Number card
    must have been verified at the Juki-net CS terminal, recently, as this My Number's holder
    (``juki_cs.card_verification``); the notice card with a photo ID is the staff member's
    own check, recorded with the enrolment."""
    if proof.method != "my_number_card":
        return
    status = await ctx.bus.request(
        ctx.registry.operation("juki_cs", "card_verification"),
        ctx.settings.city,
        CardVerificationQuery(verification_id=proof.card_check_id, my_number=my_number),
    )
    if not status.verified:
        raise Conflict(f"card check {proof.card_check_id} does not verify this person ({status.reason}): not enrolled", reason=status.reason)
