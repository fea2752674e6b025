"""Helpers shared by the Juki-net tests (it holds no test of its own).

Real parts only: the community server app against the fixtures' nats-server and database,
the prefecture server on a real socket with mutual TLS, resident changes published to
JetStream under the resident registry's own NATS login, as the registry's relay does.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx

from renkei.processes import free_port
from renkei.testkit import make_bus
from services.juki_cs.config import Settings as CsSettings
from services.juki_prefecture.config import Settings as PrefectureSettings
from services.juki_prefecture.serve import ServerThread
from services.resident_registry.population import Resident, generate
from shared.contracts.juki import IdentityRecord
from shared.contracts.residents import RESIDENT_CHANGED, ResidentChanged, ResidentRecord
from shared.events import MSG_ID_HEADER, ensure_stream
from shared.pki import ensure_pki, tls_files
from shared.trust import Principal

KOSHIGAYA = "112224"
SOKA = "112216"
PREFECTURE = Principal("juki_prefecture")
REGISTRY_PRINCIPAL = Principal("resident_registry", KOSHIGAYA)
BASE_TIME = datetime(2024, 4, 1, 9, 0, tzinfo=UTC)


def postgres_or_none(database_url: str) -> str | None:
    return None if database_url.startswith("sqlite") else database_url


def prepare_pki(stack_files) -> None:
    """The local CA and a certificate for every principal and the prefecture server."""
    ensure_pki(stack_files.data_dir, [*stack_files.principals, PREFECTURE])


def cs_settings(stack_files, nats, database_url: str, city: str = KOSHIGAYA, prefecture_url: str | None = None, **overrides) -> CsSettings:
    user, password = stack_files.login(Principal("juki_cs", city))
    return CsSettings(
        city=city,
        data_dir=stack_files.data_dir,
        nats_url=nats.url,
        nats_user=user,
        nats_password=password,
        database_url=postgres_or_none(database_url),
        prefecture_url=prefecture_url,
        forward_retry_max_seconds=overrides.pop("forward_retry_max_seconds", 0.3),
        **overrides,
    )


def prefecture_settings(stack_files, database_url: str, port: int | None = None) -> PrefectureSettings:
    return PrefectureSettings(data_dir=stack_files.data_dir, database_url=postgres_or_none(database_url), port=port or free_port())


def start_prefecture(stack_files, database_url: str, port: int | None = None, **overrides) -> ServerThread:
    return ServerThread(prefecture_settings(stack_files, database_url, port), **overrides).start()


def people(count: int, seed: int = 7) -> list[Resident]:
    return list(generate(KOSHIGAYA, count, seed))


def record_of(resident: Resident, **changes) -> ResidentRecord:
    fields = {
        "resident_code": resident.resident_code,
        "my_number": resident.my_number,
        "family_name": resident.family_name,
        "given_name": resident.given_name,
        "family_name_kana": resident.family_name_kana,
        "given_name_kana": resident.given_name_kana,
        "sex": resident.sex,
        "birth_date": resident.birth_date,
        "address": resident.address,
        "town": resident.town,
        "household_id": resident.household_id,
        "relation": resident.relation,
        "status": "resident",
    }
    fields.update(changes)
    return ResidentRecord(**fields)


def change(resident: Resident, kind: str = "move_in", at: datetime | None = None, change_id: str | None = None, **changes) -> ResidentChanged:
    status = {"move_out": "moved_out", "death": "deceased"}.get(kind, "resident")
    moment = at or BASE_TIME
    return ResidentChanged(
        change_id=change_id or uuid.uuid4().hex,
        kind=kind,
        effective_date=moment.date(),
        recorded_at=moment,
        resident=record_of(resident, **{"status": status, **changes}),
    )


def arrivals(residents: Iterable[Resident]) -> list[ResidentChanged]:
    return [change(r, at=BASE_TIME + timedelta(seconds=i)) for i, r in enumerate(residents)]


def living_elsewhere(resident: Resident, address: str) -> Resident:
    """The same kind of person registered in another city (Soka has no population tables)."""
    return replace(resident, address=address, city=SOKA)


def publish(stack_files, nats, changes: list[ResidentChanged], city: str = KOSHIGAYA, msg_ids: list[str] | None = None) -> None:
    """Publish resident changes to JetStream as the registry's relay does (one message id each)."""

    async def run() -> None:
        principal = Principal("resident_registry", city)
        bus = make_bus(stack_files.data_dir, stack_files.directory, principal)
        await bus.connect(nats.url, *stack_files.login(principal))
        try:
            js = bus.jetstream()
            await ensure_stream(js, "resident_registry", city)
            for i, event in enumerate(changes):
                msg_id = msg_ids[i] if msg_ids else uuid.uuid4().hex
                await js.publish(
                    RESIDENT_CHANGED.subject(city),
                    event.model_dump_json().encode(),
                    stream=RESIDENT_CHANGED.stream(city),
                    headers={MSG_ID_HEADER: msg_id},
                )
        finally:
            await bus.close()

    asyncio.run(run())


def wait_until(predicate: Callable[[], object], timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def identity_record(resident: Resident, at: datetime | None = None, **changes) -> IdentityRecord:
    fields = {
        "resident_code": resident.resident_code,
        "my_number": resident.my_number,
        "family_name": resident.family_name,
        "given_name": resident.given_name,
        "family_name_kana": resident.family_name_kana,
        "given_name_kana": resident.given_name_kana,
        "sex": resident.sex,
        "birth_date": resident.birth_date,
        "address": resident.address,
        "status": "resident",
        "updated_at": at or BASE_TIME,
    }
    fields.update(changes)
    return IdentityRecord(**fields)


def mtls_client(stack_files, principal: Principal, base_url: str) -> httpx.Client:
    """An HTTPS client presenting ``principal``'s certificate and trusting only the local CA."""
    return httpx.Client(base_url=base_url, verify=tls_files(stack_files.data_dir, principal).client_context(), timeout=10)
