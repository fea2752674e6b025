"""The network refuses what it must, and every refusal leaves a provision record (M18, M22, M25, M28).

Against the real hub and intermediate servers on real sockets: a query outside the
permitted-query list, an expired permit, a replayed permit, a permit for another provider,
a forged permit, a tampered ciphertext. The refused party is made to speak the protocol
directly, with genuine certificates, tokens and request proofs: only the content is wrong.
"""

from __future__ import annotations

import base64
import time

import pytest

from services.intermediate_server import providing
from shared.contracts import network as net
from shared.crypto import sign_document
from shared.trust import Principal, signing_key
from tests.unit.test_intermediate_server_support import (
    HEALTH,
    HUB,
    KOSHIGAYA,
    OP,
    SOKA,
    announce,
    call,
    ledger_records,
    listener_url,
    people,
    register_doses,
    runtime,
    signed_post,
    symbol_count,
    two_cities,
    vaccination_query,
    wait_for_result,
    wait_until,
)

KOSHIGAYA_SERVER = Principal("intermediate_server", KOSHIGAYA)
SOKA_SERVER = Principal("intermediate_server", SOKA)


@pytest.fixture
def network(tmp_path, database_url):
    with two_cities(tmp_path, database_url, permit_lifetime_seconds=3) as (files, nats, hub, k, s):
        person = people(1, seed=21)[0]
        announce(files, nats, SOKA, [person])
        announce(files, nats, KOSHIGAYA, [person])
        wait_until(lambda: symbol_count(s) == 1 and symbol_count(k) == 1, what="symbols")
        register_doses(files, nats, SOKA, [person], per_person=2)
        yield files, nats, hub, k, s, person


def _symbol(client, person, city) -> str:
    from services.intermediate_server import symbols

    rt = runtime(client)
    with rt.ctx.db.session() as session:
        return symbols.symbol_of(session, rt.tenant, person.numbers[city])


def _permit_request(koshigaya, person, **changes) -> net.PermitRequest:
    """Koshigaya's request for a permit to ask Soka for the person's vaccination records."""
    return net.PermitRequest(
        query_id=changes.pop("query_id", "a" * 32),
        provider=SOKA,
        affair_code=net.VACCINATION_AFFAIR,
        procedure_code=net.MOVE_IN_HISTORY_PROCEDURE,
        item_code=net.VACCINATION_RECORDS,
        requester_symbol=_symbol(koshigaya, person, KOSHIGAYA),
    ).model_copy(update=changes)


def _permit(files, hub, koshigaya, person, **changes) -> net.SignedPermit:
    request = _permit_request(koshigaya, person, **changes)
    response = signed_post(files, KOSHIGAYA_SERVER, "provision_network", hub.url, net.PERMITS_PATH, request)
    assert response.status_code == 200, response.text
    return net.SignedPermit.model_validate_json(response.content)


def _deliver_as_hub(files, server, path: str, payload):
    return signed_post(files, HUB, f"intermediate_server@{runtime(server).tenant}", listener_url(server), path, payload)


def test_a_query_outside_the_list_is_refused_by_the_hub_and_recorded_on_both_sides(network):
    files, nats, hub, koshigaya, soka, person = network
    # The vaccination procedure may not ask for local-tax information.
    outside = vaccination_query(
        person, affair_code="JM01400000000001", procedure_code=net.MOVE_IN_HISTORY_PROCEDURE, item_code=net.LOCAL_TAX
    )
    accepted = call(files, nats, HEALTH[KOSHIGAYA], OP["intermediate_server.query"], KOSHIGAYA, outside)
    result = wait_for_result(files, nats, KOSHIGAYA, accepted.query_id)
    assert result.status == "refused" and "permitted-query list" in result.refusal_reason
    assert result.records is None
    hub_records = ledger_records(hub)
    assert [(r.outcome, r.item_code) for r in hub_records] == [("permit_refused", net.LOCAL_TAX)]
    assert "may not ask for the item" in hub_records[0].refusal_reason
    asked = ledger_records(koshigaya)
    assert [(r.kind, r.outcome, r.serial_number) for r in asked] == [("query", "refused", hub_records[0].serial_number)]
    assert ledger_records(soka) == []  # nothing reached the provider


