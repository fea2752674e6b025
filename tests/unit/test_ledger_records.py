"""Provision records: strict validation, no My Number as person key, RFC 8785 bytes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.ledger.records import (
    ProvisionRecord,
    RetentionPruning,
    canonical_json,
    format_utc,
    looks_like_my_number,
    parse_entry,
)
from shared.ledger.testing import sample_record

JST = timezone(timedelta(hours=9))


def _fields(**overrides):
    fields = sample_record(n=0).model_dump()
    fields.update(overrides)
    return fields


def test_a_record_carries_the_items_of_article_23():
    record = sample_record(n=0)
    document = json.loads(record.canonical_bytes())
    assert set(document) == {
        "type",
        "tenant",
        "kind",
        "requester",
        "provider",
        "affair_code",
        "procedure_code",
        "item_code",
        "serial_number",
        "requested_at",
        "provided_at",
        "outcome",
        "refusal_reason",
        "non_disclosure",
        "person_key",
    }


@pytest.mark.parametrize(
    "person_key",
    [
        "123456789012",
        "1234-5678-9012",
        "1234.5678.9012",
        "mn:123456789012",
        "123456789012@112224",
        "my_1234_5678_9012",
        "MN123456789012",
        "".join(chr(0xFF10 + int(d)) for d in "123456789012"),  # full-width digits
    ],
)
def test_a_my_number_is_never_a_person_key(person_key):
    assert looks_like_my_number(person_key)
    # Non-ASCII keys fail the key's pattern first; every ASCII one must fail for what it is.
    with pytest.raises(ValidationError, match="never a My Number" if person_key.isascii() else None):
        ProvisionRecord(**_fields(person_key=person_key))


@pytest.mark.parametrize("person_key", ["IA0000000000042", "12345678901", "1234567890123", "SYM-ab12cd34ef56", "ia:000000042"])
def test_the_tenants_own_keys_are_accepted(person_key):
    assert ProvisionRecord(**_fields(person_key=person_key)).person_key == person_key


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tenant", "112223"),  # wrong check digit
        ("tenant", "11222"),
        ("tenant", "HUB"),
        ("tenant", "112-224"),  # a code as people type it is not a tenant
        ("tenant", "".join(chr(0xFF10 + int(d)) for d in "112224")),
        ("affair_code", "JM0000000000001"),
        ("affair_code", "JT00000000000014"),
        ("procedure_code", "JT0000000000002X"),
        ("item_code", "TM000000000001234"),
        ("requester", ""),
        ("provider", "has space"),
        ("serial_number", ""),
        ("kind", "deletion"),
        ("outcome", "lost"),
        ("person_key", "x" * 65),
        ("non_disclosure", 0),  # strict: no ints for booleans
        ("requested_at", datetime(2024, 4, 1, 9, 0)),  # naive
        ("requested_at", "2024-04-01T09:00:00Z"),  # strict: a datetime, not text
        ("surprise", "extra fields are refused"),
    ],
)
def test_invalid_fields_are_refused(field, value):
    with pytest.raises(ValidationError):
        ProvisionRecord(**_fields(**{field: value}))


@pytest.mark.parametrize(
    "overrides",
    [
        {"outcome": "refused", "refusal_reason": None, "provided_at": None},  # a refusal without its reason
        {"outcome": "provided", "refusal_reason": "理由", "provided_at": datetime(2024, 4, 1, 10, tzinfo=UTC)},
        {"outcome": "provided", "refusal_reason": None, "provided_at": None},  # provided, but when?
        {"outcome": "held_for_review", "refusal_reason": None, "provided_at": datetime(2024, 4, 1, 10, tzinfo=UTC)},
        {"outcome": "permit_issued", "refusal_reason": None, "provided_at": None},  # not a permit record
        {"kind": "permit", "outcome": "provided", "provided_at": datetime(2024, 4, 1, 10, tzinfo=UTC), "refusal_reason": None},
        {"kind": "provision", "outcome": "requested", "refusal_reason": None, "provided_at": None},
        {"outcome": "provided", "refusal_reason": None, "provided_at": datetime(2024, 4, 1, 8, tzinfo=UTC)},  # before asked
        {"outcome": "refused", "refusal_reason": "改行\nを含む", "provided_at": None},
    ],
)
def test_incoherent_records_are_refused(overrides):
    with pytest.raises(ValidationError):
        ProvisionRecord(**_fields(**overrides))


def test_permit_records_of_the_hub():
    issued = sample_record("hub", 0, kind="permit", outcome="permit_issued", provided_at=None, refusal_reason=None)
    refused = sample_record("hub", 1, kind="permit", outcome="permit_refused", refusal_reason="照会許可用照合リストに該当しない")
    assert issued.tenant == refused.tenant == "hub"


def test_times_are_kept_in_utc_and_written_one_way():
    record = ProvisionRecord(**_fields(requested_at=datetime(2024, 4, 1, 18, 0, tzinfo=JST)))
    assert record.requested_at == datetime(2024, 4, 1, 9, 0, tzinfo=UTC)
    assert json.loads(record.canonical_bytes())["requested_at"] == "2024-04-01T09:00:00.000000Z"
    assert format_utc(datetime(5, 1, 2, 3, 4, 5, 6, tzinfo=UTC)) == "0005-01-02T03:04:05.000006Z"


def test_canonical_bytes_are_rfc8785_and_parse_back():
    for n in range(12):
        record = sample_record(n=n)
        assert record.canonical_bytes() == rfc8785.dumps(record.model_dump(mode="json"))
        assert parse_entry(record.canonical_bytes()) == record
    assert "照会許可用照合リスト".encode() in sample_record(n=2).canonical_bytes()


def test_pruning_record_round_trips_and_checks_its_range():
    notice = RetentionPruning(
        tenant="112224",
        pruned_before=datetime(2017, 4, 1, tzinfo=UTC),
        first_index=0,
        end_index=10,
        records_pruned=9,
        pruned_at=datetime(2024, 4, 1, tzinfo=UTC),
    )
    assert parse_entry(notice.canonical_bytes()) == notice
    with pytest.raises(ValidationError):
        RetentionPruning(**{**notice.model_dump(), "end_index": 5, "first_index": 6, "records_pruned": 0})
    with pytest.raises(ValidationError):
        RetentionPruning(**{**notice.model_dump(), "records_pruned": 11})


_scalars = st.one_of(
    st.text(max_size=16),
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.booleans(),
    st.none(),
)


@given(st.dictionaries(st.text(alphabet=st.characters(max_codepoint=127), max_size=8), _scalars, max_size=8))
def test_fast_canonical_path_equals_the_rfc8785_encoder(document):
    try:
        expected = rfc8785.dumps(document)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        return  # lone surrogates: no canonical form, and records refuse them
    assert canonical_json(document) == expected


@given(st.dictionaries(st.text(max_size=4), st.one_of(_scalars, st.lists(st.integers(0, 9), max_size=3)), max_size=6))
def test_other_documents_go_to_the_rfc8785_encoder(document):
    try:
        expected = rfc8785.dumps(document)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        return
    assert canonical_json(document) == expected
