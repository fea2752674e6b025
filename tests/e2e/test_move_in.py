"""The move-in flow of the assessment over real processes and a real nats-server.

The hub and the intermediate servers of Koshigaya and Soka run as their own processes
(the hub over mutual TLS), with Koshigaya's integrated address system and health
management, and nats-server with the stack's users and permissions; the flow is ``renkei
demo move-in``'s own: the person is enrolled at Koshigaya's health management before it
asks, and the doses it registered are read back from its register. Afterwards every
ledger involved verifies from its database and its public key alone.
"""

from __future__ import annotations

import asyncio

import pytest

from bench.move_in import CITIES, NetworkStack
from renkei.demo_cli import DOSES, KOSHIGAYA, SOKA, StackAccess, move_in
from renkei.testkit import database_url_for_test
from shared.db import database_url, make_engine, schema_name
from shared.ledger import HUB_TENANT, LedgerReader, verify_ledger
from shared.trust import Principal

pytestmark = pytest.mark.e2e


def _engine(stack: NetworkStack, service: str, city: str | None):
    url = database_url(stack.files.data_dir, service, city, stack.database_url)
    return make_engine(url, None if url.startswith("sqlite") else schema_name(service, city))


@pytest.fixture
def stack(tmp_path):
    with database_url_for_test(tmp_path) as url, NetworkStack(tmp_path / "stack", None if url.startswith("sqlite") else url, health=True) as running:
        yield running


def test_a_newcomers_vaccination_history_comes_from_the_neighbour_and_every_record_verifies(stack):
    access = StackAccess(stack.files.data_dir, stack.nats.url, stack.files.credentials, stack.database_url, health_url=stack.urls["health_mgmt"])
    summary = asyncio.run(move_in(access, seed=5))

    assert summary["status"] == "answered", summary
    assert summary["doses_received"] == len(DOSES)
    registered = summary["doses_registered"]  # read back from Koshigaya's register
    by_date = sorted(DOSES, key=lambda d: d["inoculation_date"])
    assert [(d["record_type"], d["inoculation_date"], d["lot_number"]) for d in registered] == [
        (d["record_type"], d["inoculation_date"], d["lot_number"]) for d in by_date
    ]
    assert all(d["source"] == "transfer" and d["vaccinated_before_move_in"] is True for d in registered)
    assert len({d["id"] for d in registered}) == len(DOSES)
    records = summary["provision_records"]
    assert [(r["kind"], r["outcome"]) for r in records[KOSHIGAYA]] == [("query", "requested"), ("answer_received", "provided")]
    assert [(r["kind"], r["outcome"]) for r in records[SOKA]] == [("provision", "provided")]

    directory = stack.files.directory
    for service, city, tenant in [("intermediate_server", c, c) for c in CITIES] + [("provision_network", None, HUB_TENANT)]:
        engine = _engine(stack, service, city)
        try:
            report = verify_ledger(engine, tenant, directory.public_key(Principal(service, city)))
            size = LedgerReader(engine, tenant).tree_size()
        finally:
            engine.dispose()
        assert report.ok, (tenant, report.failure)
        assert size >= 1
