"""``renkei seed``: put a city's synthetic population on its resident register (模擬住民データの投入).

Writes into the database the stack gives that city's resident registry (the SQLite file
under ``--data``, or its schema in ``--database-url``), migrating it first, so it works
whether or not the stack is running: each new person's ``ResidentChanged`` event waits in
the registry's outbox until the registry's relay publishes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from services.resident_registry.app import SPEC
from services.resident_registry.population import generate
from services.resident_registry.seeding import DEFAULT_BATCH, seed
from shared.config import ServiceSettings
from shared.db import Database
from shared.ids import InvalidIdentifier, validate_local_government_code
from shared.service import migrate_database, open_database

SERVICE = "resident_registry"
DEFAULT_PEOPLE = 340_000  # about Koshigaya's population

app = typer.Typer(help="Seed a city's resident register with its synthetic population.")
err = Console(stderr=True)


def open_register(data: Path, city: str, base_url: str | None) -> Database:
    """The city's resident register as the stack keeps it, migrated to the newest revision."""
    db = open_database(ServiceSettings(service=SERVICE, city=city, data_dir=data, database_url=base_url))
    migrate_database(db, SPEC)
    return db


def has_population(city: str) -> bool:
    """Whether the synthetic population knows the city's towns."""
    try:
        next(generate(city, 0, 1), None)
    except ValueError:
        return False
    return True


@app.callback(invoke_without_command=True)
def seed_command(
    data: Annotated[Path, typer.Option("--data", envvar="RENKEI_DATA_DIR", help="The data folder of the stack.")] = Path("var"),
    city: Annotated[str, typer.Option("--city", help="The city's six-digit local-government code.")] = "112224",
    people: Annotated[int, typer.Option("--people", min=0, help="How many people the population has.")] = DEFAULT_PEOPLE,
    seed_value: Annotated[int, typer.Option("--seed", help="The seed: the same seed gives the same people.")] = 1,
    base_url: Annotated[
        str | None,
        typer.Option("--database-url", envvar="RENKEI_DATABASE_URL", help="PostgreSQL URL (SQLite under --data when unset)."),
    ] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="People stored per transaction.")] = DEFAULT_BATCH,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the report, as JSON.")] = False,
) -> None:
    """Store the city's synthetic population; people already on the register are left as they are."""
    try:
        city = validate_local_government_code(city, field="city")
        next(generate(city, 0, seed_value), None)  # a city the population has no town data for fails here
    except (InvalidIdentifier, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--city") from None
    db = open_register(data, city, base_url)
    try:
        with Progress(
            TextColumn("[bold]seeding {task.fields[city]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=as_json,
            transient=as_json,
        ) as progress:
            task = progress.add_task("seed", total=people, city=city)
            report = seed(db, city, people, seed_value, batch=batch, progress=lambda n: progress.advance(task, n))
    finally:
        db.dispose()
    if as_json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
        return
    err.print(
        f"{report.added:,} people added ({report.births:,} by birth, {report.move_ins:,} by move-in), "
        f"{report.already_present:,} already on the register"
        + (f", {report.my_number_taken:,} skipped (My Number held by another entry)" if report.my_number_taken else "")
        + f"; {report.events:,} events in the outbox; {report.seconds:.1f} s"
    )
