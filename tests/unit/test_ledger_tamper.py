"""Tampering with any stored value makes verification fail, naming what failed first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from shared.ledger import Ledger, LedgerReader, verify_ledger
from shared.ledger.merkle import TreeFrontier
from shared.ledger.models import PROVISION_FIELDS, parse_utc
from shared.ledger.records import format_utc
from shared.ledger.testing import BACKENDS, ledger_database, postgresql_url, sample_records

CITY = "112224"
RECORD = 9  # a provided record, appended after the pruning
NOTICE = 7  # the pruning record: it accounts for records 0-6
SEAL = 4  # the seal of the one-record batch at index 13
CHECKPOINT = 1  # the checkpoint at size 320


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request):
    if request.param == "postgresql" and postgresql_url() is None:
        pytest.skip("RENKEI_TEST_DATABASE_URL is not set")
    return request.param


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


@pytest.fixture
def engine(backend, tmp_path, key):
    with ledger_database(backend, tmp_path) as engine:
        clock = Clock(datetime(2016, 4, 1, 9, tzinfo=UTC))
        ledger = Ledger(engine, CITY, key, clock=clock)
        fill = lambda *sizes: [  # noqa: E731
            ledger.append_many(sample_records(size, CITY, start=ledger.tree_size())) for size in sizes
        ]
        fill(4, 3)  # seals 0, 1: records 0-6, sealed in 2016
        clock.now = datetime(2023, 6, 1, tzinfo=UTC)
        ledger.prune(datetime(2016, 4, 2, tzinfo=UTC))  # seal 2: the pruning record, index 7
        fill(5, 1, 6)  # seals 3, 4, 5: records 8-19
        ledger.checkpoint()  # checkpoint 0 at size 20
        clock.now += timedelta(hours=1)
        fill(300)  # seal 6: records 20-319, enough for stored nodes at levels 4 and 8
        ledger.checkpoint()  # checkpoint 1 at size 320
        fill(2)  # seal 7
        ledger.checkpoint()  # checkpoint 2 at size 322
        report = verify_ledger(engine, CITY, key.public_key())
        assert report.ok, report
        yield engine


def _changed(column: str, value):
    """A different value of the same kind, as an insider editing the database would write."""
    if column == "tenant":
        return "112216"
    if value is None:
        return "2024-04-01T09:00:03.000000Z" if column.endswith("_at") else "書き換え"
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, bytes | memoryview):
        data = bytearray(value)
        data[-1] ^= 1
        return bytes(data)
    if len(value) == 27 and value.endswith("Z"):
        return format_utc(parse_utc(value) + timedelta(microseconds=1))
    return value[:-1] + ("0" if value[-1] != "0" else "1")


def _tamper(engine, table: str, where: dict, column: str) -> None:
    condition = " AND ".join(f'"{name}" = :w_{name}' for name in where)
    params = {f"w_{name}": value for name, value in {"tenant": CITY, **where}.items()}
    condition = " AND ".join(filter(None, ['"tenant" = :w_tenant', condition]))
    with engine.begin() as conn:
        old = conn.execute(text(f'SELECT "{column}" FROM {table} WHERE {condition}'), params).scalar_one_or_none()
        value = 10_000 if column in ("idx", "seq") else _changed(column, old)  # keys: away from every other row
        changed = conn.execute(text(f'UPDATE {table} SET "{column}" = :value WHERE {condition}'), {**params, "value": value})
        assert changed.rowcount == 1


def _delete(engine, table: str, where: dict) -> None:
    condition = " AND ".join(f'"{name}" = :{name}' for name in where)
    with engine.begin() as conn:
        assert (
            conn.execute(text(f"DELETE FROM {table} WHERE tenant = :tenant AND {condition}"), {"tenant": CITY, **where}).rowcount
            == 1
        )


CASES = (
    [("ledger_provision_records", {"idx": RECORD}, column, "record", RECORD) for column in (*PROVISION_FIELDS, "idx")]
    + [("ledger_leaves", {"idx": RECORD}, column, "record", RECORD) for column in ("tenant", "idx", "leaf_hash")]
    + [
        # A pruning record that no longer hashes right accounts for nothing: the first
        # record it pruned is the first failure.
        ("ledger_pruning_records", {"idx": NOTICE}, column, "record", 0)
        for column in ("tenant", "idx", "pruned_before", "first_index", "end_index", "records_pruned", "pruned_at")
    ]
    + [
        ("ledger_seals", {"seq": SEAL}, column, "batch seal", SEAL)
        for column in ("tenant", "seq", "first_index", "tree_size", "root_hash", "sealed_at", "signature")
    ]
    + [
        ("ledger_checkpoints", {"seq": CHECKPOINT}, column, "checkpoint", CHECKPOINT)
        for column in ("tenant", "seq", "tree_size", "root_hash", "made_at", "signature")
    ]
    + [("ledger_nodes", {"level": 4, "idx": 3}, column, "tree node", None) for column in ("tenant", "level", "idx", "hash")]
    + [("ledger_nodes", {"level": 8, "idx": 0}, "hash", "tree node", None)]
    + [("ledger_trees", {}, column, "tree", None) for column in ("size", "frontier", "seals", "last_sealed_at")]
)


@pytest.mark.parametrize(("table", "where", "column", "subject", "position"), CASES, ids=lambda v: str(v))
def test_changing_any_stored_value_is_found_and_named(engine, key, table, where, column, subject, position):
    _tamper(engine, table, where, column)
    report = verify_ledger(engine, CITY, key.public_key())
    assert not report.ok
    assert (report.failure.subject, report.failure.position) == (subject, position), report


@pytest.mark.parametrize(
    ("table", "where", "subject", "position"),
    [
        ("ledger_provision_records", {"idx": RECORD}, "record", RECORD),
        ("ledger_leaves", {"idx": RECORD}, "record", RECORD),
        ("ledger_pruning_records", {"idx": NOTICE}, "record", 0),
        ("ledger_seals", {"seq": SEAL}, "batch seal", SEAL),
        ("ledger_checkpoints", {"seq": CHECKPOINT}, "checkpoint", CHECKPOINT),
        ("ledger_nodes", {"level": 4, "idx": 3}, "tree node", None),
    ],
    ids=lambda v: str(v),
)
def test_deleting_a_stored_row_is_found_and_named(engine, key, table, where, subject, position):
    _delete(engine, table, where)
    report = verify_ledger(engine, CITY, key.public_key())
    assert (report.failure.subject, report.failure.position) == (subject, position), report


def test_a_record_stored_outside_the_log_is_found(engine, key):
    with engine.begin() as conn:
        row = (
            conn.execute(text("SELECT * FROM ledger_provision_records WHERE tenant = :t AND idx = 9"), {"t": CITY})
            .mappings()
            .one()
        )
        columns = ", ".join(f'"{c}"' for c in row)
        conn.execute(
            text(f"INSERT INTO ledger_provision_records ({columns}) VALUES ({', '.join(':' + c for c in row)})"),
            {**row, "idx": 5000},
        )
    report = verify_ledger(engine, CITY, key.public_key())
    assert (report.failure.subject, report.failure.position) == ("record", 5000), report


def test_contents_put_back_into_a_pruned_record_are_found(engine, key):
    with engine.begin() as conn:
        row = (
            conn.execute(text("SELECT * FROM ledger_provision_records WHERE tenant = :t AND idx = 9"), {"t": CITY})
            .mappings()
            .one()
        )
        columns = ", ".join(f'"{c}"' for c in row)
        conn.execute(
            text(f"INSERT INTO ledger_provision_records ({columns}) VALUES ({', '.join(':' + c for c in row)})"),
            {**row, "idx": 2},
        )
    report = verify_ledger(engine, CITY, key.public_key())
    assert (report.failure.subject, report.failure.position) == ("record", 2), report


def test_another_key_verifies_nothing(engine):
    report = verify_ledger(engine, CITY, Ed25519PrivateKey.generate().public_key())
    assert (report.failure.subject, report.failure.position) == ("batch seal", 0), report


def test_a_log_cut_back_with_its_checkpoints_is_caught_by_a_kept_checkpoint(engine, key):
    kept = LedgerReader(engine, CITY).latest_checkpoint()
    assert verify_ledger(engine, CITY, key.public_key(), trusted=[kept]).ok
    # The operator drops the last batch, its seal and its checkpoint, and rewinds the tree.
    with engine.begin() as conn:
        for table in ("ledger_provision_records", "ledger_leaves"):
            conn.execute(text(f"DELETE FROM {table} WHERE tenant = :t AND idx >= 320"), {"t": CITY})
        conn.execute(text("DELETE FROM ledger_seals WHERE tenant = :t AND seq = 7"), {"t": CITY})
        conn.execute(text("DELETE FROM ledger_checkpoints WHERE tenant = :t AND seq = 2"), {"t": CITY})
        sealed_at = conn.execute(text("SELECT sealed_at FROM ledger_seals WHERE tenant = :t AND seq = 6"), {"t": CITY}).scalar()
        rewound = TreeFrontier()
        for value in conn.execute(
            text("SELECT leaf_hash FROM ledger_leaves WHERE tenant = :t ORDER BY idx"), {"t": CITY}
        ).scalars():
            rewound.append(bytes(value))
        conn.execute(
            text("UPDATE ledger_trees SET size = 320, frontier = :f, seals = 7, last_sealed_at = :s WHERE tenant = :t"),
            {"f": rewound.to_bytes(), "s": sealed_at, "t": CITY},
        )
    assert verify_ledger(engine, CITY, key.public_key()).ok  # the database alone cannot tell
    report = verify_ledger(engine, CITY, key.public_key(), trusted=[kept])
    assert (report.failure.subject, report.failure.position) == ("trusted checkpoint", 0), report


def test_a_rewritten_log_is_caught_by_a_kept_checkpoint(engine, key, tmp_path, backend):
    kept = LedgerReader(engine, CITY).checkpoints()[0]
    with ledger_database(backend, tmp_path) as forged:
        ledger = Ledger(forged, CITY, key)  # the operator holds the key and writes a new history
        ledger.append_many(sample_records(25, CITY, start=100))
        assert verify_ledger(forged, CITY, key.public_key()).ok
        report = verify_ledger(forged, CITY, key.public_key(), trusted=[kept])
    assert (report.failure.subject, report.failure.position) == ("trusted checkpoint", 0), report
    assert "not consistent" in report.failure.reason


def test_bytes_that_are_not_text_in_a_text_field_are_named(engine, key, backend):
    if backend != "sqlite":
        pytest.skip("PostgreSQL refuses text that is not UTF-8 on write")
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE ledger_provision_records SET person_key = CAST(X'FFFE41' AS TEXT) WHERE idx = :i"), {"i": RECORD}
        )
    report = verify_ledger(engine, CITY, key.public_key())
    assert (report.failure.subject, report.failure.position) == ("record", RECORD), report
