"""The intermediate server's hub client over real mutual TLS, against a hub that misbehaves:
whatever comes back, a caller gets a typed problem, never a parsing error of its own."""

from __future__ import annotations

import asyncio
import json
import random
from types import SimpleNamespace

import pytest

from renkei.processes import free_port
from services.intermediate_server.hub_client import HubClient
from shared.contracts import network as net
from shared.errors import Conflict, Problem, Unavailable
from shared.ids import generate_resident_code
from shared.pki import ensure_pki, tls_files
from shared.trust import Principal

HUB, SERVER = Principal("provision_network"), Principal("intermediate_server", "112224")
SYMBOLS = net.SymbolRequest(resident_codes=[generate_resident_code(random.Random(5))])


async def _ask_a_hub_that_answers(data_dir, status: int, body: bytes) -> object:
    """The outcome of ``symbols`` against a mutual-TLS server that answers ``status`` and ``body``."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=tls_files(data_dir, HUB).server_context())
    try:
        return await _ask(data_dir, server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def _ask(data_dir, port: int) -> object:
    """The outcome of ``symbols`` asked of a hub at ``port``: the reply, or the problem raised."""
    client = HubClient(f"https://127.0.0.1:{port}", SimpleNamespace(headers=lambda *_: {}), tls_files(data_dir, SERVER), timeout=5)
    try:
        return await client.symbols(SYMBOLS)
    except Problem as problem:
        return problem
    finally:
        await client.close()


@pytest.fixture
def data_dir(tmp_path):
    ensure_pki(tmp_path, [HUB, SERVER])
    return tmp_path


@pytest.mark.parametrize("body", [b"<html>busy</html>", b'{"symbols": 5}', b"{}"])
def test_a_success_reply_that_does_not_parse_is_the_hubs_unavailability(data_dir, body):
    found = asyncio.run(_ask_a_hub_that_answers(data_dir, 200, body))
    assert isinstance(found, Unavailable) and "does not parse as SymbolReply" in found.detail


def test_a_refusal_comes_back_as_the_typed_problem_the_hub_sent(data_dir):
    refusal = Conflict("112224 is not registered with the network").to_dict()
    found = asyncio.run(_ask_a_hub_that_answers(data_dir, 409, json.dumps(refusal).encode()))
    assert isinstance(found, Conflict) and found.detail == refusal["detail"]


def test_an_error_without_problem_details_names_its_status_and_a_failing_hub_is_unavailable(data_dir):
    failing = asyncio.run(_ask_a_hub_that_answers(data_dir, 502, b"Bad Gateway"))
    assert type(failing) is Unavailable and failing.detail == "the hub answered 502"  # worth trying again
    refusing = asyncio.run(_ask_a_hub_that_answers(data_dir, 400, b'{"detail": "no problem details here"}'))
    assert type(refusing) is Problem and refusing.detail == "the hub answered 400"
    # Problem details of a kind the services do not send (a proxy's, say): failing, so unavailable.
    proxy = b'{"type": "about:blank", "title": "Service Unavailable", "status": 503, "detail": "upstream down"}'
    foreign = asyncio.run(_ask_a_hub_that_answers(data_dir, 503, proxy))
    assert type(foreign) is Unavailable and foreign.detail == "the hub answered 503: upstream down"


def test_an_unreachable_hub_is_unavailable(data_dir):
    found = asyncio.run(_ask(data_dir, free_port()))
    assert type(found) is Unavailable and found.detail.startswith("the hub cannot be reached: ")


def test_a_valid_reply_is_taken(data_dir):
    found = asyncio.run(_ask_a_hub_that_answers(data_dir, 200, net.SymbolReply(symbols=["a" * 40]).model_dump_json().encode()))
    assert found == net.SymbolReply(symbols=["a" * 40])