def test_an_expired_permit_is_refused_by_the_hub_and_by_the_provider(network):
    files, _nats, hub, koshigaya, soka, person = network
    permit = _permit(files, hub, koshigaya, person)
    time.sleep(3.2)  # the hub was started with three-second permits
    relayed = signed_post(
        files, KOSHIGAYA_SERVER, "provision_network", hub.url, net.QUERIES_PATH, net.SentQuery(permit=permit)
    )
    assert relayed.status_code == 403 and "expired" in relayed.json()["detail"]
    direct = _deliver_as_hub(
        files, soka, net.PROVIDE_PATH, net.RoutedQuery(permit=permit, provider_symbol=_symbol(soka, person, SOKA))
    )
    assert (
        direct.status_code == 200
        and direct.json()["status"] == "refused"
        and "expired" in direct.json()["refusal_reason"]
    )
    assert direct.json()["answer"] is None
    assert [(r.outcome, r.refusal_reason) for r in ledger_records(hub)][-1] == (
        "permit_refused",
        "the permit has expired",
    )
    assert [(r.kind, r.outcome, r.refusal_reason) for r in ledger_records(soka)] == [
        ("provision", "refused", "the permit has expired")
    ]


def test_a_replayed_permit_is_refused_by_the_hub_and_by_the_provider(network):
    files, _nats, hub, koshigaya, soka, person = network
    permit = _permit(files, hub, koshigaya, person)
    first = signed_post(
        files, KOSHIGAYA_SERVER, "provision_network", hub.url, net.QUERIES_PATH, net.SentQuery(permit=permit)
    )
    assert first.status_code == 200 and first.json()["status"] == "provided"
    again = signed_post(
        files, KOSHIGAYA_SERVER, "provision_network", hub.url, net.QUERIES_PATH, net.SentQuery(permit=permit)
    )
    assert again.status_code == 403 and "already been used" in again.json()["detail"]
    assert again.json()["record_index"] == 1  # the refusal's place in the hub's ledger, after the permit's
    # A copy of what the hub delivered, delivered again: the provider has seen its serial number.
    replay = _deliver_as_hub(
        files, soka, net.PROVIDE_PATH, net.RoutedQuery(permit=permit, provider_symbol=_symbol(soka, person, SOKA))
    )
    assert replay.json()["status"] == "refused" and replay.json()["answer"] is None
    assert [r.outcome for r in ledger_records(hub)] == ["permit_issued", "permit_refused"]
    assert [(r.outcome, r.refusal_reason) for r in ledger_records(soka)] == [
        ("provided", None),
        ("refused", "the permit has already been used"),
    ]


def test_a_permit_for_another_provider_or_a_forged_one_is_refused_and_recorded(network):
    files, _nats, hub, koshigaya, _soka, person = network
    permit = _permit(files, hub, koshigaya, person)  # for Soka
    misrouted = _deliver_as_hub(
        files,
        koshigaya,
        net.PROVIDE_PATH,
        net.RoutedQuery(permit=permit, provider_symbol=_symbol(koshigaya, person, KOSHIGAYA)),
    )
    assert misrouted.json()["status"] == "refused" and "for the provider 112216" in misrouted.json()["refusal_reason"]
    forged = permit.model_copy(update={"permit": permit.permit.model_copy(update={"provider": KOSHIGAYA})})
    rewritten = _deliver_as_hub(
        files,
        koshigaya,
        net.PROVIDE_PATH,
        net.RoutedQuery(permit=forged, provider_symbol=_symbol(koshigaya, person, KOSHIGAYA)),
    )
    assert rewritten.json()["status"] == "refused" and "signature" in rewritten.json()["refusal_reason"]
    refused = [(r.kind, r.outcome) for r in ledger_records(koshigaya)]
    assert refused == [("provision", "refused"), ("provision", "refused")]
    # Nor does the hub relay a forged permit.
    relayed = signed_post(
        files, KOSHIGAYA_SERVER, "provision_network", hub.url, net.QUERIES_PATH, net.SentQuery(permit=forged)
    )
    assert relayed.status_code == 403 and "not as the hub issued it" in relayed.json()["detail"]
    assert ledger_records(hub)[-1].outcome == "permit_refused"


