"""Mutual authentication between the Juki-net CS and the prefecture server (M17).

Against the real prefecture server on a real socket: it refuses a peer without a
certificate, and a peer whose certificate another CA issued even under a genuine name;
the CS refuses a server whose certificate another CA issued, and sends it nothing. A
second CA is made here, exactly as the stack makes its own, in another folder.
"""

from __future__ import annotations

import ssl

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from services.juki_cs.app import create_app as create_cs
from services.juki_cs.models import PrefectureForwarding
from services.juki_cs.runtime import runtime_of
from services.juki_prefecture.app import create_app as create_prefecture
from services.juki_prefecture.models import IdentityCopy
from shared.contracts.juki import IDENTITIES_PATH, SEARCH_PATH, IdentityBatch
from shared.pki import ensure_pki, tls_files
from shared.trust import Principal
from tests.unit.test_juki_support import (
    KOSHIGAYA,
    PREFECTURE,
    arrivals,
    cs_settings,
    identity_record,
    mtls_client,
    people,
    prefecture_settings,
    prepare_pki,
    publish,
    start_prefecture,
    wait_until,
)

CS = Principal("juki_cs", KOSHIGAYA)
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def rogue_dir(tmp_path):
    """Another CA, with certificates under the genuine names of the CS and the prefecture server."""
    folder = tmp_path / "rogue"
    ensure_pki(folder, [CS, PREFECTURE])
    return folder


def _held(prefecture) -> int:
    with prefecture.app.state.context.db.session() as session:
        return session.scalar(select(func.count()).select_from(IdentityCopy)) or 0


def _batch() -> str:
    return IdentityBatch(records=[identity_record(people(1)[0])]).model_dump_json()


def _client(ca: ssl.SSLContext, base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, verify=ca, timeout=10)


def _genuine_cs_is_served(stack_files, prefecture) -> bool:
    with mtls_client(stack_files, CS, prefecture.url) as client:
        response = client.put(IDENTITIES_PATH.format(city=KOSHIGAYA), content=_batch(), headers=JSON)
    return response.status_code == 200 and response.json()["applied"] == 1 and _held(prefecture) == 1


def test_a_peer_without_a_certificate_is_refused(stack_files, database_url):
    prepare_pki(stack_files)
    ca_only = ssl.create_default_context(cafile=str(tls_files(stack_files.data_dir, CS).ca_certificate))
    with start_prefecture(stack_files, database_url) as prefecture:
        with _client(ca_only, prefecture.url) as client, pytest.raises(httpx.TransportError):
            client.put(IDENTITIES_PATH.format(city=KOSHIGAYA), content=_batch(), headers=JSON)
        with _client(ca_only, prefecture.url) as client, pytest.raises(httpx.TransportError):
            client.get("/livez")  # not even the liveness probe answers
        assert _held(prefecture) == 0
        assert _genuine_cs_is_served(stack_files, prefecture)  # the same server, the same request, a certificate


def test_a_certificate_from_another_ca_is_refused_even_under_a_genuine_name(stack_files, database_url, rogue_dir):
    prepare_pki(stack_files)
    impostor = tls_files(rogue_dir, CS)
    context = ssl.create_default_context(cafile=str(tls_files(stack_files.data_dir, CS).ca_certificate))
    context.load_cert_chain(impostor.certificate, impostor.private_key)
    with start_prefecture(stack_files, database_url) as prefecture:
        with _client(context, prefecture.url) as client, pytest.raises(httpx.TransportError):
            client.post(SEARCH_PATH, json={"my_number": people(1)[0].my_number})
        with _client(context, prefecture.url) as client, pytest.raises(httpx.TransportError):
            client.put(IDENTITIES_PATH.format(city=KOSHIGAYA), content=_batch(), headers=JSON)
        assert _held(prefecture) == 0
        assert _genuine_cs_is_served(stack_files, prefecture)


def test_the_cs_refuses_a_server_certificate_from_another_ca_and_sends_it_nothing(
    stack_files, nats_secured, database_url, rogue_dir
):
    prepare_pki(stack_files)
    rogue = tls_files(rogue_dir, PREFECTURE)
    genuine_ca = tls_files(stack_files.data_dir, CS).ca_certificate
    # The rogue server would accept the CS's genuine certificate: only the CS's check stands.
    overrides = {"ssl_certfile": str(rogue.certificate), "ssl_keyfile": str(rogue.private_key), "ssl_ca_certs": str(genuine_ca)}
    residents = people(5, seed=13)
    with start_prefecture(stack_files, database_url, **overrides) as impostor:
        app = create_cs(cs_settings(stack_files, nats_secured, database_url, prefecture_url=impostor.url))
        with TestClient(app):
            runtime = runtime_of(app.state.context)
            db = app.state.context.db
            publish(stack_files, nats_secured, arrivals(residents))
            wait_until(lambda: len(runtime.index) == 5, what="the changes to be applied")
            attempts = select(func.min(PrefectureForwarding.attempts))
            wait_until(lambda: _scalar(db, attempts) >= 1, what="an attempt on every row")
            backlog = runtime.forwarder.backlog()
        held = _held(impostor)
    assert backlog.pending == 5 and backlog.forwarded == 0
    assert "CERTIFICATE_VERIFY_FAILED" in backlog.last_error
    assert held == 0


def test_without_a_verified_client_certificate_the_app_admits_nobody(stack_files, database_url):
    """Served without TLS (or without the protocol that passes the certificate on), the app
    cannot tell who calls, and refuses every data route."""
    prepare_pki(stack_files)
    app = create_prefecture(prefecture_settings(stack_files, database_url))
    with TestClient(app) as client:
        forward = client.put(IDENTITIES_PATH.format(city=KOSHIGAYA), content=_batch(), headers=JSON)
        search = client.post(SEARCH_PATH, json={"my_number": people(1)[0].my_number})
    for refused in (forward, search):
        assert refused.status_code == 401
        assert refused.json()["type"] == "urn:renkei:problem:unauthenticated"


def _scalar(db, statement) -> int:
    with db.session() as session:
        return session.scalar(statement) or 0


def test_without_its_own_certificate_the_cs_sends_nothing_and_says_why(tmp_path):
    """A CS whose certificate is missing does not dial the prefecture server without one."""
    import asyncio

    from services.juki_cs.prefecture import PrefectureClient, PrefectureUnavailable
    from shared.contracts.juki import PrefectureQuery

    client = PrefectureClient("https://127.0.0.1:9", tls_files(tmp_path, CS), KOSHIGAYA)
    with pytest.raises(PrefectureUnavailable, match="no client certificate for mutual TLS"):
        asyncio.run(client.search(PrefectureQuery(resident_code=people(1, seed=3)[0].resident_code)))
