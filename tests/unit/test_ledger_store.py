"""The stored ledger: appends, proofs, checkpoints, tenants, retention, disclosure, writers."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from shared.ledger import (
    CheckpointTimer,
    Ledger,
    LedgerError,
    ProofError,
    RetentionError,
    RetentionPruning,
    SignatureError,
    verify_consistency,
    verify_inclusion,
    verify_ledger,
    verify_record_proof,
)
from shared.ledger.merkle import MemoryTree, leaf_hash
from shared.ledger.models import seals
from shared.ledger.testing import BACKENDS, ledger_database, postgresql_url, sample_record, sample_records

CITY, NEIGHBOUR = "112224", "112216"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(params=BACKENDS)
def engine(request, tmp_path):
    if request.param == "postgresql" and postgresql_url() is None:
        pytest.skip("RENKEI_TEST_DATABASE_URL is not set")
    with ledger_database(request.param, tmp_path) as engine:
        yield engine


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


@pytest.fixture
def clock():
    return Clock(datetime(2025, 4, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def ledger(engine, key, clock):
    return Ledger(engine, CITY, key, clock=clock)


def _fill(ledger: Ledger, batch_sizes: list[int]) -> list:
    """Append batches of sample records, each numbered by the index it will take."""
    receipts = []
    for size in batch_sizes:
        receipts += ledger.append_many(sample_records(size, ledger.tenant, start=ledger.tree_size()))
    return receipts


def test_appends_number_records_and_return_their_leaf_hashes(ledger):
    first = ledger.append(sample_record(CITY, 0))
    more = ledger.append_many(sample_records(4, CITY, start=1))
    assert [first.index] + [r.index for r in more] == [0, 1, 2, 3, 4]
    assert more[0].leaf_hash == leaf_hash(sample_record(CITY, 1).canonical_bytes())
    assert ledger.tree_size() == 5
    assert ledger.entry(3) == sample_record(CITY, 3)
    assert ledger.append_many([]) == []


def test_each_batch_gets_one_seal(ledger, engine, key):
    _fill(ledger, [1, 7, 3])
    with engine.connect() as conn:
        rows = conn.execute(select(seals.c.first_index, seals.c.tree_size).order_by(seals.c.seq)).all()
    assert [tuple(r) for r in rows] == [(0, 1), (1, 8), (8, 11)]
    seal = ledger.seal_covering(5)
    assert (seal.first_index, seal.tree_size) == (1, 8)
    seal.verify(key.public_key())
    assert seal.root_hash == ledger.root_hash(8)


def test_appends_of_one_session_transaction_make_one_seal_at_its_commit(ledger, engine, key):
    from sqlalchemy.orm import Session

    _fill(ledger, [2])
    with Session(engine) as session, session.begin():  # two writers sharing one transaction
        first = ledger.append_in(session, sample_records(3, CITY, start=2))
        second = ledger.append_in(session, sample_records(2, CITY, start=5))
        assert [r.index for r in first + second] == [2, 3, 4, 5, 6]
    with Session(engine) as session, session.begin():  # the next transaction opens its own batch
        (third,) = ledger.append_in(session, sample_records(1, CITY, start=7))
    with engine.connect() as conn:
        rows = conn.execute(select(seals.c.first_index, seals.c.tree_size).order_by(seals.c.seq)).all()
    assert [tuple(r) for r in rows] == [(0, 2), (2, 7), (7, 8)] and third.index == 7
    assert ledger.seal_covering(6).root_hash == ledger.root_hash(7)
    verify_ledger(engine, CITY, key.public_key())


def test_a_rolled_back_transaction_leaves_neither_records_nor_seal(ledger, engine, key):
    from sqlalchemy.orm import Session

    _fill(ledger, [2])
    with Session(engine) as session:
        with pytest.raises(RuntimeError), session.begin():
            ledger.append_in(session, sample_records(3, CITY, start=2))
            raise RuntimeError("the change it records failed")
        with session.begin():  # the same session, a new transaction: nothing of the last one
            (receipt,) = ledger.append_in(session, sample_records(1, CITY, start=2))
    assert receipt.index == 2 and ledger.tree_size() == 3
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(seals)).scalar() == 2
    verify_ledger(engine, CITY, key.public_key())


@pytest.mark.parametrize("inside", ["appends", "writes_then_appends", "only_writes"])
def test_a_savepoint_that_rolls_back_leaves_the_rest_of_the_transaction_whole(ledger, engine, key, inside):
    """What the transaction appended before the savepoint is sealed before it, whatever the
    savepoint did first; what it appended goes with it."""
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    with Session(engine) as session, session.begin():
        ledger.append_in(session, sample_records(2, CITY, start=0))
        with pytest.raises(RuntimeError), session.begin_nested():
            if inside != "appends":
                session.execute(text("SELECT 1"))  # the SAVEPOINT is issued here, on first use
            if inside != "only_writes":
                ledger.append_in(session, sample_records(3, CITY, start=2))
            raise RuntimeError("the handler failed")
        (after,) = ledger.append_in(session, sample_records(1, CITY, start=2))
    assert after.index == 2 and ledger.tree_size() == 3
    with engine.connect() as conn:
        rows = conn.execute(select(seals.c.first_index, seals.c.tree_size).order_by(seals.c.seq)).all()
    assert [tuple(r) for r in rows] == [(0, 2), (2, 3)]
    verify_ledger(engine, CITY, key.public_key())


def test_a_session_closed_without_committing_leaves_nothing_for_its_next_transaction(ledger, engine, key):
    from sqlalchemy.orm import Session

    session = Session(engine)
    ledger.append_in(session, sample_records(2, CITY, start=0))
    session.close()  # neither commit nor rollback called
    with session.begin():
        (receipt,) = ledger.append_in(session, sample_records(1, CITY, start=0))
    session.close()
    assert receipt.index == 0 and ledger.tree_size() == 1
    verify_ledger(engine, CITY, key.public_key())


def test_proofs_from_the_store_match_the_tree_rebuilt_in_memory(ledger):
    receipts = _fill(ledger, [1, 2, 13, 40, 200, 57, 3])  # 316 leaves: stored levels 4 and 8 both in use
    tree = MemoryTree(r.leaf_hash for r in receipts)
    for size in (1, 2, 16, 255, 256, 257, 316):
        root = ledger.root_hash(size)
        assert root == tree.root(size)
        for index in {0, size // 3, size // 2, size - 1}:
            proof = ledger.inclusion_proof(index, size)
            assert list(proof.path) == tree.inclusion_proof(index, size)
            verify_inclusion(receipts[index].leaf_hash, index, size, proof.path, root)
    for old, new in ((1, 316), (15, 16), (16, 17), (100, 256), (255, 300), (316, 316)):
        proof = ledger.consistency_proof(old, new)
        assert list(proof.path) == tree.consistency_proof(old, new)
        verify_consistency(old, new, tree.root(old), tree.root(new), proof.path)


def test_proofs_default_to_the_current_tree_and_refuse_what_is_not_there(ledger):
    _fill(ledger, [10])
    assert ledger.inclusion_proof(4).tree_size == 10
    ledger.inclusion_proof(4).verify()
    with pytest.raises(LedgerError):
        ledger.inclusion_proof(10)
    with pytest.raises(LedgerError):
        ledger.inclusion_proof(0, tree_size=11)
    with pytest.raises(LedgerError):
        ledger.consistency_proof(0, 10)


def test_checkpoints_are_signed_ordered_and_consistent(ledger, key, clock):
    assert ledger.latest_checkpoint() is None
    _fill(ledger, [5])
    first = ledger.checkpoint()
    clock.advance(hours=1)
    _fill(ledger, [6])
    second = ledger.checkpoint()
    assert (first.seq, first.tree_size, second.seq, second.tree_size) == (0, 5, 1, 11)
    assert second.made_at == clock.now and ledger.latest_checkpoint() == second
    assert ledger.checkpoints() == [first, second]
    for checkpoint in (first, second):
        checkpoint.verify(key.public_key())
    with pytest.raises(SignatureError):
        second.verify(Ed25519PrivateKey.generate().public_key())
    proof = ledger.consistency_proof(first.tree_size, second.tree_size)
    verify_consistency(first.tree_size, second.tree_size, first.root_hash, second.root_hash, proof.path)


def test_times_never_go_backwards_even_when_the_clock_does(ledger, clock):
    _fill(ledger, [1])
    ledger.checkpoint()
    clock.advance(hours=-2)
    _fill(ledger, [1])
    later = ledger.checkpoint()
    assert ledger.seal_covering(1).sealed_at == ledger.seal_covering(0).sealed_at
    assert later.made_at == ledger.checkpoints()[0].made_at


def test_checkpoint_timer(ledger, key):
    timer = CheckpointTimer(ledger, interval=3600)
    assert timer.tick() is not None  # the empty log gets its first checkpoint
    assert timer.tick() is None  # nothing new since
    _fill(ledger, [3])
    made = timer.tick()
    assert made.tree_size == 3
    made.verify(key.public_key())
    with pytest.raises(ValueError):
        CheckpointTimer(ledger, interval=0)


def test_checkpoint_timer_runs_in_the_background(ledger):
    _fill(ledger, [2])
    with CheckpointTimer(ledger, interval=0.01):
        deadline = time.monotonic() + 30
        while ledger.latest_checkpoint() is None and time.monotonic() < deadline:
            time.sleep(0.01)
    assert ledger.latest_checkpoint().tree_size == 2


def test_tenants_share_a_database_without_seeing_each_other(engine, key, clock):
    other_key = Ed25519PrivateKey.generate()
    city = Ledger(engine, CITY, key, clock=clock)
    neighbour = Ledger(engine, NEIGHBOUR, other_key, clock=clock)
    hub = Ledger(engine, "hub", other_key, clock=clock)
    _fill(city, [3, 4])
    _fill(neighbour, [2])
    assert (city.tree_size(), neighbour.tree_size(), hub.tree_size()) == (7, 2, 0)
    assert neighbour.inclusion_proof(1).leaf_hash == leaf_hash(sample_record(NEIGHBOUR, 1).canonical_bytes())
    person = sample_record(CITY, 0).person_key
    assert all(r.record.tenant == CITY for r in city.records_about(person))
    assert neighbour.records_about(person) and all(r.record.tenant == NEIGHBOUR for r in neighbour.records_about(person))
    with pytest.raises(LedgerError):
        city.append(sample_record(NEIGHBOUR, 9))
    assert verify_ledger(engine, CITY, key.public_key()).ok
    assert verify_ledger(engine, NEIGHBOUR, other_key.public_key()).ok
    assert verify_ledger(engine, "hub", other_key.public_key()).ok
    # One tenant's key does not vouch for another's log.
    assert not verify_ledger(engine, NEIGHBOUR, key.public_key()).ok


def test_records_about_a_person_answer_a_disclosure_request(ledger):
    _fill(ledger, [300])
    person = sample_record(CITY, 5).person_key  # n = 5, 102, 199, 296 (n % 97 == 5)
    found = ledger.records_about(person, include_non_disclosure=True)
    assert [r.index for r in found] == [5, 102, 199, 296]
    for stored in found:
        assert stored.record.person_key == person
        assert stored.leaf_hash == leaf_hash(stored.record.canonical_bytes())
        assert stored.record.requester and stored.record.requested_at and stored.record.outcome
    withheld = {r.index for r in found if r.record.non_disclosure}
    assert withheld == {5}  # n % 11 == 5
    assert [r.index for r in ledger.records_about(person)] == [102, 199, 296]
    assert ledger.records_about("IA9999999999999") == []
    with pytest.raises(ValueError):
        ledger.records_about("123456789012")


def test_a_single_record_verifies_alone(ledger, key):
    _fill(ledger, [4, 9])
    evidence = ledger.record_proof(6)
    assert evidence.seal.tree_size == 13
    verify_record_proof(evidence, key.public_key())
    with pytest.raises(SignatureError):
        verify_record_proof(evidence, Ed25519PrivateKey.generate().public_key())
    forged = type(evidence)(6, sample_record(CITY, 7).canonical_bytes(), evidence.leaf_hash, evidence.path, evidence.seal)
    with pytest.raises(ProofError):
        verify_record_proof(forged, key.public_key())
    moved = type(evidence)(7, evidence.leaf_data, evidence.leaf_hash, evidence.path, evidence.seal)
    with pytest.raises(ProofError):
        verify_record_proof(moved, key.public_key())


def test_pruning_is_refused_within_retention(ledger, clock):
    _fill(ledger, [3])
    with pytest.raises(RetentionError):
        ledger.prune(clock.now - timedelta(days=365 * 7 - 10))
    assert ledger.entry(0) is not None


def test_pruning_past_retention_keeps_the_tree_verifiable_and_is_recorded(engine, key):
    clock = Clock(datetime(2016, 4, 1, 9, 0, tzinfo=UTC))
    ledger = Ledger(engine, CITY, key, clock=clock)
    _fill(ledger, [5, 5])
    clock.advance(days=30)
    _fill(ledger, [4])
    ledger.checkpoint()
    old_person = sample_record(CITY, 2).person_key
    root_before = ledger.root_hash()

    clock.now = datetime(2023, 4, 15, tzinfo=UTC)  # past seven years for the first ten only
    result = ledger.prune(datetime(2016, 4, 2, tzinfo=UTC))
    assert (result.first_index, result.end_index, result.records_pruned) == (0, 10, 10)
    assert result.receipt.index == 14
    notice = ledger.entry(14)
    assert isinstance(notice, RetentionPruning) and notice.records_pruned == 10
    assert ledger.entry(3) is None and ledger.entry(12) == sample_record(CITY, 12)
    assert ledger.records_about(old_person, include_non_disclosure=True) == []
    assert ledger.root_hash(14) == root_before
    ledger.inclusion_proof(3).verify()
    assert ledger.prune(datetime(2016, 4, 2, tzinfo=UTC)).receipt is None  # nothing more is due

    clock.now = datetime(2024, 6, 1, tzinfo=UTC)
    again = ledger.prune(datetime(2017, 1, 1, tzinfo=UTC))
    # The second pruning starts where the first ended; the first pruning record stays.
    assert (again.first_index, again.end_index, again.records_pruned) == (10, 14, 4)
    assert isinstance(ledger.entry(14), RetentionPruning)
    ledger.checkpoint()
    report = verify_ledger(engine, CITY, key.public_key())
    assert report.ok, report
    assert (report.records_pruned, report.tree_size) == (14, 16)


def test_two_writers_on_one_tenant_never_fork_the_tree(engine, key):
    # Two Ledger objects with their own engines stand for two processes.
    from shared.db import make_engine

    second_engine = make_engine(engine.url.render_as_string(hide_password=False), schema=_schema_of(engine))
    writers = [Ledger(engine, CITY, key), Ledger(second_engine, CITY, key)]
    errors = []

    def write(ledger: Ledger, start: int) -> None:
        try:
            for n in range(start, start + 200, 10):
                ledger.append_many(sample_records(10, CITY, start=n))
                ledger.append(sample_record(CITY, n + 100_000))
        except Exception as error:  # surfaced below: a thread's failure must fail the test
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w, i * 1000)) for i, w in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    second_engine.dispose()
    assert errors == []
    assert writers[0].tree_size() == 2 * (200 + 20)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(seals)) == 2 * 40
    report = verify_ledger(engine, CITY, key.public_key())
    assert report.ok, report


def _schema_of(engine) -> str | None:
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT current_schema()").scalar()