def _signed_as_hub(files, permit: net.ProvisionPermit) -> net.SignedPermit:
    """A permit the hub's own key signs: what a hub that erred, or whose key was stolen, would send."""
    signature = sign_document(signing_key(files.data_dir, HUB), net.PERMIT_LABEL, permit.model_dump(mode="json"))
    return net.SignedPermit(permit=permit, signature=signature)


def _statement_signed_by(files, signer: Principal, statement: net.KeyStatement) -> net.SignedKeyStatement:
    return net.SignedKeyStatement(
        statement=statement,
        signature=sign_document(
            signing_key(files.data_dir, signer), net.KEY_STATEMENT_LABEL, statement.model_dump(mode="json")
        ),
    )


def test_the_provider_rechecks_route_requester_key_and_its_own_list_even_under_the_hubs_signature(network):
    """M25: the provider does not take the hub's word for it."""
    files, _nats, hub, koshigaya, soka, person = network
    genuine = _permit(files, hub, koshigaya, person).permit
    symbol = _symbol(soka, person, SOKA)
    statement = genuine.requester_key.statement
    cases = {
        "route": genuine.model_copy(
            update={"route": [str(KOSHIGAYA_SERVER), "provision_network", str(KOSHIGAYA_SERVER)]}
        ),
        "not the requester's own": genuine.model_copy(
            update={
                "requester_key": _statement_signed_by(
                    files, SOKA_SERVER, statement.model_copy(update={"principal": str(SOKA_SERVER)})
                )
            }
        ),
        "not signed by the requester's": genuine.model_copy(
            update={"requester_key": _statement_signed_by(files, SOKA_SERVER, statement)}
        ),
        "not on this city's copy of the permitted-query list": genuine.model_copy(update={"item_code": net.LOCAL_TAX}),
    }
    for i, (reason, permit) in enumerate(cases.items()):
        permit = permit.model_copy(update={"serial_number": f"{permit.serial_number[:-2]}{i:02d}"})
        reply = _deliver_as_hub(
            files, soka, net.PROVIDE_PATH, net.RoutedQuery(permit=_signed_as_hub(files, permit), provider_symbol=symbol)
        )
        assert reply.status_code == 200 and reply.json()["status"] == "refused", reply.text
        assert reason in reply.json()["refusal_reason"] and reply.json().get("answer") is None
    recorded = [(r.kind, r.outcome) for r in ledger_records(soka)]
    assert recorded == [("provision", "refused")] * len(cases)


def test_only_the_hub_may_deliver_queries_to_an_intermediate_server(network):
    files, _nats, hub, koshigaya, soka, person = network
    permit = _permit(files, hub, koshigaya, person)
    routed = net.RoutedQuery(permit=permit, provider_symbol=_symbol(soka, person, SOKA))
    as_neighbour = signed_post(
        files, KOSHIGAYA_SERVER, f"intermediate_server@{SOKA}", listener_url(soka), net.PROVIDE_PATH, routed
    )
    assert as_neighbour.status_code == 403
    assert ledger_records(soka) == []


