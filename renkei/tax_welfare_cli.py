"""``renkei tax-welfare``: the tax and welfare systems' (simulated) data tools.

``load`` takes a file in the format the health management imports (``統合宛名番号,生年月日,
区分``) into the city's tax or welfare records for a fiscal year, replacing what the
simulated assessment recorded for the people it names. It writes into the database the
stack gives that city's tax and welfare systems (the SQLite file under ``--data``, or its
schema in ``--database-url``), migrating it first, so it works whether or not the stack is
running. Each run is written to the service's operation log under ``--by`` (M08, M11).
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from services.tax_welfare import records
from services.tax_welfare.app import SPEC
from shared.config import ServiceSettings
from shared.db import Database
from shared.errors import Problem
from shared.ids import InvalidIdentifier, validate_local_government_code
from shared.oplog import Actor, Entry, OperationLog
from shared.service import migrate_database, open_database

SERVICE = "tax_welfare"

app = typer.Typer(help="The tax and welfare systems' (simulated) data tools.", no_args_is_help=True)
out = Console()


def open_records(data: Path, city: str, base_url: str | None) -> Database:
    """The city's tax and welfare records as the stack keeps them, migrated to the newest revision."""
    try:
        city = validate_local_government_code(city, field="city")
    except InvalidIdentifier as exc:
        raise typer.BadParameter(str(exc), param_hint="--city") from None
    db = open_database(ServiceSettings(service=SERVICE, city=city, data_dir=data, database_url=base_url))
    migrate_database(db, SPEC)
    return db


@app.command("load")
def load(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="統合宛名番号,生年月日,区分 (CSV, UTF-8 or CP932).")],
    source: Annotated[str, typer.Option("--source", help="tax (住民税: 課税/非課税) or welfare (生活保護: 受給).")],
    fiscal_year: Annotated[int, typer.Option("--fiscal-year", min=1990, max=2100, help="The fiscal year (年度) it is for.")],
    city: Annotated[str, typer.Option("--city", help="The city's six-digit local-government code.")],
    data: Annotated[Path, typer.Option("--data", envvar="RENKEI_DATA_DIR", help="The data folder of the stack.")] = Path("var"),
    base_url: Annotated[
        str | None, typer.Option("--database-url", envvar="RENKEI_DATABASE_URL", help="PostgreSQL URL (SQLite under --data when unset).")
    ] = None,
    by: Annotated[str, typer.Option("--by", help="Your personal staff user id, for the operation log.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Load local-tax or public-assistance records for a fiscal year. Exit status: 0 every row
    loaded, 1 some rows refused (listed with their line numbers), 2 the file cannot be read."""
    by = by or getpass.getuser()
    raw = file.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp932", errors="strict")
    db = open_records(data, city, base_url)
    try:
        with db.session() as session:
            report = records.load_file(session, text, source, fiscal_year)
    except Problem as problem:
        db.dispose()
        typer.echo(f"error: {problem.detail}", err=True)
        raise typer.Exit(2) from None
    result = vars(report)
    detail = {k: v for k, v in result.items() if k != "refused"} | {"refused": len(report.refused), "file": file.name}
    OperationLog(db).record(Entry(Actor(by, "staff"), "cli", "tax_welfare.records.load", "ok", detail=json.dumps(detail, ensure_ascii=False)))
    db.dispose()
    if as_json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        out.print(f"{report.rows} rows: {report.loaded} loaded, {len(report.refused)} refused")
        for row in report.refused:
            out.print(f"  line {row['line']}: {row['detail']}")
    raise typer.Exit(1 if report.refused else 0)
