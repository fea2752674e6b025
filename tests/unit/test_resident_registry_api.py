"""The registry's counter as a running service, on a real nats-server and database: input
checks that store nothing, staff roles, the operation log, the change feed reaching
JetStream through the relay, and nothing served on the bus beyond ping."""

from __future__ import annotations

import asyncio
import json

import nats
import pytest
from nats.errors import NoRespondersError

from renkei.testkit import make_bus, staff_headers
from shared import nats_config
from shared.bus import inbox_prefix
from shared.contracts import REGISTRY
from shared.contracts.system import PingRequest
from shared.errors import Forbidden
from shared.nats_config import nats_user
from shared.trust import Principal
from tests.unit.test_resident_registry_support import (
    CITY,
    REGISTRY_PRINCIPAL,
    birth,
    consume_changes,
    counts,
    outbox_events,
    person,
    running_registry,
)

PING = REGISTRY.operation("resident_registry", "ping")


@pytest.fixture
def registry(stack_files, nats_secured, database_url):
    with running_registry(stack_files, nats_secured, database_url) as client:
        yield client


def db_of(client):
    return client.app.state.context.db


def oplog(client, operation: str):
    return [(e.actor, e.person_key, e.outcome) for e in reversed(client.app.state.context.oplog.entries(operation))]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("my_number", "123456789012"),  # wrong check digit
        ("resident_code", "12345-67890"),  # malformed
        ("birth_date", "2023-02-30"),  # no such day
        ("effective_date", "2024-04-31"),
        ("family_name", ""),  # empty name
        ("given_name", "\u3000 "),
    ],
)
def test_a_change_failing_an_input_check_is_refused_naming_the_field_and_stores_nothing(registry, field, value):
    headers = staff_headers(registry, ["registrar"])
    before = counts(db_of(registry))
    body = {"kind": "move_in", "effective_date": "2024-04-01", **person(), field: value}

    reply = registry.post("/changes", headers=headers, json=body)

    assert reply.status_code == 422 and reply.headers["content-type"] == "application/problem+json"
    problem = reply.json()
    assert problem["type"] == "urn:renkei:problem:invalid-request"
    assert [error["loc"] for error in problem["errors"]] == [["body", field]]
    if value.strip():  # a rejected item is personal data: the answer does not repeat it
        assert value not in json.dumps(problem, ensure_ascii=False)
    assert counts(db_of(registry)) == before


def test_a_change_missing_an_item_of_its_kind_stores_nothing(registry):
    headers = staff_headers(registry, ["registrar"])
    body = {k: v for k, v in birth().items() if k != "given_name"}
    reply = registry.post("/changes", headers=headers, json=body)
    assert reply.status_code == 422
    assert reply.json()["errors"] == [{"loc": ["body", "given_name"], "msg": "a birth needs given_name", "type": "missing"}]
    assert counts(db_of(registry)) == {"residents": 0, "changes": 0, "events": 0}


def test_record_read_and_list_a_persons_changes(registry):
    headers = staff_headers(registry, ["registrar"], user_id="clerk-sato")
    born = registry.post("/changes", headers=headers, json=birth())
    assert born.status_code == 201
    code = born.json()["resident"]["resident_code"]
    moved = registry.post(
        "/changes",
        headers=headers,
        json={"kind": "address_change", "effective_date": "2024-06-01", "resident_code": code,
              "address": "埼玉県越谷市南越谷四丁目5番6号", "town": "南越谷"},
    )
    assert moved.status_code == 201

    entry = registry.get(f"/residents/{code}", headers=headers)
    changes = registry.get(f"/residents/{code}/changes", headers=headers)

    assert entry.status_code == 200 and entry.json()["town"] == "南越谷" and entry.json()["status"] == "resident"
    assert [(c["kind"], c["recorded_by"], c["resident"]["town"]) for c in changes.json()] == [
        ("birth", "clerk-sato", "越ヶ谷"),
        ("address_change", "clerk-sato", "南越谷"),
    ]
    assert [c["change_id"] for c in changes.json()] == [born.json()["change_id"], moved.json()["change_id"]]


