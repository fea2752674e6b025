"""Resident changes take effect exactly once in every consumer, even when NATS dies mid-stream.

The consumers: the integrated address system, the welfare address system and the
Juki-net CS.

Real processes: the stack as `renkei up` starts it, changes entered at the registry's
counter over HTTP, and nats-server killed with SIGKILL and started again while changes
keep coming. Afterwards every consumer has applied every change once, and holds what the
register holds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
import pyotp
import pytest
from sqlalchemy import func, select

from renkei.processes import spawn
from renkei.stack import RunRecord, nats_server_binary, run_file
from renkei.testkit import database_url_for_test
from services.integrated_address.models import Addressee
from services.integrated_address.models import AppliedChange as IntegratedApplied
from services.juki_cs.models import IdentityInfo, PrefectureForwarding
from services.resident_registry.models import ResidentChange, ResidentEntry
from services.welfare_address.models import AppliedChange as WelfareApplied
from services.welfare_address.models import WelfareAddressee
from shared.config import ServiceSettings
from shared.service import open_database

pytestmark = pytest.mark.fault

CITY = "112224"
PEOPLE = 120
CHANGES_BEFORE, CHANGES_DURING, CHANGES_AFTER = 30, 30, 30


def renkei(*args: str, env: dict, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "renkei", *args], capture_output=True, text=True, env=env, input=stdin, timeout=180)


def staff_session(url: str, data: Path, env: dict) -> dict[str, str]:
    password = "a registrar's long password"
    added = renkei(
        "staff", "add", "--data", str(data), "--service", "resident_registry", "--city", CITY,
        "--user", "r.tanaka", "--name", "田中 礼子", "--role", "registrar", "--password-stdin",
        env=env, stdin=password + "\n",
    )
    assert added.returncode == 0, added.stdout + added.stderr
    secret = next(line.split(":", 1)[1].strip() for line in added.stdout.splitlines() if line.startswith("TOTP secret"))
    reply = httpx.post(f"{url}/staff/login", json={"user_id": "r.tanaka", "password": password, "totp": pyotp.TOTP(secret).now()})
    reply.raise_for_status()
    return {"Authorization": f"Bearer {reply.json()['token']}"}


def database(data: Path, service: str, env: dict):
    return open_database(ServiceSettings(service=service, city=CITY, data_dir=data, database_url=env.get("RENKEI_DATABASE_URL")))


def move(url: str, headers: dict, resident_code: str, n: int) -> None:
    body = {
        "kind": "address_change",
        "effective_date": date.today().isoformat(),
        "resident_code": resident_code,
        "address": f"埼玉県越谷市越ヶ谷一丁目{n + 1}番{n % 9 + 1}号",
        "town": "越ヶ谷",
    }
    reply = httpx.post(f"{url}/changes", json=body, headers=headers, timeout=30)
    assert reply.status_code == 201, reply.text


def test_every_change_takes_effect_once_across_a_nats_crash(tmp_path):
    data = tmp_path / "var"
    env = os.environ.copy()
    restarted: list[int] = []
    with database_url_for_test(tmp_path) as url:
        if not url.startswith("sqlite"):
            env["RENKEI_DATABASE_URL"] = url
        up = renkei("up", "--data", str(data), "--cities", CITY, "--people", str(PEOPLE), "--detach", env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        try:
            record = RunRecord.load(run_file(data))
            registry_url = next(m.url for m in record.services if m.service == "resident_registry")
            headers = staff_session(registry_url, data, env)
            registry = database(data, "resident_registry", env)
            with registry.session() as session:
                codes = sorted(session.scalars(select(ResidentEntry.resident_code)))
            assert len(codes) == PEOPLE

            n = 0
            for _ in range(CHANGES_BEFORE):
                move(registry_url, headers, codes[n % PEOPLE], n)
                n += 1
            os.kill(record.nats.pid, signal.SIGKILL)  # no goodbye: JetStream recovers from its files
            for _ in range(CHANGES_DURING):  # the register goes on; its outbox keeps the events
                move(registry_url, headers, codes[n % PEOPLE], n)
                n += 1
            nats = spawn([nats_server_binary(), "-c", str(data / "nats" / "nats.conf")], env, data / "logs" / "nats-restarted.log")
            restarted.append(nats.pid)
            for _ in range(CHANGES_AFTER):
                move(registry_url, headers, codes[n % PEOPLE], n)
                n += 1

            with registry.session() as session:
                changes = session.scalar(select(func.count()).select_from(ResidentChange))
                addresses = dict(session.execute(select(ResidentEntry.resident_code, ResidentEntry.address)).all())
            assert changes == PEOPLE + n

            consumers = {
                "integrated_address": (IntegratedApplied, Addressee),
                "welfare_address": (WelfareApplied, WelfareAddressee),
            }
            deadline = time.monotonic() + 180
            for service, (applied_table, addressee_table) in consumers.items():
                db = database(data, service, env)
                while True:
                    with db.session() as session:
                        applied = session.scalar(select(func.count()).select_from(applied_table))
                    if applied >= changes or time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                with db.session() as session:
                    outcomes = dict(session.execute(select(applied_table.outcome, func.count()).group_by(applied_table.outcome)).all())
                    held = dict(session.execute(select(addressee_table.resident_code, addressee_table.address)).all())
                assert sum(outcomes.values()) == changes, f"{service}: {outcomes} of {changes} changes"
                assert outcomes.get("applied") == changes, f"{service} applied some change twice or late: {outcomes}"
                assert held == addresses, f"{service} does not hold what the register holds"

            # The Juki-net CS queues one forwarding to the prefecture per change it applies.
            juki = database(data, "juki_cs", env)
            while True:
                with juki.session() as session:
                    forwarded = session.scalar(select(func.count()).select_from(PrefectureForwarding))
                if forwarded >= changes or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            with juki.session() as session:
                held = dict(session.execute(select(IdentityInfo.resident_code, IdentityInfo.address)).all())
            assert forwarded == changes, f"juki_cs applied {forwarded} of {changes} changes"
            assert held == addresses, "juki_cs does not hold what the register holds"
        finally:
            renkei("down", "--data", str(data), env=env)
            for pid in restarted:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