def test_a_tampered_answer_is_refused_by_the_requester_and_recorded(network):
    files, nats, _hub, koshigaya, soka, person = network
    benefits = vaccination_query(
        person, affair_code="JM01400000000002", procedure_code="JT01400000002701", item_code=net.VACCINATION_BENEFITS
    )
    accepted = call(files, nats, HEALTH[KOSHIGAYA], OP["intermediate_server.query"], KOSHIGAYA, benefits)
    held = wait_for_result(files, nats, KOSHIGAYA, accepted.query_id, final=False)
    assert held.status == "held"
    # The genuine answer, sealed as the provider would seal it, with one bit flipped on the way.
    rt = runtime(soka)
    (item,) = providing.waiting(rt)
    with rt.ctx.db.session() as session:
        from services.intermediate_server.models import ReviewItem

        signed = net.SignedPermit.model_validate_json(
            session.get(ReviewItem, (rt.tenant, item["serial_number"])).permit
        )
    sealed = providing._sealed_for(signed, [])
    raw = bytearray(base64.b64decode(sealed.ciphertext))
    raw[-5] ^= 0x01
    tampered = sealed.model_copy(update={"ciphertext": base64.b64encode(bytes(raw)).decode()})
    outcome = net.ProvisionOutcome(
        serial_number=held.serial_number, query_id=held.query_id, status="provided", answer=tampered
    )
    delivered = _deliver_as_hub(files, koshigaya, net.DELIVER_PATH, outcome)
    assert delivered.status_code == 200
    result = wait_for_result(files, nats, KOSHIGAYA, accepted.query_id)
    assert result.status == "failed" and "does not open" in result.refusal_reason and result.records is None
    received = ledger_records(koshigaya)[-1]
    assert (received.kind, received.outcome) == ("answer_received", "refused")
    assert "does not open" in received.refusal_reason


# --- the batch routes: the same checks, item by item ---------------------------------------


def test_a_batch_of_permit_requests_gets_a_permit_or_a_refusal_for_each_and_each_is_recorded(network):
    files, _nats, hub, koshigaya, _soka, person = network
    asked = _permit_request(koshigaya, person, query_id="b" * 32)
    off_list = asked.model_copy(update={"query_id": "c" * 32, "item_code": net.LOCAL_TAX})
    unknown = asked.model_copy(update={"query_id": "d" * 32, "requester_symbol": "a" * 40})
    batch = net.PermitBatch(requests=[asked, off_list, unknown])
    reply = signed_post(files, KOSHIGAYA_SERVER, "provision_network", hub.url, net.PERMITS_BATCH_PATH, batch)
    assert reply.status_code == 200, reply.text
    permit, refused, nobody = net.PermitBatchReply.model_validate_json(reply.content).unpacked()
    assert isinstance(permit, net.SignedPermit) and permit.permit.query_id == "b" * 32
    assert refused.status == 403 and "permitted-query list" in refused.detail and refused.extensions["serial_number"]
    assert nobody.status == 403 and "no symbol" in nobody.detail
    recorded = {r.serial_number: (r.outcome, r.item_code) for r in ledger_records(hub)}
    assert recorded == {
        permit.permit.serial_number: ("permit_issued", net.VACCINATION_RECORDS),
        refused.extensions["serial_number"]: ("permit_refused", net.LOCAL_TAX),
        nobody.extensions["serial_number"]: ("permit_refused", net.VACCINATION_RECORDS),
    }


def test_a_batch_relay_honours_each_permit_once_and_refuses_a_forged_one_beside_it(network):
    files, _nats, hub, koshigaya, soka, person = network
    permit = _permit(files, hub, koshigaya, person)
    forged = permit.model_copy(update={"permit": permit.permit.model_copy(update={"query_id": "e" * 32})})
    batch = net.SentQueryBatch(queries=[net.SentQuery(permit=p) for p in (permit, permit, forged)])
    reply = signed_post(files, KOSHIGAYA_SERVER, "provision_network", hub.url, net.QUERIES_BATCH_PATH, batch)
    assert reply.status_code == 200, reply.text
    provided, replayed, refused = net.OutcomeBatchReply.model_validate_json(reply.content).unpacked()
    assert provided.status == "provided" and provided.answer is not None and provided.query_id == permit.permit.query_id
    assert replayed.status == 403 and "already been used" in replayed.detail
    assert refused.status == 403 and "not as the hub issued it" in refused.detail
    assert [r.outcome for r in ledger_records(hub)] == ["permit_issued", "permit_refused", "permit_refused"]
    assert [(r.kind, r.outcome) for r in ledger_records(soka)] == [("provision", "provided")]  # one answer left Soka