def test_impossible_transitions_are_conflicts_that_store_nothing(registry):
    headers = staff_headers(registry, ["registrar"])
    code = registry.post("/changes", headers=headers, json=birth()).json()["resident"]["resident_code"]
    assert registry.post("/changes", headers=headers, json={"kind": "death", "effective_date": "2024-07-01", "resident_code": code}).status_code == 201
    before = counts(db_of(registry))

    again = registry.post("/changes", headers=headers, json={"kind": "death", "effective_date": "2024-07-02", "resident_code": code})
    unknown = registry.post("/changes", headers=headers, json={"kind": "move_out", "effective_date": "2024-07-02", "resident_code": person()["resident_code"]})

    assert again.status_code == 409 and again.json()["type"] == "urn:renkei:problem:conflict"
    assert unknown.status_code == 409 and "no resident" in unknown.json()["detail"]
    assert counts(db_of(registry)) == before
    assert registry.get(f"/residents/{code}", headers=headers).json()["status"] == "deceased"  # M31: still on file


def test_the_outbox_gets_one_event_per_accepted_change_and_none_for_refused_ones(registry):
    headers = staff_headers(registry, ["registrar"])
    births = [registry.post("/changes", headers=headers, json=birth()).json() for _ in range(3)]
    first = births[0]["resident"]["resident_code"]
    accepted = [reply["change_id"] for reply in births]
    for body in (
        {"kind": "move_out", "effective_date": "2024-08-01", "resident_code": first},
        {"kind": "move_out", "effective_date": "2024-08-02", "resident_code": first},  # refused: already moved out
        {**birth(), "family_name": ""},  # refused: empty name
        {"kind": "correction", "effective_date": "2024-08-03", "resident_code": first},  # refused: nothing to correct
    ):
        reply = registry.post("/changes", headers=headers, json=body)
        if reply.status_code == 201:
            accepted.append(reply.json()["change_id"])

    assert len(accepted) == 4
    assert [event.change_id for event in outbox_events(db_of(registry))] == accepted


def test_each_change_reaches_jetstream_through_the_relay_and_validates(stack_files, nats_secured, database_url, tmp_path):
    with running_registry(stack_files, nats_secured, database_url) as registry:
        headers = staff_headers(registry, ["registrar"])
        replies = [registry.post("/changes", headers=headers, json=birth()).json() for _ in range(3)]
        code = replies[0]["resident"]["resident_code"]
        replies.append(registry.post("/changes", headers=headers, json={"kind": "move_out", "effective_date": "2024-09-01", "resident_code": code}).json())
        registry.post("/changes", headers=headers, json={"kind": "move_out", "effective_date": "2024-09-02", "resident_code": code})  # refused

        received = consume_changes(stack_files, nats_secured, tmp_path, expected=4)

    assert [event.change_id for event in received] == [reply["change_id"] for reply in replies]
    assert [event.kind for event in received] == ["birth", "birth", "birth", "move_out"]
    assert received[3].resident.status == "moved_out" and received[3].resident.resident_code == code
    assert received[0].resident.model_dump(mode="json") == replies[0]["resident"]


def test_reads_and_changes_go_to_the_operation_log_with_whose_data(registry):
    headers = staff_headers(registry, ["registrar"], user_id="clerk-tanaka")
    code = registry.post("/changes", headers=headers, json=birth()).json()["resident"]["resident_code"]
    registry.post("/changes", headers=headers, json={"kind": "move_out", "effective_date": "2024-10-01", "resident_code": code})
    registry.post("/changes", headers=headers, json={"kind": "move_out", "effective_date": "2024-10-02", "resident_code": code})
    registry.get(f"/residents/{code}", headers=headers)
    registry.get(f"/residents/{code}/changes", headers=headers)

    assert oplog(registry, "resident_registry.changes.record") == [
        ("clerk-tanaka", code, "ok"),
        ("clerk-tanaka", code, "ok"),
        ("clerk-tanaka", code, "http-409"),
    ]
    assert oplog(registry, "resident_registry.residents.read") == [("clerk-tanaka", code, "ok")]
    assert oplog(registry, "resident_registry.changes.list") == [("clerk-tanaka", code, "ok")]


