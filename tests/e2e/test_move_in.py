"""The move-in flow of the assessment over real processes and a real nats-server.

The hub and the intermediate servers of Koshigaya and Soka run as their own processes
(the hub over mutual TLS), nats-server with the stack's users and permissions; the flow
is ``renkei demo move-in``'s own, playing the business systems on the bus. Afterwards
every ledger involved verifies from its database and its public key alone.
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
    with database_url_for_test(tmp_path) as url, NetworkStack(tmp_path / "stack", None if url.startswith("sqlite") else url) as running:
        yield running


def test_a_newcomers_vaccination_history_comes_from_the_neighbour_and_every_record_verifies(stack):
    access = StackAccess(stack.files.data_dir, stack.nats.url, stack.files.credentials, stack.database_url)
    summary = asyncio.run(move_in(access, seed=5))

    assert summary["status"] == "answered", summary
    assert summary["doses_received"] == len(DOSES)
    assert [d["lot_number"] for d in summary["doses_to_register"]] == [d["lot_number"] for d in DOSES]
    assert all(d["vaccinated_before_move_in"] for d in summary["doses_to_register"])
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
