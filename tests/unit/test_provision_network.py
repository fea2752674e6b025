"""The hub's own logic on a real database: symbols, the permitted-query list, permits."""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from services.provision_network import permits, symbols
from services.provision_network.models import Base, Institution, IssuedSymbol, Permit
from services.provision_network.permitted import match, parse_rows, permitted_list, signed_list
from shared.contracts import network as net
from shared.crypto import AnswerKeyPair, SignatureMismatch, sign_document, verify_document
from shared.db import Database, schema_name
from shared.ids import generate_resident_code

KOSHIGAYA, SOKA = "112224", "112216"


@pytest.fixture
def db(database_url):
    database = Database(database_url, None if database_url.startswith("sqlite") else schema_name("provision_network", None))
    Base.metadata.create_all(database.engine)
    yield database
    database.dispose()


def codes(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [generate_resident_code(rng) for _ in range(n)]


def test_symbols_are_per_institution_one_way_and_never_digits():
    issuer = symbols.SymbolIssuer(b"k" * 32)
    other_hub = symbols.SymbolIssuer(b"j" * 32)
    code = codes(1)[0]
    mine, theirs = issuer.symbol(KOSHIGAYA, code), issuer.symbol(SOKA, code)
    assert mine == issuer.symbol(KOSHIGAYA, code)  # stable
    assert mine != theirs and mine != other_hub.symbol(KOSHIGAYA, code)
    assert re.fullmatch(r"[a-p]{40}", mine) and not re.search(r"\d", mine)
    assert len({issuer.symbol(KOSHIGAYA, c) for c in codes(500)}) == 500


def test_only_the_hub_translates_and_it_keeps_no_resident_code(db, tmp_path):
    issuer = symbols.SymbolIssuer(symbols.master_secret(tmp_path))
    assert symbols.master_secret(tmp_path) == issuer._master  # created once, read back
    assert oct((tmp_path / "keys" / "provision_network.symbols.key").stat().st_mode & 0o777) == "0o600"
    people = codes(3, seed=2)
    with db.session() as session:
        at_soka = issuer.issue(session, SOKA, people)
        at_koshigaya = issuer.issue(session, KOSHIGAYA, people[:2])
        again = issuer.issue(session, SOKA, people)  # idempotent
    assert again == at_soka
    with db.session() as session:
        # each symbol found, with its translation: at_soka[0] is a symbol of another institution
        assert symbols.translate_many(session, KOSHIGAYA, SOKA, [*at_koshigaya, at_soka[0]]) == {at_koshigaya[0]: at_soka[0], at_koshigaya[1]: at_soka[1]}
        assert symbols.translate_many(session, SOKA, KOSHIGAYA, [at_soka[2]]) == {}  # never issued at Koshigaya
        stored = [tuple(row) for row in session.execute(select(IssuedSymbol.institution, IssuedSymbol.person_ref, IssuedSymbol.symbol))]
    assert len(stored) == 5
    text = repr(stored)
    assert not any(code in text for code in people)


def test_the_list_holds_the_assessments_rows_and_refuses_the_rest():
    rows = permitted_list().rows
    basis = {r.legal_basis for r in rows}
    for item in ("25", "26", "27", "28", "29"):
        assert any(f"表{item}の項" in b for b in basis), item
    assert {r.item_code for r in rows} >= set(net.ITEM_LAYOUTS)
    assert match(rows, KOSHIGAYA, SOKA, net.VACCINATION_AFFAIR, net.MOVE_IN_HISTORY_PROCEDURE, net.VACCINATION_RECORDS).row.auto_response
    assert not match(rows, KOSHIGAYA, SOKA, "JM01400000000003", "JT01400000002901", net.PUBLIC_ASSISTANCE).row.auto_response
    assert "may not ask for the item" in match(rows, KOSHIGAYA, SOKA, net.VACCINATION_AFFAIR, net.MOVE_IN_HISTORY_PROCEDURE, net.LOCAL_TAX).reason
    assert "has no procedure" in match(rows, KOSHIGAYA, SOKA, "JM00800000000001", net.MOVE_IN_HISTORY_PROCEDURE, net.VACCINATION_RECORDS).reason
    # Item 26 lets a prefecture ask; a municipality asking under it is refused.
    assert "a municipality may not ask" in match(rows, KOSHIGAYA, SOKA, "JM01400000000002", "JT01400000002602", net.VACCINATION_BENEFITS).reason
    assert match(rows, "110001", SOKA, "JM01400000000002", "JT01400000002602", net.VACCINATION_BENEFITS).row is not None


def test_a_malformed_list_row_is_named():
    header = "affair_code,affair_name,procedure_code,procedure_name,requester_kind,provider_kind,item_code,item_name,legal_basis,auto_response\n"
    with pytest.raises(ValueError, match="line 2"):
        parse_rows(header + "JM1,x,JT01400000002501,y,municipality,municipality,TM01400000000001,z,basis,true\n")
    with pytest.raises(ValueError, match="line 2"):
        parse_rows(header + "JM01400000000001,x,JT01400000002501,y,municipality,municipality,TM01400000000001,z,basis,maybe\n")


def test_the_distributed_list_is_signed_and_any_change_breaks_it():
    key = Ed25519PrivateKey.generate()
    document = signed_list(key)
    verify_document(key.public_key(), net.LIST_LABEL, document.document.model_dump(mode="json"), document.signature)
    changed = document.document.model_dump(mode="json")
    changed["rows"][0]["auto_response"] = not changed["rows"][0]["auto_response"]
    with pytest.raises(SignatureMismatch):
        verify_document(key.public_key(), net.LIST_LABEL, changed, document.signature)
    with pytest.raises(SignatureMismatch):  # a permit signature never passes for a list
        verify_document(key.public_key(), net.PERMIT_LABEL, document.document.model_dump(mode="json"), document.signature)


def _institution(session, city: str) -> Institution:
    keys = AnswerKeyPair.generate()
    statement = net.KeyStatement(principal=f"intermediate_server@{city}", suite="MLKEM768-X25519/HKDF-SHA256/AES-128-GCM", public_key=keys.public_b64, key_id=keys.key_id, created_at=datetime.now(UTC))
    signed = net.SignedKeyStatement(statement=statement, signature=sign_document(Ed25519PrivateKey.generate(), net.KEY_STATEMENT_LABEL, statement.model_dump(mode="json")))
    row = Institution(code=city, kind="municipality", network_url="https://127.0.0.1:1", answer_key=signed.model_dump_json(), key_id=keys.key_id)
    session.add(row)
    return row


def _issuer(session):
    """Koshigaya registered, and ``issue(at, query_id=None)``: a permit of a new hub key for
    Koshigaya to ask Soka for a person's vaccination records, issued at ``at`` for two minutes
    (not stored), for the query given or a new one."""
    key = Ed25519PrivateKey.generate()
    request = net.PermitRequest(query_id="f" * 32, provider=SOKA, affair_code=net.VACCINATION_AFFAIR, procedure_code=net.MOVE_IN_HISTORY_PROCEDURE, item_code=net.VACCINATION_RECORDS, requester_symbol="a" * 40)
    requester = _institution(session, KOSHIGAYA)
    answer_key = net.SignedKeyStatement.model_validate_json(requester.answer_key)
    return lambda at, query_id=None: permits.issue(
        key, requester.code, answer_key, request.model_copy(update={"query_id": query_id or uuid.uuid4().hex}), "b" * 40, at, timedelta(minutes=2)
    )


def test_a_permit_is_honoured_once_by_its_requester_before_it_expires(db):
    now = datetime.now(UTC)
    with db.session() as session:
        issue = _issuer(session)
        signed, row = issue(now)
        expiring, expiring_row = issue(now - timedelta(minutes=3))
        permits.store(session, [row, expiring_row], now)
    assert signed.permit.route == ["intermediate_server@112224", "provision_network", "intermediate_server@112216"]
    refusals = []
    stretched = signed.permit.model_copy(update={"expires_at": now + timedelta(hours=1)})
    attempts = (
        (signed, SOKA),
        (expiring, KOSHIGAYA),
        (signed.model_copy(update={"signature": expiring.signature}), KOSHIGAYA),
        (signed.model_copy(update={"permit": stretched}), KOSHIGAYA),
        (issue(now)[0], KOSHIGAYA),  # never stored
    )
    for attempt, city in attempts:
        with db.session() as session, pytest.raises(permits.PermitRefused) as refused:
            permits.honour(session, attempt, city, now)
        refusals.append(refused.value.reason)
    altered = "the permit is not as the hub issued it: its contents or its signature were altered"
    assert refusals == ["the permit was issued to 112224, not to 112216", "the permit has expired", altered, altered, "the hub issued no such permit"]
    older, older_row = issue(now)
    with db.session() as session:  # a permit stored before the hub kept digests
        permits.store(session, [{**older_row, "digest": ""}], now)
    with db.session() as session, pytest.raises(permits.PermitRefused, match="before the hub kept permits' digests"):
        permits.honour(session, older, KOSHIGAYA, now)
    with db.session() as session:
        assert permits.honour(session, signed, KOSHIGAYA, now).provider_symbol == "b" * 40
    with db.session() as session, pytest.raises(permits.PermitRefused, match="already been used"):
        permits.honour(session, signed, KOSHIGAYA, now)
    with pytest.raises(SignatureMismatch):
        signed.verify(Ed25519PrivateKey.generate().public_key())


def test_a_permits_query_ends_once_answered_refused_or_undelivered_and_a_hold_is_no_end(db):
    now = datetime.now(UTC)
    with db.session() as session:
        issue = _issuer(session)
        rows = [issue(now)[1] for _ in range(4)]
        permits.store(session, rows, now)
    serials = [row["serial_number"] for row in rows]
    ended_at = now + timedelta(seconds=5)
    with db.session() as session:
        permits.end_many(session, [(serials[0], "held"), (serials[1], "refused"), (serials[2], "undelivered")], ended_at)
    with db.session() as session:
        held = session.get(Permit, serials[0])
        assert (held.state, held.finished_at) == ("held", None)  # waiting for its answer: not finished
    with db.session() as session:  # the held one's answer arrives later
        permits.end_many(session, [(serials[0], "answered")], ended_at + timedelta(minutes=1))
        permits.end_many(session, [("no-such-serial", "refused")], ended_at)  # nothing to end: no error, no row
    with db.session() as session:
        stored = {p.serial_number: (p.state, p.finished_at) for p in session.scalars(select(Permit))}
    assert len(stored) == 4
    assert stored[serials[0]][0] == "answered" and abs(stored[serials[0]][1].replace(tzinfo=UTC) - (ended_at + timedelta(minutes=1))) < timedelta(seconds=1)
    assert [stored[s][0] for s in serials[1:]] == ["refused", "undelivered", "issued"]
    assert stored[serials[1]][1] is not None and stored[serials[2]][1] is not None and stored[serials[3]][1] is None
    with db.session() as session:
        permits.end_many(session, [(serials[3], "held")], ended_at)
        held = session.get(Permit, serials[3])
        assert (held.state, held.finished_at) == ("held", None)


def test_a_query_has_one_live_permit_the_last_one_issued(db):
    """Asked again for one query (its reply lost, say), the hub issues a new permit and the
    unused earlier ones can no longer be used; one already used stays as it was."""
    now = datetime.now(UTC)
    with db.session() as session:
        issue = _issuer(session)
        first, first_row = issue(now, "a" * 32)
        permits.store(session, [first_row], now)
        used, used_row = issue(now, "b" * 32)
        permits.store(session, [used_row], now)
    with db.session() as session:
        permits.honour(session, used, KOSHIGAYA, now)
    with db.session() as session:
        second, second_row = issue(now, "a" * 32)
        again, again_row = issue(now, "b" * 32)
        twin, twin_row = issue(now, "c" * 32)
        last, last_row = issue(now, "c" * 32)
        permits.store(session, [second_row, again_row, twin_row, last_row], now)  # two for one query: the later stands
    with db.session() as session:
        states = {p.serial_number: p.state for p in session.scalars(select(Permit))}
    serial = lambda signed: signed.permit.serial_number  # noqa: E731
    assert states[serial(first)] == "superseded" and states[serial(twin)] == "superseded"
    assert states[serial(used)] == "sent"  # used before the next was issued: its query went out with it
    assert {states[serial(p)] for p in (second, again, last)} == {"issued"}
    for stale in (first, twin):
        with db.session() as session, pytest.raises(permits.PermitRefused, match="a newer permit was issued for the same query"):
            permits.honour(session, stale, KOSHIGAYA, now)
    for live in (second, last):
        with db.session() as session:
            assert permits.honour(session, live, KOSHIGAYA, now).serial_number == serial(live)
