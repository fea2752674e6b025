"""Refusals on the bus, against a real nats-server configured as the stack configures it.

Two walls stand in front of every operation: NATS itself (one user per service, subject
permissions derived from the contracts) and the service token checked by the receiver.
Each test breaks through one wall on purpose and shows that the other one holds.
"""

from __future__ import annotations

import asyncio
import json
import time

import jwt
import nats
import pytest
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from renkei.testkit import identity, make_bus
from shared.auth import AUTHORIZATION, authorization, read_authorization
from shared.bus import ERROR_HEADER, Bus, inbox_prefix
from shared.contracts import REGISTRY
from shared.contracts.system import PingRequest
from shared.errors import Forbidden, Unauthenticated, problem_from_dict
from shared.service import answer_ping
from shared.trust import Principal, signing_key

CITY = "112224"
ADDRESS = Principal("integrated_address", CITY)
HEALTH = Principal("health_mgmt", CITY)
OPS = Principal("ops_console")
HUB = Principal("provision_network")
PING = REGISTRY.operation("integrated_address", "ping")


class PingContext:
    """The few parts of a service context the ping handler reads."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self.settings = type("S", (), {"service": principal.service, "city": principal.city})()


async def connect_bus(files, server, principal: Principal) -> Bus:
    bus = make_bus(files.data_dir, files.directory, principal)
    user, password = files.login(principal)
    await bus.connect(server.url, user, password)
    return bus


async def serving_address(files, server) -> Bus:
    bus = await connect_bus(files, server, ADDRESS)
    await bus.serve(PING, answer_ping(PingContext(ADDRESS)), CITY)
    return bus


BODY = PingRequest().model_dump_json().encode()


def signed_headers(files, caller: Principal, body: bytes = BODY) -> dict:
    """The headers ``caller`` would send to integrated_address's ping."""
    credentials, _ = identity(files.data_dir, files.directory, caller)
    return credentials.headers(ADDRESS, PING.subject(CITY), body)


async def raw_request(files, server, principal: Principal, headers: dict | None, body: bytes = BODY):
    """A request sent over ``principal``'s NATS login with whatever headers the test chooses."""
    user, password = files.login(principal)
    nc = await nats.connect(server.url, user=user, password=password, inbox_prefix=inbox_prefix(user))
    try:
        msg = await nc.request(PING.subject(CITY), body, timeout=3, headers=headers)
    finally:
        await nc.close()
    assert msg.headers and ERROR_HEADER in msg.headers, "the request should have been refused"
    return problem_from_dict(json.loads(msg.data))


def token(files, issuer: Principal, audience: Principal, **overrides) -> str:
    now = int(time.time())
    claims = {"iss": str(issuer), "sub": str(issuer), "aud": str(audience), "iat": now, "exp": now + 60, "jti": "t"}
    claims.update(overrides)
    return jwt.encode(claims, signing_key(files.data_dir, issuer), algorithm="EdDSA", headers={"kid": str(issuer)})


def test_an_allowlisted_caller_gets_the_identity(stack_files, nats_secured):
    async def scenario():
        server_bus = await serving_address(stack_files, nats_secured)
        caller = await connect_bus(stack_files, nats_secured, HEALTH)
        reply = await caller.request(PING, CITY, PingRequest(nonce="n1"))
        await caller.close()
        await server_bus.close()
        return reply

    reply = asyncio.run(scenario())
    assert (reply.principal, reply.caller, reply.nonce) == (str(ADDRESS), str(HEALTH), "n1")


