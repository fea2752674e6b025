"""``renkei demo``: the assessment's flows, played on a running stack.

``move-in``: a person moves from the neighbour city (Soka, 112216) to Koshigaya (112224).
Soka's health management has registered their doses in Soka's provision database (副本);
a nurse enrols the person in Koshigaya's health management (its staff API, the number from
Koshigaya's integrated address system); Koshigaya's health management asks for their
vaccination history through the network, with the person's consent recorded; Soka's
intermediate server answers from its copy; and Koshigaya's health management takes the
doses in as vaccinated before the move-in (転入前接種) by itself, on the ``answered`` event.
The summary lists the doses read back from Koshigaya's register.

The demo plays some business systems' parts on the bus under their own identities (their
keys from the data folder): Soka's health management registering the copy and Koshigaya's
sending the query, and the integrated address systems' announcement of the person's
numbers (``number_assigned``) with their resident code. It signs in to Koshigaya's health
management as a nurse it creates for the run. Everything else is the stack's own: the
intermediate servers, the hub, the permits, the encryption, the provision records and the
register. It prints a JSON summary.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

KOSHIGAYA, SOKA = "112224", "112216"

app = typer.Typer(help="The assessment's flows, played on a running stack.", no_args_is_help=True)


@dataclass(frozen=True)
class StackAccess:
    """What the demo needs of a stack: its data folder (keys, trust directory, NATS logins),
    where NATS is, and the database URL when the stack runs on PostgreSQL."""

    data_dir: Path
    nats_url: str
    credentials: dict[str, str]
    database_url: str | None = None
    health_url: str | None = None  # Koshigaya's health management (its staff API)

    @property
    def contracts(self):
        from shared.contracts import REGISTRY

        return REGISTRY

    @classmethod
    def of_running_stack(cls, data_dir: Path, database_url: str | None) -> StackAccess:
        from renkei.stack import RunRecord, run_file

        path = run_file(Path(data_dir).resolve())
        if not path.exists():
            raise typer.BadParameter(f"no stack is recorded in {path.parent}: start one with 'renkei up --detach'")
        record = RunRecord.load(path)
        credentials = json.loads((Path(record.data_dir) / "nats" / "credentials.json").read_text())
        health = next((m.url for m in record.services if m.service == "health_mgmt" and m.city == KOSHIGAYA), None)
        return cls(Path(record.data_dir), record.nats.url, credentials, database_url, health_url=health)

    def bus(self, principal):
        from contextlib import asynccontextmanager

        from renkei.testkit import make_bus
        from shared.nats_config import nats_user
        from shared.trust import TrustDirectory

        @asynccontextmanager
        async def connected():
            bus = make_bus(self.data_dir, TrustDirectory.load(self.data_dir), principal)
            user = nats_user(principal)
            await bus.connect(self.nats_url, user, self.credentials[user])
            try:
                yield bus
            finally:
                await bus.close()

        return connected()


#: How the newcomer proves who they are at the counter (M01): they arrived without a card.
NOTICE_CARD = {"method": "notice_card_and_photo_id", "photo_id": "運転免許証"}
DOSES = [
    {"record_type": "bcg", "inoculation_date": "2021-08-02", "dose_number": 1, "lot_number": "KH215", "manufacturer": "日本ビーシージー製造"},
    {"record_type": "dpt_ipv", "inoculation_date": "2021-06-07", "dose_number": 1, "lot_number": "4K23A", "manufacturer": "KMバイオロジクス"},
    {"record_type": "dpt_ipv", "inoculation_date": "2021-07-12", "dose_number": 2, "lot_number": "4K23B", "manufacturer": "KMバイオロジクス"},
    {"record_type": "measles", "inoculation_date": "2022-04-18", "dose_number": 1, "lot_number": "MR0419", "manufacturer": "武田薬品工業"},
]


BIRTH_DATE = "2021-04-01"


async def _numbers(access: StackAccess, my_number: str, rng: random.Random, cities: tuple[str, ...] = (SOKA,)) -> dict[str, str]:
    """The person's integrated address number in each city, as its integrated address system
    assigns it (asked as the city's health management); drawn here where no system answers."""
    from shared.contracts.address import AssignNumberRequest
    from shared.errors import Unavailable
    from shared.ids import integrated_address_number
    from shared.trust import Principal

    numbers = {}
    for city in cities:
        try:
            async with access.bus(Principal("health_mgmt", city)) as bus:
                reply = await bus.request(access.contracts.operation("integrated_address", "assign"), city, AssignNumberRequest(my_number=my_number), timeout=10)
            numbers[city] = reply.integrated_address_number
        except (Unavailable, KeyError):
            numbers[city] = integrated_address_number(city, f"{rng.randrange(10**9):09d}")
    return numbers


class HealthTerminal:
    """Koshigaya's health management as a nurse at its terminal sees it: its staff API."""

    def __init__(self, access: StackAccess) -> None:
        if not access.health_url:
            raise RuntimeError(f"the stack runs no health management for {KOSHIGAYA}")
        self.access = access
        self.url = access.health_url
        self.headers: dict[str, str] = {}

    def _account(self) -> tuple[str, str, str]:
        """A nurse's account for this run, made as ``renkei staff add`` makes one."""
        import secrets
        from datetime import timedelta

        from services.health_mgmt.roles import ROLES
        from shared.config import ServiceSettings
        from shared.service import open_database
        from shared.staff import StaffDirectory

        settings = ServiceSettings(service="health_mgmt", city=KOSHIGAYA, data_dir=self.access.data_dir, database_url=self.access.database_url)
        db = open_database(settings)
        try:
            directory = StaffDirectory(db, issuer=f"Renkei {settings.principal}", idle=timedelta(minutes=15), lifetime=timedelta(hours=8))
            user, password = f"demo-nurse-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(18)
            account = directory.create_account(user, "転入 デモ担当", password, ["nurse"], "staff", known_roles=ROLES)
        finally:
            db.dispose()
        return user, password, account.totp_secret

    async def sign_in(self, client) -> None:
        import pyotp

        user, password, secret = await asyncio.to_thread(self._account)
        reply = await client.post(f"{self.url}/staff/login", json={"user_id": user, "password": password, "totp": pyotp.TOTP(secret).now()})
        reply.raise_for_status()
        self.headers = {"Authorization": f"Bearer {reply.json()['token']}"}

    async def enrol(self, client, my_number: str, rng: random.Random) -> dict[str, Any]:
        items = {"name": "転入　太郎", "name_kana": "テンニュウ　タロウ", "sex": "male", "birth_date": BIRTH_DATE,
                 "address": f"埼玉県越谷市越ヶ谷一丁目{rng.randrange(1, 30)}番{rng.randrange(1, 30)}号"}
        reply = await client.post(f"{self.url}/subjects", json={"my_number": my_number, "items": items, "identity": NOTICE_CARD}, headers=self.headers)
        reply.raise_for_status()
        return reply.json()["subject"]

    async def transferred(self, client, number: str) -> list[dict[str, Any]]:
        reply = await client.get(f"{self.url}/subjects/{number}", headers=self.headers)
        reply.raise_for_status()
        return [
            {
                "id": d["id"],
                "record_type": d["record_type"],
                "inoculation_date": d["dose_date"],
                "lot_number": d["items"].get("lot_number"),
                "source": d["source"],
                "vaccinated_before_move_in": d["items"].get("vaccinated_before_move_in", False),
            }
            for d in reply.json()["doses"]
            if d["source"] == "transfer"
        ]


async def _announce(access: StackAccess, city: str, number: str, resident_code: str) -> None:
    """``number_assigned``, as the city's integrated address system publishes it from its outbox."""
    from shared.contracts.network import NUMBER_ASSIGNED, NumberAssigned
    from shared.events import MSG_ID_HEADER, ensure_stream
    from shared.trust import Principal

    async with access.bus(Principal("integrated_address", city)) as bus:
        js = bus.jetstream()
        await ensure_stream(js, "integrated_address", city)
        payload = NumberAssigned(integrated_address_number=number, resident_code=resident_code)
        await js.publish(NUMBER_ASSIGNED.subject(city), payload.model_dump_json().encode(), stream=NUMBER_ASSIGNED.stream(city), headers={MSG_ID_HEADER: uuid.uuid4().hex})


async def _ask_when_linked(access: StackAccess, bus, request, timeout: float) -> Any:
    """Ask; while the symbol is still on its way from the hub, ask again shortly."""
    from shared.errors import Conflict

    operation = access.contracts.operation("intermediate_server", "query")
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await bus.request(operation, KOSHIGAYA, request, timeout=10)
        except Conflict:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _linked(access: StackAccess, cities: list[str], since: datetime, timeout: float) -> None:
    """Until each city's symbol job has run since ``since`` with nothing left queued."""
    from shared.contracts.network import SystemStatusRequest
    from shared.trust import Principal

    status = access.contracts.operation("intermediate_server", "system_status")
    deadline = time.monotonic() + timeout
    async with access.bus(Principal("ops_console")) as bus:
        for city in cities:
            while True:
                reply = await bus.request(status, city, SystemStatusRequest(days=1), timeout=10)
                job = next((b for b in reply.batches if b.name == "symbols"), None)
                if job and job.last_success_at and job.last_success_at > since and job.pending == 0:
                    break
                if time.monotonic() > deadline:
                    break  # the query below waits for the symbol itself
                await asyncio.sleep(0.3)


def _record_indices(access: StackAccess, city: str, person_key: str, serial: str) -> list[dict]:
    from shared.db import database_url, make_engine, schema_name
    from shared.ledger import LedgerReader

    url = database_url(access.data_dir, "intermediate_server", city, access.database_url)
    engine = make_engine(url, None if url.startswith("sqlite") else schema_name("intermediate_server", city))
    try:
        found = LedgerReader(engine, city).records_about(person_key, include_non_disclosure=True)
    finally:
        engine.dispose()
    return [{"index": r.index, "kind": r.record.kind, "outcome": r.record.outcome} for r in found if r.record.serial_number == serial]


async def move_in(access: StackAccess, seed: int | None = None, timeout: float = 60.0) -> dict[str, Any]:
    """The move-in flow; returns the summary the command prints."""
    import httpx

    from shared.ids import generate_my_number, generate_resident_code

    rng = random.Random(seed if seed is not None else uuid.uuid4().int)
    resident_code, my_number = generate_resident_code(rng), generate_my_number(rng)
    terminal = HealthTerminal(access)
    client = httpx.AsyncClient(timeout=30)
    try:
        await terminal.sign_in(client)
        subject = await terminal.enrol(client, my_number, rng)  # Koshigaya knows the person before asking
        numbers = {**await _numbers(access, my_number, rng), KOSHIGAYA: subject["integrated_address_number"]}
        return await _move_in(access, terminal, client, numbers, resident_code, timeout)
    finally:
        await client.aclose()


async def _move_in(access: StackAccess, terminal: HealthTerminal, client, numbers: dict[str, str], resident_code: str, timeout: float) -> dict[str, Any]:
    from shared.contracts import network as net
    from shared.trust import Principal

    since = datetime.now(UTC)
    for city in (SOKA, KOSHIGAYA):
        await _announce(access, city, numbers[city], resident_code)

    register = access.contracts.operation("intermediate_server", "register_copies")
    async with access.bus(Principal("health_mgmt", SOKA)) as bus:
        copy = net.CopyImport(item_code=net.VACCINATION_RECORDS, people=[net.PersonCopy(integrated_address_number=numbers[SOKA], records=DOSES)])
        await bus.request(register, SOKA, copy, timeout=10)
    await _linked(access, [SOKA, KOSHIGAYA], since, timeout)

    consent = net.Consent(obtained_at=datetime.now(UTC), method="at_counter", recorded_by="demo-clerk", reference="転入届")
    request = net.QueryRequest(
        integrated_address_number=numbers[KOSHIGAYA],
        provider=SOKA,
        affair_code=net.VACCINATION_AFFAIR,
        procedure_code=net.MOVE_IN_HISTORY_PROCEDURE,
        item_code=net.VACCINATION_RECORDS,
        consent=consent,
    )
    result_op = access.contracts.operation("intermediate_server", "query_result")
    async with access.bus(Principal("health_mgmt", KOSHIGAYA)) as bus:
        accepted = await _ask_when_linked(access, bus, request, timeout)
        deadline = time.monotonic() + timeout
        while True:
            result = await bus.request(result_op, KOSHIGAYA, net.QueryResultRequest(query_id=accepted.query_id), timeout=10)
            if result.status in net.FINAL_STATUSES or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)

    doses = result.records or []
    registered = await terminal.transferred(client, numbers[KOSHIGAYA])
    deadline = time.monotonic() + timeout
    while result.status == "answered" and len(registered) < len(doses) and time.monotonic() < deadline:
        await asyncio.sleep(0.3)  # Koshigaya's health management takes them in on the answered event
        registered = await terminal.transferred(client, numbers[KOSHIGAYA])
    summary: dict[str, Any] = {
        "query_id": result.query_id,
        "status": result.status,
        "serial_number": result.serial_number,
        "refusal_reason": result.refusal_reason,
        "requester": KOSHIGAYA,
        "provider": SOKA,
        "integrated_address_numbers": numbers,
        "doses_received": len(doses),
        # What Koshigaya's health management registered, read back from its register: 転入前接種.
        "doses_registered": registered,
    }
    if result.serial_number:
        summary["provision_records"] = {
            KOSHIGAYA: await asyncio.to_thread(_record_indices, access, KOSHIGAYA, numbers[KOSHIGAYA], result.serial_number),
            SOKA: await asyncio.to_thread(_record_indices, access, SOKA, numbers[SOKA], result.serial_number),
        }
    return summary


def _json_default(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(type(value).__name__)


@app.command("move-in")
def move_in_command(
    data: Annotated[Path, typer.Option("--data", help="the data folder of the running stack")] = Path("var"),
    database_url: Annotated[str | None, typer.Option("--database-url", envvar="RENKEI_DATABASE_URL", help="PostgreSQL URL, when the stack runs on it")] = None,
    seed: Annotated[int | None, typer.Option(help="seed of the synthetic person (a new one each run without it)")] = None,
) -> None:
    """A person moves from Soka to Koshigaya; Koshigaya asks Soka for their vaccination history."""
    from shared.errors import Problem

    access = StackAccess.of_running_stack(data, database_url)
    try:
        summary = asyncio.run(move_in(access, seed))
    except Problem as problem:
        typer.echo(json.dumps({"error": problem.to_dict()}, ensure_ascii=False, indent=2), err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(summary, ensure_ascii=False, indent=2, default=_json_default))
    if summary["status"] != "answered":
        raise typer.Exit(1)
