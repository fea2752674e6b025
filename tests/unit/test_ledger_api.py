"""The intermediate server's ledger over HTTP: auditors get checkpoints and proofs they can
check with the public key alone; the counter gets what may be disclosed to a person."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from renkei.testkit import staff_headers
from services.intermediate_server.app import SPEC
from services.intermediate_server.config import Settings
from shared.ledger import verify_consistency, verify_inclusion
from shared.ledger.signing import Checkpoint
from shared.ledger.testing import sample_records
from shared.trust import Principal

CITY = "112224"
ME = Principal("intermediate_server", CITY)


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


@pytest.fixture
def app(stack_files, nats_secured, database_url):
    from shared.service import build_app

    user, password = stack_files.login(ME)
    pg = None if database_url.startswith("sqlite") else database_url
    settings = Settings(city=CITY, data_dir=stack_files.data_dir, nats_url=nats_secured.url, nats_user=user, nats_password=password, database_url=pg)
    return build_app(SPEC, settings)


def test_an_auditor_checks_proofs_with_the_public_key_alone(app, stack_files):
    public_key = stack_files.directory.public_key(ME)
    with TestClient(app) as client:
        ledger = app.state.context.ledger
        ledger.append_many(sample_records(5, CITY))
        auditor = staff_headers(client, ["auditor"], user_id="a.auditor")
        first = client.post("/ledger/checkpoints", headers=auditor).json()
        ledger.append_many(sample_records(6, CITY, start=5))
        second = client.post("/ledger/checkpoints", headers=auditor).json()
        latest = client.get("/ledger/checkpoints/latest", headers=auditor).json()
        proof = client.get("/ledger/proofs/inclusion", params={"index": 7}, headers=auditor).json()
        consistency = client.get(
            "/ledger/proofs/consistency", params={"old_size": first["tree_size"], "new_size": second["tree_size"]}, headers=auditor
        ).json()
        evidence = client.get("/ledger/records/3", headers=auditor).json()
        beyond = client.get("/ledger/proofs/inclusion", params={"index": 99}, headers=auditor)

    assert latest == second and (first["tree_size"], second["tree_size"]) == (5, 11)
    for document in (first, second):
        Checkpoint.from_json(document).verify(public_key)
    head = Checkpoint.from_json(proof["checkpoint"])
    head.verify(public_key)
    verify_inclusion(unb64(proof["leaf_hash"]), proof["leaf_index"], proof["tree_size"], [unb64(h) for h in proof["proof"]], head.root_hash)
    verify_consistency(5, 11, unb64(first["root_hash"]), unb64(second["root_hash"]), [unb64(h) for h in consistency["proof"]])
    assert evidence["leaf_index"] == 3 and evidence["leaf_data"]
    assert beyond.status_code == 422


def test_only_auditors_reach_the_ledger(app):
    with TestClient(app) as client:
        anonymous = client.get("/ledger/checkpoints")
        clerk = client.get("/ledger/checkpoints", headers=staff_headers(client, ["disclosure_clerk"], user_id="c.clerk"))
    assert anonymous.status_code == 401
    assert clerk.status_code == 403


def test_disclosure_shows_what_may_be_disclosed_and_is_logged(app):
    with TestClient(app) as client:
        ledger = app.state.context.ledger
        records = sample_records(120, CITY)
        ledger.append_many(records)
        person = records[5].person_key  # record 5 is flagged 不開示 (non-disclosure)
        clerk = staff_headers(client, ["disclosure_clerk"], user_id="d.clerk")
        reply = client.get(f"/disclosure/{person}", headers=clerk).json()
        by_my_number = client.get("/disclosure/123456789018", headers=clerk)
        auditor = client.get(f"/disclosure/{person}", headers=staff_headers(client, ["auditor"], user_id="a.other"))
        entries = app.state.context.oplog.entries("disclosure.read")

    expected = [i for i, r in enumerate(records) if r.person_key == person and not r.non_disclosure]
    assert [r["index"] for r in reply["records"]] == expected and 5 not in expected
    assert {"requester", "provider", "requested_at", "item_code", "outcome"} <= set(reply["records"][0])
    assert by_my_number.status_code == 422  # records are never looked up by My Number
    assert auditor.status_code == 403
    assert ("d.clerk", person, "ok") in {(e.actor, e.person_key, e.outcome) for e in entries}


def test_the_periodic_sweep_prunes_past_retention_and_records_it(app, stack_files):
    from datetime import UTC, datetime

    from shared.ledger import Ledger, LedgerReader, verify_ledger
    from shared.ledger.retention import prune_past_retention
    from shared.trust import signing_key

    with TestClient(app):
        ledger = app.state.context.ledger
        ledger.append_many(sample_records(4, CITY))
        now = datetime.now(UTC)
        assert prune_past_retention(ledger, now).records_pruned == 0  # nothing is seven years old
        eight_years_on = now.replace(year=now.year + 8)
        later = Ledger(app.state.context.db.engine, CITY, signing_key(stack_files.data_dir, ME), clock=lambda: eight_years_on)
        result = prune_past_retention(later, eight_years_on)
        reader = LedgerReader(app.state.context.db.engine, CITY)
        report = verify_ledger(app.state.context.db.engine, CITY, stack_files.directory.public_key(ME))

    assert result.records_pruned == 4 and result.receipt is not None
    assert reader.tree_size() == 5  # the pruning is itself a record
    assert report.ok, report.failure
