"""The console reads each intermediate server's latest checkpoint over the bus and checks its
signature with the trust directory's key.

The operation ``intermediate_server.ledger_checkpoint`` (shared/contracts/ledger.py) is
served by the kernel of a real intermediate server (its real ledger), with the NATS
permissions derived from the suite's registry.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from renkei.testkit import NatsServer, SecuredStackFiles, staff_headers
from services.intermediate_server.app import SPEC as INTERMEDIATE
from services.intermediate_server.config import Settings as IntermediateSettings
from services.ops_console.app import SPEC as CONSOLE
from services.ops_console.config import Settings as ConsoleSettings
from shared.contracts import REGISTRY
from shared.contracts.ledger import CheckpointQuery, LatestCheckpoint, SignedCheckpoint
from shared.ledger.signing import Checkpoint
from shared.ledger.testing import sample_records
from shared.service import build_app
from shared.trust import Principal
from tests.unit.test_ops_console import serving, settings_for, write_members

CITIES = ["112224", "112216"]


LEDGER_CHECKPOINT = REGISTRY.operation("intermediate_server", "ledger_checkpoint")


def forged_checkpoint(ctx):
    """A server that answers with a checkpoint whose root was changed after signing."""

    async def handler(request: CheckpointQuery, caller) -> LatestCheckpoint:
        document = (await asyncio.to_thread(ctx.ledger.checkpoint)).to_json()
        document["tree_size"] += 1
        return LatestCheckpoint(checkpoint=SignedCheckpoint(**document))

    return handler


@pytest.fixture
def files(tmp_path):
    return SecuredStackFiles(tmp_path / "data", CITIES, registry=REGISTRY)


@pytest.fixture
def nats(tmp_path, files):
    folder = tmp_path / "nats"
    folder.mkdir()
    server = NatsServer(folder, files.nats_config()).start()
    yield server
    server.kill()


def intermediate_app(files, nats, database_url, city, factory=None):
    settings = settings_for(IntermediateSettings, Principal("intermediate_server", city), files, nats, database_url)
    # the intermediate server's ledger and this operation alone: its other operations are not what is tested here
    app = build_app(replace(INTERMEDIATE, served={"ledger_checkpoint": factory} if factory else {}, consumed={}), settings)
    return app


def test_checkpoints_are_read_over_the_bus_and_their_signatures_checked(files, nats, database_url):
    honest = intermediate_app(files, nats, database_url, "112224")  # the kernel's own answer
    forger = intermediate_app(files, nats, database_url, "112216", forged_checkpoint)
    console = build_app(CONSOLE, settings_for(ConsoleSettings, Principal("ops_console"), files, nats, None, refresh_seconds=0))
    with serving(honest) as honest_url, serving(forger) as forger_url, TestClient(console) as client:
        write_members(files.data_dir, nats, [("intermediate_server", "112224", honest_url), ("intermediate_server", "112216", forger_url)])
        headers = staff_headers(client, ["ops_operator"], user_id="o.ueda")
        before = {row["principal"]: row for row in client.get("/api/overview", headers=headers).json()["ledgers"]}
        honest.state.context.ledger.append_many(sample_records(5, "112224"))
        forger.state.context.ledger.append_many(sample_records(3, "112216"))
        made = honest.state.context.ledger.checkpoint()
        after = {row["principal"]: row for row in client.get("/api/overview", headers=headers).json()["ledgers"]}

    assert before["intermediate_server@112224"]["checkpoint"] is None
    assert before["intermediate_server@112224"]["detail"] == "no checkpoint yet"
    good = after["intermediate_server@112224"]
    assert good["verified"] is True and good["checkpoint"]["tree_size"] == 5 == made.tree_size
    assert good["checkpoint"]["tenant"] == "112224"
    bad = after["intermediate_server@112216"]
    assert bad["verified"] is False and "does not verify" in bad["detail"]


def test_a_checkpoint_of_another_tenant_or_key_is_refused(files):
    from datetime import UTC, datetime

    from services.ops_console import ledgers
    from shared.trust import signing_key

    koshigaya, soka = Principal("intermediate_server", "112224"), Principal("intermediate_server", "112216")
    now = datetime.now(UTC)
    own = Checkpoint.sign(signing_key(files.data_dir, soka), 1, "112216", 4, b"\x01" * 32, now).to_json()
    assert ledgers.judge(own, soka, files.directory, now)["verified"] is True
    # Soka's genuine checkpoint passed off as Koshigaya's: the wrong tenant, and the wrong key
    shown = ledgers.judge(own, koshigaya, files.directory, now)
    assert shown["verified"] is False and "not of 112224" in shown["detail"]
    signed_by_soka = Checkpoint.sign(signing_key(files.data_dir, soka), 1, "112224", 4, b"\x01" * 32, now).to_json()
    assert ledgers.judge(signed_by_soka, koshigaya, files.directory, now)["verified"] is False
    assert ledgers.judge({"kind": "seal"}, koshigaya, files.directory, now)["verified"] is False


def test_an_outsider_cannot_ask_for_a_checkpoint(files, nats, database_url):
    """The operation's allowlist names the ops console alone: NATS keeps other services from
    even publishing there, and a token of another service is refused by the allowlist."""
    from renkei.testkit import identity
    from shared.bus import Bus
    from shared.errors import Forbidden, Unavailable

    honest = intermediate_app(files, nats, database_url, "112224")

    async def ask(principal: Principal, login: Principal):
        bus = Bus(principal, *identity(files.data_dir, files.directory, principal))
        await bus.connect(nats.url, *files.login(login))
        try:
            return await bus.request(LEDGER_CHECKPOINT, "112224", CheckpointQuery(), timeout=1)
        finally:
            await bus.close()

    console, hub, health = Principal("ops_console"), Principal("provision_network"), Principal("health_mgmt", "112224")
    with TestClient(honest):
        assert asyncio.run(ask(console, console)).checkpoint is None
        with pytest.raises(Unavailable):  # NATS refuses health management's publish: no answer comes
            asyncio.run(ask(health, health))
        with pytest.raises(Forbidden):  # the hub's token, even on a NATS login that may publish there
            asyncio.run(ask(hub, console))
        entries = honest.state.context.oplog.entries("intermediate_server.ledger_checkpoint")
    assert ("provision_network", "urn:renkei:problem:forbidden") in {(e.actor, e.outcome) for e in entries}
