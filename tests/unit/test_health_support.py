"""Helpers shared by the health-management tests (it holds no test of its own).

Real parts only: the health management app (and, for enrolment, the integrated address
app) against the fixtures' nats-server and database; people put into the register the way
enrolment puts them, through ``register.enrol``.
"""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

from services.health_mgmt import register
from services.health_mgmt.app import MIGRATIONS
from services.health_mgmt.clinics import put_clinic
from services.health_mgmt.config import Settings
from services.health_mgmt.models import Base
from shared import migrate
from shared.db import Database, schema_name
from shared.ids import generate_resident_code, integrated_address_number
from shared.models import KernelBase
from shared.trust import Principal

CITY = "112224"
HEALTH = Principal("health_mgmt", CITY)
CLINIC = "1110000011"
CLINIC_NAME = "越谷こどもクリニック"
OTHER_CLINIC = "1110000029"


def postgres_or_none(database_url: str) -> str | None:
    return None if database_url.startswith("sqlite") else database_url


def health_settings(stack_files, nats, database_url: str, **overrides) -> Settings:
    user, password = stack_files.login(HEALTH)
    return Settings(
        city=CITY, data_dir=stack_files.data_dir, nats_url=nats.url, nats_user=user, nats_password=password,
        database_url=postgres_or_none(database_url), **overrides,
    )


def open_register(data_dir: Path, database_url: str) -> Database:
    """The register's database as the service (and the CLI) opens it, migrated."""
    pg = postgres_or_none(database_url)
    from shared.db import database_url as url_of

    url = url_of(data_dir, "health_mgmt", CITY, pg)
    db = Database(url, None if url.startswith("sqlite") else schema_name("health_mgmt", CITY))
    migrate.upgrade(db, [MIGRATIONS], [KernelBase.metadata, Base.metadata])
    return db


_serials = random.Random(7)


def new_number() -> str:
    return integrated_address_number(CITY, f"{_serials.randrange(10**9):09d}")


def enrol(db: Database, birth_date: date, sex: str = "female", name: str = "越谷　花子", **flags) -> dict:
    """A person in the register; returns their number, voucher number and birth date."""
    number = new_number()
    with db.session() as session:
        subject, _ = register.enrol(
            session,
            number,
            {
                "resident_code": generate_resident_code(_serials),
                "name": name,
                "name_kana": "コシガヤ　ハナコ",
                "sex": sex,
                "birth_date": birth_date,
                "address": "埼玉県越谷市越ヶ谷一丁目1番1号",
                "status": "resident",
                **flags,
            },
        )
        return {"number": number, "voucher": subject.voucher_number, "birth_date": birth_date, "name": name}


def add_clinics(db: Database) -> None:
    with db.session() as session:
        put_clinic(session, CLINIC, CLINIC_NAME)
        put_clinic(session, OTHER_CLINIC, "草加内科医院", in_city=False)
