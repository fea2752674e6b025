"""Backup and restore of a data folder (バックアップ, M29).

A backup is one gzipped tar archive holding:
- every service's database: each SQLite file copied through SQLite's online backup API (a
  consistent snapshot while services write), or, with a PostgreSQL URL, each service's schema
  dumped by ``pg_dump`` (custom format);
- the keys, the trust directory, the local CA and the NATS configuration, without which the
  databases' signatures, sealed answers and logins mean nothing;
- JetStream's store, when no stack runs from the folder (a running server's files are not a
  consistent copy; the outboxes hold what is not yet published, and each consumer's inbox
  what it took, so the events that matter are in the databases either way);
- ``manifest.json``: every member's size and SHA-256.

Restore checks every member against the manifest before it writes anything, and writes only
into a new or empty folder, so a damaged archive never leaves half a folder, and a live
folder is never overwritten. The archive holds private keys: it is written 0600.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from shared.db import schema_name
from shared.trust import Principal, TrustDirectory

MANIFEST = "manifest.json"
FORMAT = "renkei-backup/1"
#: What besides the databases a folder needs to come back: identities, CA, NATS login.
KEPT_FOLDERS = ("keys", "trust", "pki")
KEPT_FILES = ("nats/nats.conf", "nats/credentials.json")
JETSTREAM = "nats/jetstream"


class BackupError(Exception):
    """A backup or restore that cannot be done; nothing was written."""


@dataclass
class BackupReport:
    archive: Path
    members: int
    databases: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def backup(data_dir: Path, archive: Path, database_url: str | None = None, stack_running: bool = False) -> BackupReport:
    data_dir, archive = Path(data_dir).resolve(), Path(archive).resolve()
    if not (data_dir / "trust").is_dir():
        raise BackupError(f"{data_dir} is not a prepared data folder (no trust directory)")
    if archive.is_relative_to(data_dir):
        raise BackupError("the archive must be written outside the data folder it backs up")
    report = BackupReport(archive, 0)
    with tempfile.TemporaryDirectory(prefix="renkei-backup-") as scratch:
        staged = Path(scratch)
        if database_url:
            for principal in _principals(data_dir):
                name = f"postgresql/{schema_name(principal.service, principal.city)}.dump"
                if _pg_dump(database_url, schema_name(principal.service, principal.city), staged / name):
                    report.databases.append(name)
        else:
            for source in sorted((data_dir / "db").rglob("*.sqlite3")):
                name = source.relative_to(data_dir).as_posix()
                _sqlite_snapshot(source, staged / name)
                report.databases.append(name)
        for folder in KEPT_FOLDERS:
            if (data_dir / folder).is_dir():
                shutil.copytree(data_dir / folder, staged / folder)
        for name in KEPT_FILES:
            if (data_dir / name).is_file():
                (staged / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(data_dir / name, staged / name)
        if (data_dir / JETSTREAM).is_dir():
            if stack_running:
                report.notes.append("JetStream's store left out: a stack runs from this folder (what matters is in the outboxes and inboxes)")
            else:
                shutil.copytree(data_dir / JETSTREAM, staged / JETSTREAM)
        members = sorted(p for p in staged.rglob("*") if p.is_file())
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(),
            "database": "postgresql" if database_url else "sqlite",
            "members": {p.relative_to(staged).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)} for p in members},
        }
        archive.parent.mkdir(parents=True, exist_ok=True)
        partial = archive.with_name(archive.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w:gz") as tar:
                _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
                for path in members:
                    tar.add(path, arcname=path.relative_to(staged).as_posix(), recursive=False)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            partial.unlink(missing_ok=True)  # a half-written archive is not left to be mistaken for one
            raise
        partial.replace(archive)  # a backup interrupted half-way never looks like a whole one
        report.members = len(members)
    return report


def restore(archive: Path, data_dir: Path, database_url: str | None = None) -> BackupReport:
    archive, data_dir = Path(archive).resolve(), Path(data_dir).resolve()
    if data_dir.exists() and any(data_dir.iterdir()):
        raise BackupError(f"{data_dir} is not empty: restore into a new folder, then put it in place")
    with tempfile.TemporaryDirectory(prefix="renkei-restore-") as scratch:
        staged = Path(scratch)
        manifest = _unpack_checked(archive, staged)
        dumps = sorted(name for name in manifest["members"] if name.startswith("postgresql/"))
        if manifest["database"] == "postgresql" and not database_url:
            raise BackupError("the archive holds PostgreSQL dumps: give the PostgreSQL URL to restore them into")
        for name in dumps:
            _pg_restore(database_url, staged / name)
            (staged / name).unlink()
        if (staged / "postgresql").is_dir():
            (staged / "postgresql").rmdir()
        data_dir.mkdir(parents=True, exist_ok=True)
        for entry in staged.iterdir():
            shutil.move(str(entry), data_dir / entry.name)
    report = BackupReport(archive, len(manifest["members"]))
    report.databases = [n for n in manifest["members"] if n.startswith(("db/", "postgresql/"))]
    return report


def _unpack_checked(archive: Path, staged: Path) -> dict:
    """Every member, checked against the manifest (size, SHA-256, nothing missing, nothing extra)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            manifest_member = tar.extractfile(MANIFEST)
            if manifest_member is None:
                raise BackupError("the archive has no manifest")
            manifest = json.loads(manifest_member.read())
            if manifest.get("format") != FORMAT:
                raise BackupError(f"not a backup of this format: {manifest.get('format')!r}")
            names = {m.name for m in tar.getmembers() if m.isfile()} - {MANIFEST}
            if names != set(manifest["members"]):
                raise BackupError(f"the archive's members differ from its manifest: {sorted(names ^ set(manifest['members']))[:5]}")
            tar.extractall(staged, filter="data")
    except (tarfile.TarError, OSError, json.JSONDecodeError, KeyError) as exc:
        raise BackupError(f"the archive cannot be read: {exc}") from None
    for name, expected in manifest["members"].items():
        if _sha256(staged / name) != expected["sha256"]:
            raise BackupError(f"{name} does not match its SHA-256 in the manifest: the archive is damaged")
    return manifest


def _principals(data_dir: Path) -> list[Principal]:
    return [Principal.parse(name) for name in TrustDirectory.load(data_dir).principals()]


def _sqlite_snapshot(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _libpq_url(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


def _pg_dump(url: str, schema: str, target: Path) -> bool:
    """Dump one schema; False when the database has no such schema (a service never started)."""
    found = subprocess.run(
        ["psql", "--dbname", _libpq_url(url), "-tAc", f"SELECT 1 FROM pg_namespace WHERE nspname = '{schema}'"],
        capture_output=True, text=True,
    )
    if found.returncode != 0:
        raise BackupError(f"PostgreSQL cannot be read: {found.stderr.strip()}")
    if found.stdout.strip() != "1":
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["pg_dump", "--dbname", _libpq_url(url), "--schema", schema, "--format=custom", "--no-owner", "--file", str(target)],
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_dump of {schema} failed: {done.stderr.strip()}")
    return True


def _pg_restore(url: str, dump: Path) -> None:
    done = subprocess.run(
        ["pg_restore", "--dbname", _libpq_url(url), "--clean", "--if-exists", "--no-owner", "--exit-on-error", str(dump)],
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_restore of {dump.name} failed: {done.stderr.strip()}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))
