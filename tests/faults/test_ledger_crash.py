"""A ledger writer killed mid-burst loses nothing it acknowledged and leaves a verifiable log."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from shared.db import make_engine
from shared.keys import load_or_create_signing_key
from shared.ledger import Ledger, metadata, verify_consistency, verify_inclusion, verify_ledger
from shared.ledger.merkle import leaf_hash
from shared.ledger.testing import drop_schema, postgresql_url, sample_record

CITY = "112224"
WRITER = Path(__file__).with_name("ledger_crash_writer.py")
ACKS_BEFORE_KILL = 600
CHECKPOINTS_BEFORE_KILL = 3


def _database(backend: str, folder: Path):
    if backend == "sqlite":
        return f"sqlite:///{folder / 'intermediate_server.sqlite3'}", None
    if postgresql_url() is None:
        pytest.skip("RENKEI_TEST_DATABASE_URL is not set")
    return postgresql_url(), f"ledger_crash_{uuid.uuid4().hex[:12]}"


@pytest.mark.fault
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_killed_writer_keeps_every_acknowledged_record(backend, tmp_path):
    url, schema = _database(backend, tmp_path)
    engine = make_engine(url, schema)
    metadata.create_all(engine)
    key_file = tmp_path / "intermediate_server@112224.pem"
    key = load_or_create_signing_key(key_file)
    try:
        acknowledged, checkpoints = _run_and_kill(url, schema, key_file)
        assert len(acknowledged) >= ACKS_BEFORE_KILL and len(checkpoints) >= CHECKPOINTS_BEFORE_KILL

        ledger = Ledger(engine, CITY, key)
        last = ledger.latest_checkpoint()
        last.verify(key.public_key())
        assert last.tree_size >= max(checkpoints)

        report = verify_ledger(engine, CITY, key.public_key())
        assert report.ok, report

        new = ledger.checkpoint()
        proof = ledger.consistency_proof(last.tree_size, new.tree_size)
        verify_consistency(last.tree_size, new.tree_size, last.root_hash, new.root_hash, proof.path)

        assert max(acknowledged) < new.tree_size
        for index in acknowledged:
            inclusion = ledger.inclusion_proof(index, new.tree_size)
            assert inclusion.leaf_hash == leaf_hash(sample_record(CITY, index).canonical_bytes())
            verify_inclusion(inclusion.leaf_hash, index, new.tree_size, inclusion.path, new.root_hash)

        # The log goes on where the killed writer left it.
        after = ledger.append(sample_record(CITY, new.tree_size))
        assert after.index == new.tree_size
        assert verify_ledger(engine, CITY, key.public_key()).ok
    finally:
        engine.dispose()
        if schema:
            drop_schema(url, schema)


def _run_and_kill(url: str, schema: str | None, key_file: Path) -> tuple[list[int], list[int]]:
    command = [sys.executable, str(WRITER), "--url", url, "--key", str(key_file), "--tenant", CITY]
    if schema:
        command += ["--schema", schema]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acknowledged: list[int] = []
    checkpoints: list[int] = []
    try:
        while len(acknowledged) < ACKS_BEFORE_KILL or len(checkpoints) < CHECKPOINTS_BEFORE_KILL:
            line = child.stdout.readline()
            if not line:
                raise AssertionError(f"the writer stopped early: {child.stderr.read()}")
            _take(line, acknowledged, checkpoints)
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert child.returncode == -signal.SIGKILL
        # What reached the pipe before the kill was acknowledged too; a torn last line was not.
        for line in child.stdout.read().splitlines(keepends=True):
            if line.endswith("\n"):
                _take(line, acknowledged, checkpoints)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()
    return acknowledged, checkpoints


def _take(line: str, acknowledged: list[int], checkpoints: list[int]) -> None:
    if line.startswith("checkpoint "):
        checkpoints.append(int(line.split()[1]))
    else:
        acknowledged.append(int(line))