def test_a_batch_delivered_to_a_provider_is_checked_query_by_query(network):
    files, _nats, hub, koshigaya, soka, person = network
    permit = _permit(files, hub, koshigaya, person)
    symbol = _symbol(soka, person, SOKA)
    expired = _signed_as_hub(
        files,
        permit.permit.model_copy(
            update={"serial_number": permit.permit.serial_number[:-2] + "99", "expires_at": permit.permit.issued_at}
        ),
    )
    batch = net.RoutedQueryBatch(
        queries=[net.RoutedQuery(permit=p, provider_symbol=symbol) for p in (permit, expired, permit)]
    )
    reply = _deliver_as_hub(files, soka, net.PROVIDE_BATCH_PATH, batch)
    assert reply.status_code == 200, reply.text
    outcomes = net.OutcomeBatchReply.model_validate_json(reply.content).unpacked()
    assert [o.status for o in outcomes] == ["provided", "refused", "refused"]
    assert "expired" in outcomes[1].refusal_reason and "already been used" in outcomes[2].refusal_reason
    assert outcomes[1].answer is None and outcomes[2].answer is None
    assert [r.outcome for r in ledger_records(soka)] == ["provided", "refused", "refused"]


def test_only_intermediate_servers_may_send_batches_to_the_hub_and_only_the_hub_to_a_provider(network):
    files, _nats, hub, koshigaya, soka, person = network
    permit = _permit(files, hub, koshigaya, person)
    outsider = Principal("ops_console")
    asked = net.PermitBatch(requests=[_permit_request(koshigaya, person, query_id="f" * 32)])
    assert signed_post(files, outsider, "provision_network", hub.url, net.PERMITS_BATCH_PATH, asked).status_code == 403
    sent = net.SentQueryBatch(queries=[net.SentQuery(permit=permit)])
    assert signed_post(files, outsider, "provision_network", hub.url, net.QUERIES_BATCH_PATH, sent).status_code == 403
    routed = net.RoutedQueryBatch(queries=[net.RoutedQuery(permit=permit, provider_symbol=_symbol(soka, person, SOKA))])
    as_neighbour = signed_post(
        files, KOSHIGAYA_SERVER, f"intermediate_server@{SOKA}", listener_url(soka), net.PROVIDE_BATCH_PATH, routed
    )
    assert as_neighbour.status_code == 403
    assert ledger_records(soka) == [] and [r.outcome for r in ledger_records(hub)] == ["permit_issued"]


def test_an_answer_that_cannot_be_sealed_is_refused_and_recorded_without_failing_the_rest_of_its_batch(network):
    files, _nats, hub, koshigaya, soka, person = network
    genuine = _permit(files, hub, koshigaya, person)
    statement = genuine.permit.requester_key.statement.model_copy(update={"public_key": base64.b64encode(bytes(32)).decode()})
    unusable = genuine.permit.model_copy(
        update={"serial_number": genuine.permit.serial_number[:-2] + "98", "requester_key": _statement_signed_by(files, KOSHIGAYA_SERVER, statement)}
    )
    symbol = _symbol(soka, person, SOKA)
    batch = net.RoutedQueryBatch(queries=[net.RoutedQuery(permit=p, provider_symbol=symbol) for p in (_signed_as_hub(files, unusable), genuine)])
    reply = _deliver_as_hub(files, soka, net.PROVIDE_BATCH_PATH, batch)
    assert reply.status_code == 200, reply.text
    refused, provided = net.OutcomeBatchReply.model_validate_json(reply.content).unpacked()
    assert refused.status == "refused" and "could not be sealed" in refused.refusal_reason and refused.answer is None
    assert provided.status == "provided" and provided.answer is not None
    assert [r.outcome for r in ledger_records(soka)] == ["refused", "provided"]


def _ledger_fails(monkeypatch, app) -> None:
    """The app's ledger refuses every append from now on (a full disk, say)."""

    def refuse(*_args, **_kwargs):
        raise RuntimeError("the ledger cannot be written")

    monkeypatch.setattr(app.app.state.context.ledger, "append_in", refuse)