def test_anonymous_callers_and_staff_without_the_permission_are_refused(registry):
    registrar = staff_headers(registry, ["registrar"])
    code = registry.post("/changes", headers=registrar, json=birth()).json()["resident"]["resident_code"]
    viewer = staff_headers(registry, ["viewer"], user_id="viewer-suzuki")
    before = counts(db_of(registry))

    anonymous_post = registry.post("/changes", json=birth())
    anonymous_read = registry.get(f"/residents/{code}")
    anonymous_list = registry.get(f"/residents/{code}/changes")
    forged = registry.get(f"/residents/{code}", headers={"Authorization": "Bearer rks_not-a-session"})
    viewer_post = registry.post("/changes", headers=viewer, json={"kind": "death", "effective_date": "2024-07-01", "resident_code": code})
    viewer_read = registry.get(f"/residents/{code}", headers=viewer)

    for reply in (anonymous_post, anonymous_read, anonymous_list, forged):
        assert reply.status_code == 401 and reply.json()["type"] == "urn:renkei:problem:unauthenticated"
        assert "resident_code" not in reply.json()
    assert viewer_post.status_code == 403 and viewer_post.json()["type"] == Forbidden.type
    assert viewer_read.status_code == 200 and viewer_read.json()["status"] == "resident"
    assert counts(db_of(registry)) == before
    assert ("anonymous", code, "http-401") in oplog(registry, "resident_registry.residents.read")
    assert ("viewer-suzuki", None, "http-403") in oplog(registry, "resident_registry.changes.record")


def test_on_the_bus_the_registry_answers_ping_to_insiders_only(stack_files, nats_secured, registry):
    async def scenario():
        results = []
        # The hub may not even publish there; its token, over a NATS login that may, is refused too.
        for principal in (Principal("ops_console"), Principal("provision_network")):
            bus = make_bus(stack_files.data_dir, stack_files.directory, principal)
            await bus.connect(nats_secured.url, *stack_files.login(Principal("ops_console")))
            try:
                results.append(await bus.request(PING, CITY, PingRequest(nonce="n-1")))
            except Exception as exc:
                results.append(exc)
            finally:
                await bus.close()
        return results

    reply, refused = asyncio.run(scenario())
    assert reply.principal == f"resident_registry@{CITY}"
    assert isinstance(refused, Forbidden)
    entries = registry.app.state.context.oplog.entries("resident_registry.ping")
    assert [(e.actor, e.outcome) for e in entries] == [("provision_network", "urn:renkei:problem:forbidden")]


def test_on_the_bus_the_registry_serves_nothing_beyond_ping(stack_files, nats_plain, database_url):
    """Even on a server without permissions nothing answers for the register: only ping is served."""
    user = nats_user(REGISTRY_PRINCIPAL)
    subscribe = nats_config.permissions(REGISTRY_PRINCIPAL, REGISTRY)["subscribe"]["allow"]
    assert [op.name for op in REGISTRY.served_by("resident_registry")] == ["ping"]
    assert sorted(subscribe) == sorted([f"{inbox_prefix(user)}.>", PING.subject(CITY)])

    async def scenario():
        nc = await nats.connect(nats_plain.url)
        outcomes = {}
        try:
            for operation in ("ping", "residents.read", "changes.record", "changes.list", "lookup"):
                try:
                    msg = await nc.request(f"renkei.{CITY}.resident_registry.{operation}", b"{}", timeout=2)
                    outcomes[operation] = msg.headers.get("Renkei-Error") if msg.headers else "answered"
                except NoRespondersError:
                    outcomes[operation] = "no responders"
        finally:
            await nc.close()
        return outcomes

    with running_registry(stack_files, nats_plain, database_url):
        outcomes = asyncio.run(scenario())
    assert outcomes.pop("ping") == "urn:renkei:problem:unauthenticated"  # served, and refuses a caller without a token
    assert set(outcomes.values()) == {"no responders"}
