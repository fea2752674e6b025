"""``renkei ledger verify`` and ``renkei ledger proof`` on a data folder laid out as the stack lays it."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from typer.testing import CliRunner

from renkei.ledger_cli import app
from shared.db import database_url, make_engine
from shared.ledger import Checkpoint, Ledger, metadata, verify_inclusion
from shared.ledger.merkle import leaf_hash
from shared.ledger.testing import sample_records
from shared.trust import Principal, TrustDirectory, signing_key

CITY = "112224"
runner = CliRunner()


def _principal(city: str | None) -> Principal:
    return Principal("intermediate_server", city) if city else Principal("provision_network")


@pytest.fixture
def data(tmp_path):
    TrustDirectory.create(tmp_path, [_principal(CITY), _principal(None)])
    return tmp_path


def _open(data, city: str | None):
    principal = _principal(city)
    engine = make_engine(database_url(data, principal.service, city))
    metadata.create_all(engine)
    return engine, Ledger(engine, city or "hub", signing_key(data, principal))


@pytest.fixture
def city_ledger(data):
    engine, ledger = _open(data, CITY)
    ledger.append_many(sample_records(6, CITY))
    ledger.append_many(sample_records(5, CITY, start=6))
    ledger.checkpoint()
    ledger.append(sample_records(1, CITY, start=11)[0])
    yield engine, ledger
    engine.dispose()


def _run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_verify_passes_on_an_untouched_ledger(data, city_ledger):
    result = _run("verify", "--data", data, "--city", CITY)
    assert result.exit_code == 0, result.output
    assert "all verified" in result.output and "12 records" in result.output


def test_verify_reads_the_hubs_ledger_without_a_city(data):
    engine, hub = _open(data, None)
    hub.append_many(sample_records(3, "hub"))
    hub.checkpoint()
    engine.dispose()
    result = _run("verify", "--data", data)
    assert result.exit_code == 0, result.output
    assert "ledger hub: all verified" in result.output


@pytest.mark.parametrize(
    ("statement", "named"),
    [
        ("UPDATE ledger_provision_records SET outcome = 'refused' WHERE idx = 3", "record 3"),
        ("UPDATE ledger_provision_records SET person_key = 'IA0000000000001' WHERE idx = 4", "record 4"),
        ("UPDATE ledger_checkpoints SET tree_size = 10 WHERE seq = 0", "checkpoint 0"),
        ("UPDATE ledger_seals SET signature = root_hash || root_hash WHERE seq = 1", "batch seal 1"),
        ("DELETE FROM ledger_leaves WHERE idx = 11", "record 11"),
    ],
)
def test_verify_fails_naming_the_first_failure(data, city_ledger, statement, named):
    engine, _ = city_ledger
    with engine.begin() as conn:
        assert conn.execute(text(statement)).rowcount == 1
    result = _run("verify", "--data", data, "--city", CITY)
    assert result.exit_code == 1
    assert f"FAILED at {named}:" in result.output


def _pem(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_an_auditor_brings_the_public_key(data, city_ledger, tmp_path_factory):
    folder = tmp_path_factory.mktemp("auditor")
    genuine, stranger = folder / "genuine.pem", folder / "stranger.pem"
    genuine.write_bytes(_pem(signing_key(data, _principal(CITY))))
    stranger.write_bytes(_pem(Ed25519PrivateKey.generate()))
    assert _run("verify", "--data", data, "--city", CITY, "--public-key", genuine).exit_code == 0
    result = _run("verify", "--data", data, "--city", CITY, "--public-key", stranger)
    assert result.exit_code == 1 and "FAILED at batch seal 0" in result.output
    # The operator swapping the key in its own trust directory fools only those who trust it.
    (data / "keys" / f"{_principal(CITY)}.pem").rename(folder / "moved.pem")
    TrustDirectory.create(data, [_principal(CITY), _principal(None)])
    assert _run("verify", "--data", data, "--city", CITY).exit_code == 1
    assert _run("verify", "--data", data, "--city", CITY, "--public-key", genuine).exit_code == 0


def test_proof_prints_a_proof_that_verifies_offline(data, city_ledger):
    _, ledger = city_ledger
    result = _run("proof", "--data", data, "--city", CITY, "--index", 7)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert {"leaf_index", "tree_size", "leaf_hash", "proof", "root_hash", "checkpoint"} <= set(printed)
    assert printed["leaf_index"] == 7 and printed["checkpoint"]["kind"] == "checkpoint"
    decode = base64.b64decode
    record_hash = leaf_hash(ledger.entry(7).canonical_bytes())
    assert decode(printed["leaf_hash"]) == record_hash
    verify_inclusion(record_hash, 7, printed["tree_size"], [decode(h) for h in printed["proof"]], decode(printed["root_hash"]))
    checkpoint = Checkpoint.from_json(printed["checkpoint"])
    assert checkpoint.tree_size == printed["tree_size"] == 11
    assert checkpoint.root_hash == decode(printed["root_hash"])
    checkpoint.verify(TrustDirectory.load(data).public_key(_principal(CITY)))
    assert checkpoint.body().decode() == printed["checkpoint"]["body"]


def test_proof_of_a_record_after_the_last_checkpoint_uses_its_batch_seal(data, city_ledger):
    result = _run("proof", "--data", data, "--city", CITY, "--index", 11)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["checkpoint"]["kind"] == "batch_seal" and printed["tree_size"] == 12


def test_proof_refuses_what_is_not_there(data, city_ledger):
    result = _run("proof", "--data", data, "--city", CITY, "--index", 12)
    assert result.exit_code == 1 and "no sealed record 12" in result.output


def test_a_kept_checkpoint_catches_a_rewritten_history(data, city_ledger, tmp_path_factory):
    kept = tmp_path_factory.mktemp("auditor") / "checkpoint.json"
    kept.write_text(_run("proof", "--data", data, "--city", CITY, "--index", 0).stdout)
    assert _run("verify", "--data", data, "--city", CITY, "--checkpoint", kept).exit_code == 0
    engine, _ = city_ledger
    engine.dispose()
    database_path = data / "db" / CITY / "intermediate_server.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        database_path.with_name(database_path.name + suffix).unlink(missing_ok=True)
    engine, ledger = _open(data, CITY)  # same key, a history of its own
    ledger.append_many(sample_records(3, CITY, start=50))
    ledger.checkpoint()
    engine.dispose()
    assert _run("verify", "--data", data, "--city", CITY).exit_code == 0
    result = _run("verify", "--data", data, "--city", CITY, "--checkpoint", kept)
    assert result.exit_code == 1 and "FAILED at trusted checkpoint 0" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("verify", "--city", "112216"), "no ledger database"),
        (("verify", "--city", "123456"), "local-government code"),
        (("proof", "--city", "112216", "--index", "0"), "no ledger database"),
    ],
)
def test_missing_or_wrong_ledgers_are_reported(data, args, message):
    result = _run(*args, "--data", data)
    assert result.exit_code == 1 and message in result.output