def test_a_permit_whose_record_cannot_be_written_is_never_issued(network, monkeypatch):
    from sqlalchemy import func, select

    from services.provision_network.models import Permit

    files, _nats, hub, koshigaya, _soka, person = network
    _ledger_fails(monkeypatch, hub)
    batch = net.PermitBatch(requests=[_permit_request(koshigaya, person, query_id="f" * 32)])
    reply = signed_post(files, KOSHIGAYA_SERVER, "provision_network", hub.url, net.PERMITS_BATCH_PATH, batch)
    assert reply.status_code == 200, reply.text
    (refused,) = net.PermitBatchReply.model_validate_json(reply.content).unpacked()
    assert refused.status == 503 and "record" in refused.detail
    with hub.app.state.context.db.session() as session:  # the permit went with its record
        assert session.scalar(select(func.count()).select_from(Permit).where(Permit.query_id == "f" * 32)) == 0


def test_a_provision_whose_record_cannot_be_written_leaves_nothing_and_its_permit_unused(network, monkeypatch):
    from sqlalchemy import func, select

    from services.intermediate_server.models import UsedPermit

    files, _nats, hub, koshigaya, soka, person = network
    permit = _permit(files, hub, koshigaya, person)
    routed = net.RoutedQueryBatch(queries=[net.RoutedQuery(permit=permit, provider_symbol=_symbol(soka, person, SOKA))])
    _ledger_fails(monkeypatch, soka)
    reply = _deliver_as_hub(files, soka, net.PROVIDE_BATCH_PATH, routed)
    assert reply.status_code == 200, reply.text
    (failed,) = net.OutcomeBatchReply.model_validate_json(reply.content).unpacked()
    assert failed.status == 500 and "recorded" in failed.detail  # no sealed answer left
    with runtime(soka).ctx.db.session() as session:  # the claim went with the record: the permit is still unused
        assert session.scalar(select(func.count()).select_from(UsedPermit)) == 0
    monkeypatch.undo()
    again = _deliver_as_hub(files, soka, net.PROVIDE_BATCH_PATH, routed)
    (provided,) = net.OutcomeBatchReply.model_validate_json(again.content).unpacked()
    assert provided.status == "provided" and [r.outcome for r in ledger_records(soka)] == ["provided"]


def test_naming_an_unknown_institution_does_not_make_the_hub_read_its_directory_but_a_registration_does(network):
    from sqlalchemy import event

    from services.provision_network.hub import hub_of

    files, _nats, hub, koshigaya, _soka, person = network
    directory = hub_of(hub.app.state.context)
    reads = []

    def count(_conn, _cursor, statement, *_args) -> None:
        if statement.rstrip().endswith("FROM institutions"):  # the whole directory, not one institution
            reads.append(statement)

    engine = hub.app.state.context.db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        koshigaya_route = directory.route(KOSHIGAYA)  # a fresh copy, read now or already
        before = len(reads)
        # Permits asked for, and a query relayed, naming a provider that is not on the network.
        unknown = "131016"
        batch = net.PermitBatch(requests=[_permit_request(koshigaya, person, query_id=f"{n:032x}", provider=unknown) for n in range(3)])
        reply = signed_post(files, KOSHIGAYA_SERVER, "provision_network", hub.url, net.PERMITS_BATCH_PATH, batch)
        assert [r.status for r in net.PermitBatchReply.model_validate_json(reply.content).unpacked()] == [403] * 3
        forged = _permit(files, hub, koshigaya, person)
        forged = forged.model_copy(update={"permit": forged.permit.model_copy(update={"provider": unknown})})
        relayed = signed_post(files, KOSHIGAYA_SERVER, "provision_network", hub.url, net.QUERIES_PATH, net.SentQuery(permit=forged))
        assert relayed.status_code == 403 and "not as the hub issued it" in relayed.json()["detail"]
        assert len(reads) == before  # the copy was fresh: nothing a caller names makes the hub read again
        directory.register(KOSHIGAYA, KOSHIGAYA, net.Registration(network_url=koshigaya_route.network_url, answer_key=koshigaya_route.answer_key))
        assert directory.route(KOSHIGAYA) == koshigaya_route
        assert len(reads) == before + 1  # a registration: the next use reads the directory again
    finally:
        event.remove(engine, "before_cursor_execute", count)
