"""Contract tests: for every operation, what the callers send is what the owner accepts and
what the owner answers is what the callers accept; for every event, what the owner
publishes is what each consumer accepts — and all of it matches the published document.

Both sides use the models of shared.contracts today; the checks exist for the day one side
keeps a copy that drifts, which the tests at the end show they catch.
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, create_model

from shared.contracts import REGISTRY
from shared.contracts.address import AssignNumberReply
from shared.contracts.base import Message
from shared.contracts.residents import ResidentChanged
from shared.contracts.types import IntegratedAddressNumber
from tests.contract.contract import check, published_schema
from tests.contract.examples import examples

OPERATIONS = sorted(REGISTRY.operations.values(), key=lambda op: op.key)
EVENTS = sorted(REGISTRY.events.values(), key=lambda ev: ev.key)


def models() -> list[type[BaseModel]]:
    found = {m for op in OPERATIONS for m in (op.request, op.reply)} | {ev.model for ev in EVENTS}
    return sorted(found, key=lambda m: m.__name__)


@pytest.mark.parametrize("model", models(), ids=lambda m: m.__name__)
def test_every_model_has_examples_to_check(model):
    assert examples(model), f"no example of {model.__name__}: extend tests/contract/examples.py"


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.key)
def test_what_callers_send_the_owner_accepts(operation):
    assert operation.callers, f"{operation.key} has nobody on its allowlist"
    assert check(operation.request, operation.request, published_schema(f"{operation.key}.request")) == []


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.key)
def test_what_the_owner_answers_its_callers_accept(operation):
    assert check(operation.reply, operation.reply, published_schema(f"{operation.key}.reply")) == []


@pytest.mark.parametrize("event", EVENTS, ids=lambda ev: ev.key)
def test_what_the_owner_publishes_every_consumer_accepts(event):
    assert event.consumers, f"{event.key} has no consumer"
    assert check(event.model, event.model, published_schema(event.key)) == []


def test_a_message_model_refuses_fields_it_does_not_know():
    """The contracts refuse unknown fields (M04), which is what lets a drift show at all."""
    for model in models():
        assert model.model_config.get("extra") == "forbid", model.__name__


# --- drift: one side keeps a modified copy -------------------------------------------


def copy_of(model: type[BaseModel], drop: str | None = None, **changes) -> type[BaseModel]:
    """A copy of ``model`` as a drifted side would hold it: a field dropped, renamed or retyped."""
    fields = {name: (info.annotation, info) for name, info in model.model_fields.items() if name != drop}
    fields.update(changes)
    return create_model(model.__name__, __base__=Message, __doc__=model.__doc__, **fields)


def test_a_provider_that_renames_a_reply_field_is_caught():
    drifted = copy_of(AssignNumberReply, drop="assigned", newly_assigned=(bool, ...))
    problems = check(drifted, AssignNumberReply)  # the owner answers with its drifted copy
    assert problems and "assigned" in problems[0]
    published = check(drifted, drifted, published_schema("integrated_address.assign.reply"))
    assert any("published schema" in p for p in published)  # the published contract catches it too


def test_a_consumer_that_requires_a_new_field_is_caught():
    drifted = copy_of(ResidentChanged, source_system=(str, Field(min_length=1)))
    problems = check(ResidentChanged, drifted)  # the consumer validates with its drifted copy
    assert problems and "source_system" in problems[0]


def test_a_provider_that_changes_a_field_type_is_caught():
    drifted = copy_of(AssignNumberReply, integrated_address_number=(int, ...))
    assert check(drifted, AssignNumberReply)
    assert check(AssignNumberReply, copy_of(AssignNumberReply, integrated_address_number=(IntegratedAddressNumber, ...))) == []


def test_a_side_that_drops_what_it_receives_is_caught():
    """A receiver whose copy lost an optional field would refuse it (extra forbidden) — and
    one that tolerated unknown fields would silently drop it: both are reported."""
    from pydantic import ConfigDict

    from shared.contracts.address import WelfareNumberReply

    strict = copy_of(WelfareNumberReply, drop="integrated_address_number")
    assert check(WelfareNumberReply, strict)
    tolerant = create_model(
        "WelfareNumberReply",
        __config__=ConfigDict(extra="ignore", frozen=True),
        **{n: (i.annotation, i) for n, i in WelfareNumberReply.model_fields.items() if n != "integrated_address_number"},
    )
    problems = check(WelfareNumberReply, tolerant)
    assert any("reads" in p and "back as" in p for p in problems)