@pytest.mark.parametrize(
    ("case", "headers", "expected"),
    [
        ("no token", None, "no service token"),
        ("expired", "expired", "expired"),
        ("alg none", "none", "algorithm 'none'"),
        ("wrong audience", "audience", "not addressed"),
    ],
)
def test_a_bad_token_is_refused(stack_files, nats_secured, case, headers, expected):
    tokens = {
        None: None,
        "expired": token(stack_files, HEALTH, ADDRESS, iat=int(time.time()) - 400, exp=int(time.time()) - 100),
        "none": jwt.encode(
            {"iss": str(HEALTH), "sub": str(HEALTH), "aud": str(ADDRESS), "iat": 1, "exp": 2**40, "jti": "n"},
            None,
            algorithm="none",
            headers={"kid": str(HEALTH)},
        ),
        "audience": token(stack_files, HEALTH, Principal("juki_cs", CITY)),
    }

    async def scenario():
        server_bus = await serving_address(stack_files, nats_secured)
        value = tokens[headers]
        _, proof = read_authorization(signed_headers(stack_files, HEALTH)[AUTHORIZATION])
        sent = {AUTHORIZATION: authorization(value, proof)} if value else None
        problem = await raw_request(stack_files, nats_secured, HEALTH, sent)
        await server_bus.close()
        return problem

    problem = asyncio.run(scenario())
    assert isinstance(problem, Unauthenticated), case
    assert expected in problem.detail


def test_a_caller_not_on_the_allowlist_is_refused(stack_files, nats_secured):
    # The hub's own login cannot even reach a city subject (see below), so its token rides on
    # a login that can: the token, not the connection, names the caller.
    async def scenario():
        server_bus = await serving_address(stack_files, nats_secured)
        problem = await raw_request(stack_files, nats_secured, OPS, signed_headers(stack_files, HUB))
        await server_bus.close()
        return problem

    problem = asyncio.run(scenario())
    assert isinstance(problem, Forbidden)
    assert "provision_network may not call" in problem.detail


def test_a_replayed_request_is_refused(stack_files, nats_secured):
    async def scenario():
        server_bus = await serving_address(stack_files, nats_secured)
        captured = signed_headers(stack_files, HEALTH)
        user, password = stack_files.login(HEALTH)
        nc = await nats.connect(nats_secured.url, user=user, password=password, inbox_prefix=inbox_prefix(user))
        first = await nc.request(PING.subject(CITY), BODY, timeout=3, headers=captured)
        second = await nc.request(PING.subject(CITY), BODY, timeout=3, headers=captured)
        await nc.close()
        await server_bus.close()
        return first, second

    first, second = asyncio.run(scenario())
    assert not (first.headers or {}).get(ERROR_HEADER)
    problem = problem_from_dict(json.loads(second.data))
    assert isinstance(problem, Unauthenticated) and "replayed" in problem.detail


def test_a_captured_token_cannot_carry_another_request(stack_files, nats_secured):
    async def scenario():
        server_bus = await serving_address(stack_files, nats_secured)
        captured = signed_headers(stack_files, HEALTH)
        forged = signed_headers(stack_files, Principal("juki_cs", CITY))  # the thief's own proof
        token, _ = read_authorization(captured[AUTHORIZATION])
        _, thief_proof = read_authorization(forged[AUTHORIZATION])
        problem = await raw_request(stack_files, nats_secured, HEALTH, {AUTHORIZATION: authorization(token, thief_proof)})
        tampered = await raw_request(stack_files, nats_secured, HEALTH, captured, body=b'{"nonce": "other"}')
        await server_bus.close()
        return problem, tampered

    problem, tampered = asyncio.run(scenario())
    assert isinstance(problem, Unauthenticated) and "does not match" in problem.detail
    assert isinstance(tampered, Unauthenticated) and "does not match" in tampered.detail


def test_a_request_that_does_not_match_the_contract_is_refused(stack_files, nats_secured):
    body = b'{"nonce": 1, "my_number": "x"}'

    async def scenario():
        server_bus = await serving_address(stack_files, nats_secured)
        problem = await raw_request(stack_files, nats_secured, HEALTH, signed_headers(stack_files, HEALTH, body), body=body)
        await server_bus.close()
        return problem

    problem = asyncio.run(scenario())
    assert problem.status == 422
    assert {tuple(e["loc"]) for e in problem.extensions["errors"]} == {("nonce",), ("my_number",)}


