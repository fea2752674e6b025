"""The local stack as a newcomer runs it: real processes, real NATS, real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from renkei.demo_cli import DOSES
from renkei.processes import is_running
from renkei.stack import SERVICE_BASE_PORT, RunRecord, principals_for, run_file
from renkei.testkit import database_url_for_test, make_bus
from shared.contracts import REGISTRY
from shared.contracts.system import PingRequest
from shared.nats_config import nats_user
from shared.trust import Principal, TrustDirectory

pytestmark = pytest.mark.e2e


def renkei(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "renkei", *args], capture_output=True, text=True, timeout=timeout, env=env or os.environ.copy()
    )


@pytest.fixture
def stack_env(tmp_path):
    """The environment of a stack run (its own PostgreSQL database when tests run on PostgreSQL);
    whatever the test leaves running is stopped afterwards."""
    env = os.environ.copy()
    with database_url_for_test(tmp_path) as url:
        if not url.startswith("sqlite"):
            env["RENKEI_DATABASE_URL"] = url
        try:
            yield env
        finally:
            renkei("down", "--data", str(tmp_path / "var"))


async def ping_everyone(data: Path, record: RunRecord) -> dict[str, str]:
    me = Principal("ops_console")
    credentials = json.loads((data / "nats" / "credentials.json").read_text())
    bus = make_bus(data, TrustDirectory.load(data), me)
    await bus.connect(record.nats.url, nats_user(me), credentials[nats_user(me)])
    answers = {}
    for member in record.services:
        if f"{member.service}.ping" not in REGISTRY.operations:
            continue  # a server of another organisation, reached over HTTPS only
        reply = await bus.request(REGISTRY.operation(member.service, "ping"), member.city, PingRequest(nonce=member.service))
        answers[str(member.principal)] = reply.principal
    await bus.close()
    return answers


def test_up_detach_status_and_down(tmp_path, stack_env):
    data = tmp_path / "var"
    blocker = socket.socket()  # a port already taken must not stop the stack
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        blocker.bind(("127.0.0.1", SERVICE_BASE_PORT))
        blocker.listen()
    except OSError:  # taken already, by some other process: as good a test
        pass
    try:
        started = time.monotonic()
        up = renkei("up", "--data", str(data), "--detach", env=stack_env)
        startup_seconds = time.monotonic() - started
    finally:
        blocker.close()
    assert up.returncode == 0, up.stdout + up.stderr
    print(f"renkei up --detach took {startup_seconds:.1f} s")
    assert f"port {SERVICE_BASE_PORT}" in up.stderr

    status = renkei("status", "--data", str(data), "--json")
    assert status.returncode == 0, status.stderr
    rows = json.loads(status.stdout)
    assert rows[0]["service"] == "nats" and rows[0]["url"].startswith("nats://") and rows[0]["city"] is None
    assert all(row["ready"] for row in rows)
    members = {(row["service"], row["city"]) for row in rows[1:]}
    assert members == {(p.service, p.city) for p in principals_for(["112224", "112216"])}
    assert ("provision_network", None) in members and ("ops_console", None) in members
    assert {city for _, city in members} == {"112224", "112216", None}

    record = RunRecord.load(run_file(data))
    for member in record.services:  # forked from the zygote, each is a process of its own, named for its service
        assert os.getsid(member.pid) == member.pid
        title = Path(f"/proc/{member.pid}/cmdline").read_text().rstrip("\0")
        assert title == " ".join(filter(None, ["renkei", member.service, member.city]))
    assert not [p for p in Path("/proc").glob("[0-9]*") if _cmdline(p).startswith("renkei zygote")]
    answers = asyncio.run(ping_everyone(data, record))
    assert answers == {name: name for name in answers} and len(answers) == len(members) - 1  # all but the prefecture
    health = next(m for m in record.services if m.service == "health_mgmt" and m.city == "112224")
    assert 'operation="health_mgmt.ping",outcome="ok"' in httpx.get(f"{health.url}/metrics").text

    # The assessment's move-in flow on this stack: Koshigaya asks Soka through the hub.
    demo = renkei("demo", "move-in", "--data", str(data), "--seed", "3", env=stack_env)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    summary = json.loads(demo.stdout)
    assert summary["status"] == "answered" and summary["doses_received"] == len(DOSES)
    assert [r["kind"] for r in summary["provision_records"]["112224"]] == ["query", "answer_received"]
    assert [r["kind"] for r in summary["provision_records"]["112216"]] == ["provision"]

    down = renkei("down", "--data", str(data))
    assert down.returncode == 0, down.stderr
    assert not any(is_running(m.pid, m.started) for m in record.members)
    assert not run_file(data).exists()
    assert renkei("status", "--data", str(data), "--json").returncode == 1


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_text()
    except OSError:
        return ""


def test_up_in_the_foreground_stops_everything_on_ctrl_c(tmp_path, stack_env):
    data = tmp_path / "var"
    process = subprocess.Popen(
        [sys.executable, "-m", "renkei", "up", "--data", str(data), "--cities", "112224"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=stack_env,
    )
    try:
        for line in process.stdout:  # the stack says when it is up
            if "Ctrl-C stops everything" in line:
                break
        assert renkei("status", "--data", str(data)).returncode == 0
        record = RunRecord.load(run_file(data))
        assert len(record.services) == len(principals_for(["112224"]))
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, out + err
    assert not any(is_running(m.pid, m.started) for m in record.members)


def test_a_bad_city_code_is_a_clear_error(tmp_path):
    result = renkei("up", "--data", str(tmp_path / "var"), "--cities", "112225")
    assert result.returncode == 1
    assert "112225" in result.stderr and "check digit" in result.stderr
    assert not run_file(tmp_path / "var").exists()
