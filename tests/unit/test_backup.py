"""Backups (M29): a data folder with real databases is backed up while written, restored into a
new folder, and comes back whole; a damaged archive and a live folder are refused, and a
restore that is refused writes nothing. On SQLite files, and on PostgreSQL schemas when the
suite runs against PostgreSQL."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from renkei.backup import BackupError, backup, restore
from renkei.cli import app as cli
from renkei.seed_cli import open_register
from renkei.stack import prepare
from services.resident_registry.models import ResidentEntry
from services.resident_registry.seeding import seed

CITY = "112224"


def _register_digest(data_dir: Path, database_url: str | None) -> tuple[int, str]:
    db = open_register(data_dir, CITY, database_url)
    try:
        with db.session() as session:
            rows = session.execute(select(ResidentEntry.resident_code, ResidentEntry.my_number, ResidentEntry.address).order_by(ResidentEntry.resident_code)).all()
            count = session.scalar(select(func.count()).select_from(ResidentEntry))
    finally:
        db.dispose()
    return count, hashlib.sha256(repr(rows).encode()).hexdigest()


@pytest.fixture
def folder(tmp_path, database_url):
    """A prepared data folder whose resident register holds a seeded population."""
    data = tmp_path / "var"
    prepare(data, [CITY], nats_port=14999, monitor_port=18999)  # as 'renkei up' prepares it; nothing listens
    pg = None if database_url.startswith("sqlite") else database_url
    db = open_register(data, CITY, pg)
    try:
        seed(db, CITY, 200, seed=5)
    finally:
        db.dispose()
    return data, pg


def test_a_backup_restores_into_a_new_folder_whole(folder, tmp_path):
    data, pg = folder
    before = _register_digest(data, pg)
    archive = tmp_path / "backups" / "var.tar.gz"

    # Written while the register takes more people: the snapshot is consistent, whatever it holds.
    writer = threading.Thread(target=lambda: _seed_more(data, pg))
    writer.start()
    report = backup(data, archive, pg)
    writer.join()
    assert archive.stat().st_mode & 0o777 == 0o600  # it holds private keys
    assert report.databases and report.members > len(report.databases)

    if pg:  # the schemas come back from the dumps: wipe them first
        _drop_register_schema(pg)
    restored = tmp_path / "restored"
    restore(archive, restored, pg)
    count, _ = _register_digest(restored, pg)
    assert count >= before[0]  # everything committed before the backup began, and a readable database
    for name in ("keys", "trust/directory.json", "pki", "nats/credentials.json"):
        assert (restored / name).exists()
    assert sorted(p.name for p in (restored / "keys").iterdir()) == sorted(p.name for p in (data / "keys").iterdir())


def test_a_damaged_archive_or_a_used_folder_is_refused_and_nothing_is_written(folder, tmp_path):
    data, pg = folder
    archive = tmp_path / "var.tar.gz"
    backup(data, archive, pg)

    with pytest.raises(BackupError, match="not empty"):
        restore(archive, data, pg)

    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(archive) as original, tarfile.open(damaged, "w:gz") as out:
        for member in original.getmembers():
            content = original.extractfile(member).read() if member.isfile() else None
            if member.name == "trust/directory.json":
                content = content.replace(b"signing_key", b"signing_kez")
                member.size = len(content)
            out.addfile(member, io.BytesIO(content) if content is not None else None)
    target = tmp_path / "from-damaged"
    with pytest.raises(BackupError, match="trust/directory.json"):
        restore(damaged, target, pg)
    assert not target.exists()

    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(gzip.compress(gzip.decompress(archive.read_bytes())[:4096]))
    with pytest.raises(BackupError):
        restore(truncated, tmp_path / "from-truncated", pg)
    assert not (tmp_path / "from-truncated").exists()

    with pytest.raises(BackupError, match="outside"):
        backup(data, data / "inside.tar.gz", pg)


def test_the_cli_backs_up_and_restores(folder, tmp_path):
    data, pg = folder
    env = {"RENKEI_DATABASE_URL": pg} if pg else {}
    archive = tmp_path / "cli.tar.gz"
    source = _register_digest(data, pg)
    made = CliRunner().invoke(cli, ["backup", "--data", str(data), "--output", str(archive)], env=env)
    assert made.exit_code == 0, made.output
    again = CliRunner().invoke(cli, ["restore", "--input", str(archive), "--data", str(data)], env=env)
    assert again.exit_code == 1 and "not empty" in " ".join(again.output.split())
    if pg:
        _drop_register_schema(pg)
    restored = CliRunner().invoke(cli, ["restore", "--input", str(archive), "--data", str(tmp_path / "back")], env=env)
    assert restored.exit_code == 0, restored.output
    assert _register_digest(tmp_path / "back", pg) == source


def _seed_more(data: Path, pg: str | None) -> None:
    db = open_register(data, CITY, pg)
    try:
        seed(db, CITY, 250, seed=6)
    finally:
        db.dispose()


def _drop_register_schema(pg: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine("postgresql+psycopg://" + pg.split("://", 1)[1])
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "resident_registry_{CITY}" CASCADE'))
    engine.dispose()