# -- the NATS wall ------------------------------------------------------------------------


def violations(errors: list[str], kind: str, subject: str = "") -> int:
    """How many of the server's errors deny ``kind`` (Publish or Subscription) on ``subject``."""
    wanted = f"permissions violation for {kind}".lower()
    return sum(wanted in e.lower() and subject.lower() in e.lower() for e in errors)


async def collect_errors(files, server, principal):
    errors: list[str] = []

    async def on_error(exc):
        errors.append(str(exc))

    user, password = files.login(principal)
    nc = await nats.connect(server.url, user=user, password=password, error_cb=on_error, allow_reconnect=False)
    return nc, errors


def test_nats_refuses_a_connection_without_credentials(nats_secured):
    async def scenario():
        await nats.connect(nats_secured.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)

    with pytest.raises(Exception, match="[Aa]uthorization"):
        asyncio.run(scenario())


def test_nats_refuses_a_wrong_password(stack_files, nats_secured):
    async def scenario():
        user, _ = stack_files.login(HEALTH)
        await nats.connect(nats_secured.url, user=user, password="guess", allow_reconnect=False, max_reconnect_attempts=0)

    with pytest.raises(Exception, match="[Aa]uthorization"):
        asyncio.run(scenario())


def test_a_service_cannot_publish_on_another_citys_subjects(stack_files, nats_secured):
    other_city_ping = REGISTRY.operation("integrated_address", "ping").subject("112216")

    async def scenario():
        watcher, _ = await collect_errors(stack_files, nats_secured, Principal("integrated_address", "112216"))
        seen = []

        async def heard(msg):
            seen.append(msg)

        await watcher.subscribe(other_city_ping, cb=heard)
        await watcher.flush()
        nc, errors = await collect_errors(stack_files, nats_secured, HEALTH)
        await nc.publish(other_city_ping, b"{}")
        await nc.flush()
        await asyncio.sleep(0.3)
        await nc.close()
        await watcher.close()
        return errors, seen

    errors, seen = asyncio.run(scenario())
    assert violations(errors, "publish", other_city_ping) == 1, errors
    assert seen == []


def test_a_service_cannot_publish_on_a_subject_whose_allowlist_omits_it(stack_files, nats_secured):
    async def scenario():
        nc, errors = await collect_errors(stack_files, nats_secured, HUB)
        with pytest.raises((NoRespondersError, NatsTimeout)):
            await nc.request(PING.subject(CITY), b"{}", timeout=1)
        await asyncio.sleep(0.2)
        await nc.close()
        return errors

    # Nobody hears the hub, even though integrated_address is not serving in this test:
    # the server drops the message before routing it.
    errors = asyncio.run(scenario())
    assert violations(errors, "publish", PING.subject(CITY)) == 1, errors


def test_a_service_cannot_serve_another_services_subject(stack_files, nats_secured):
    async def scenario():
        nc, errors = await collect_errors(stack_files, nats_secured, HEALTH)
        await nc.subscribe(PING.subject(CITY))
        await nc.flush()
        await asyncio.sleep(0.2)
        await nc.close()
        return errors

    errors = asyncio.run(scenario())
    assert violations(errors, "subscription", PING.subject(CITY)) == 1, errors


def test_a_service_cannot_read_another_services_replies(stack_files, nats_secured):
    async def scenario():
        nc, errors = await collect_errors(stack_files, nats_secured, HEALTH)
        await nc.subscribe("_INBOX_integrated_address-112224.>")
        await nc.subscribe("_INBOX.>")
        await nc.flush()
        await asyncio.sleep(0.2)
        await nc.close()
        return errors

    errors = asyncio.run(scenario())
    assert violations(errors, "subscription", "_INBOX_integrated_address-112224.>") == 1, errors
    assert violations(errors, "subscription", "_INBOX.>") == 1, errors
