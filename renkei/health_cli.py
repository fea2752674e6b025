"""The health management's data tools: ``import`` (clinic reports, the clinic master),
``reminders`` (the reminder batch) and ``fees`` (the fee determination from the tax and
welfare systems, over the bus as the city's health management).

They work on the database the stack gives the city's health management (the SQLite file
under ``--data``, or its schema in ``--database-url``), migrating it first, so they work
whether or not the stack is running. Each run is written to the service's operation log
under the personal user id given with ``--by`` (M08, M11).
"""

from __future__ import annotations

import calendar
import csv
import getpass
import io
import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.health_mgmt import clinic_report, clinics, fees, reminders
from services.health_mgmt.app import MIGRATIONS
from services.health_mgmt.models import Base
from shared import migrate
from shared.db import Database, database_url, schema_name
from shared.errors import Problem
from shared.ids import InvalidIdentifier, validate_local_government_code
from shared.models import KernelBase
from shared.oplog import Actor, Entry, OperationLog

SERVICE = "health_mgmt"

import_app = typer.Typer(help="Take files into the vaccination register.", no_args_is_help=True)
reminders_app = typer.Typer(help="The reminder batch (勧奨通知).", no_args_is_help=True)
fees_app = typer.Typer(help="The fee determination (実費徴収).", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

DataOption = Annotated[Path, typer.Option("--data", envvar="RENKEI_DATA_DIR", help="The data folder of the stack.")]
CityOption = Annotated[str, typer.Option("--city", help="The city's six-digit local-government code.")]
DatabaseOption = Annotated[
    str | None,
    typer.Option("--database-url", envvar="RENKEI_DATABASE_URL", help="PostgreSQL URL (SQLite under --data when unset)."),
]
ByOption = Annotated[str, typer.Option("--by", help="Your personal staff user id, for the operation log.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]


def open_register(data: Path, city: str, base_url: str | None) -> Database:
    """The city's vaccination register as the stack keeps it, migrated to the newest revision."""
    try:
        city = validate_local_government_code(city, field="city")
    except InvalidIdentifier as exc:
        raise typer.BadParameter(str(exc), param_hint="--city") from None
    url = database_url(data, SERVICE, city, base_url)
    db = Database(url, None if url.startswith("sqlite") else schema_name(SERVICE, city))
    migrate.upgrade(db, [MIGRATIONS], [KernelBase.metadata, Base.metadata])
    return db


def _log(db: Database, by: str, operation: str, outcome: str, detail: dict) -> None:
    OperationLog(db).record(Entry(Actor(by, "staff"), "cli", operation, outcome, detail=json.dumps(detail, ensure_ascii=False)))


@import_app.command("clinic-report")
def import_clinic_report(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The clinic report (CSV).")],
    city: CityOption,
    data: DataOption = Path("var"),
    base_url: DatabaseOption = None,
    commit: Annotated[bool, typer.Option("--commit", help="Store the good rows (without it: a draft, nothing stored).")] = False,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Judge dates as of this day (YYYY-MM-DD; default today).")] = None,
    by: ByOption = "",
    as_json: JsonOption = False,
) -> None:
    """Check a monthly clinic report (原票, flow [12]) row by row; with --commit, store the good rows.

    Exit status: 0 every row is good (or the file was already imported), 1 some rows are
    refused (listed with their line numbers), 2 the file cannot be read.
    """
    by = by or getpass.getuser()
    day = date.fromisoformat(as_of) if as_of else date.today()
    raw = file.read_bytes()
    db = open_register(data, city, base_url)
    operation = "health_mgmt.clinic_report.commit" if commit else "health_mgmt.clinic_report.check"
    try:
        with db.session() as session:
            draft = clinic_report.build_draft(session, raw, file.name, day)
            result = None
            if commit and draft.already_imported is None:
                err.print(f"storing {len(draft.good)} rows…")
                result = clinic_report.commit(session, draft, by)
        if commit:
            with db.session() as session:
                months = sorted({month for _, month in draft.fees()})
                fees = [t for month in months for t in clinics.fee_totals(session, month)]
    except Problem as problem:
        _log(db, by, operation, "refused", {"file": file.name, "detail": problem.detail})
        db.dispose()
        typer.echo(f"error: {problem.detail}", err=True)
        raise typer.Exit(2) from None
    report = _report(draft, commit, result, fees if commit else None)
    _log(db, by, operation, "ok", {k: report[k] for k in ("file", "digest", "rows", "good", "refused", "stored", "already_imported")})
    db.dispose()
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        _print_report(report)
    raise typer.Exit(1 if draft.problems and not draft.already_imported else 0)


def _report(draft, commit: bool, result, fees) -> dict:
    report = {
        "file": draft.file_name,
        "digest": draft.digest,
        "encoding": draft.encoding,
        "rows": draft.rows,
        "good": len(draft.good),
        "refused": len(draft.problems),
        "committed": bool(commit and result is not None),
        "stored": result.stored if result else 0,
        "already_imported": draft.already_imported is not None,
        "problems": [p.to_dict() for p in draft.problems],
        "draft_fees": [
            {"clinic_code": clinic, "billing_month": month, "records": count, "fee_yen": total}
            for (clinic, month), (count, total) in sorted(draft.fees().items())
        ],
    }
    if draft.already_imported is not None:
        report["imported_at"] = draft.already_imported.committed_at.isoformat()
    if fees is not None:
        report["fees"] = [vars(t) for t in fees]
    return report


def _print_report(report: dict) -> None:
    if report["already_imported"]:
        out.print(f"{report['file']} was already imported on {report['imported_at']}: nothing changed")
        return
    if report["problems"]:
        table = Table(title=f"refused rows of {report['file']}")
        for column in ("line", "reason", "detail"):
            table.add_column(column)
        for p in report["problems"]:
            table.add_row(str(p["line"]), p["reason"], p["detail"])
        out.print(table)
    verb = f"stored {report['stored']}" if report["committed"] else f"{report['good']} good (draft: run again with --commit to store them)"
    out.print(f"{report['file']} ({report['encoding']}): {report['rows']} rows, {verb}, {report['refused']} refused")
    if report.get("fees"):
        table = Table(title="commission fees (委託料) committed, per clinic and month")
        for column in ("clinic", "name", "month", "records", "yen"):
            table.add_column(column)
        for f in report["fees"]:
            table.add_row(f["clinic_code"], f["clinic_name"], f["billing_month"], str(f["records"]), f"{f['fee_yen']:,}")
        out.print(table)


@import_app.command("income")
def import_income(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="統合宛名番号,生年月日,区分 (CSV).")],
    source: Annotated[str, typer.Option("--source", help="tax (住民税: 課税/非課税) or welfare (生活保護: 受給).")],
    fiscal_year: Annotated[int, typer.Option("--fiscal-year", min=1990, max=2100, help="The fiscal year (年度) it is for.")],
    city: CityOption,
    data: DataOption = Path("var"),
    base_url: DatabaseOption = None,
    by: ByOption = "",
    as_json: JsonOption = False,
) -> None:
    """Match tax or public-assistance information with the register (突合) and decide who pays (実費徴収)."""
    by = by or getpass.getuser()
    raw = file.read_bytes()
    db = open_register(data, city, base_url)
    try:
        text, _ = clinic_report.decode(raw)
        with db.session() as session:
            report = fees.match_file(session, raw, text, source, fiscal_year, by)
    except Problem as problem:
        db.dispose()
        typer.echo(f"error: {problem.detail}", err=True)
        raise typer.Exit(2) from None
    result = vars(report)
    _log(db, by, "health_mgmt.income.match", "ok", {k: v for k, v in result.items() if k != "set_aside"} | {"file": file.name})
    db.dispose()
    if as_json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    elif report.already_matched:
        out.print(f"{file.name} was already matched: nothing changed")
    else:
        out.print(f"{report.rows} rows: {report.matched} matched, {len(report.set_aside)} set aside; {report.determined} determinations")
        for row in report.set_aside:
            out.print(f"  line {row['line']}: {row['outcome']} — {row['detail']}")


@import_app.command("clinics")
def import_clinics(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="医療機関コード,医療機関名,市内外 (CSV).")],
    city: CityOption,
    data: DataOption = Path("var"),
    base_url: DatabaseOption = None,
    by: ByOption = "",
) -> None:
    """Add or change clinics of the clinic master (医療機関マスタ)."""
    by = by or getpass.getuser()
    text, _ = clinic_report.decode(file.read_bytes())
    rows = list(csv.reader(io.StringIO(text, newline="")))
    db = open_register(data, city, base_url)
    added = changed = 0
    try:
        with db.session() as session:
            for line, row in enumerate(rows[1:], start=2):
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != 3 or row[2].strip() not in ("市内", "市外"):
                    raise typer.BadParameter(f"line {line}: expected 医療機関コード,医療機関名,市内 or 市外")
                _, new = clinics.put_clinic(session, row[0].strip(), row[1].strip(), row[2].strip() == "市内")
                added, changed = added + new, changed + (not new)
    except Problem as problem:
        db.dispose()
        typer.echo(f"error: {problem.detail}", err=True)
        raise typer.Exit(2) from None
    _log(db, by, "health_mgmt.clinics.import", "ok", {"file": file.name, "added": added, "changed": changed})
    db.dispose()
    out.print(f"{added} clinics added, {changed} changed")


def parse_period(text: str) -> tuple[date, date]:
    """``2025-06`` (a month) or ``2025-06-01..2025-06-30`` (inclusive)."""
    try:
        if ".." in text:
            first, last = (date.fromisoformat(part) for part in text.split("..", 1))
        else:
            year, month = (int(part) for part in text.split("-"))
            first, last = date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
    except ValueError:
        raise typer.BadParameter("a month (YYYY-MM) or two days (YYYY-MM-DD..YYYY-MM-DD)", param_hint="--period") from None
    if last < first or (last - first).days > 366:
        raise typer.BadParameter("the period must run forwards, for at most a year", param_hint="--period")
    return first, last


@reminders_app.command("run")
def run_reminders(
    period: Annotated[str, typer.Option("--period", help="YYYY-MM, or YYYY-MM-DD..YYYY-MM-DD")],
    city: CityOption,
    data: DataOption = Path("var"),
    base_url: DatabaseOption = None,
    output: Annotated[Path | None, typer.Option("--output", help="Where the notices go (default DATA/reminders/CITY).")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Evaluate records as of this day (default today).")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Processes that evaluate and render.")] = reminders.default_workers(),
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Render a PDF per person.")] = True,
    by: ByOption = "",
    as_json: JsonOption = False,
) -> None:
    """Find everyone due in the period and make one notice each (CSV for the printer, a PDF per person).

    A due dose already noticed by an earlier run is left out: running again sends nothing twice.
    """
    by = by or getpass.getuser()
    first, last = parse_period(period)
    day = date.fromisoformat(as_of) if as_of else date.today()
    db = open_register(data, city, base_url)
    folder = output or Path(data) / "reminders" / city
    try:
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, disable=as_json, transient=True,
        ) as bar:
            evaluated = bar.add_task("evaluating", total=None)
            rendered = bar.add_task("rendering", total=None)

            def tick(stage: str, count: int) -> None:
                bar.advance(evaluated if stage == "evaluated" else rendered, count)

            summary = reminders.run_batch(
                db, city, period_start=first, period_end=last, as_of=day, output=folder, started_by=by,
                workers=workers, pdf=pdf, progress=tick,
            )
    except Problem as problem:
        _log(db, by, "health_mgmt.reminders.run", "refused", {"period": period, "detail": problem.detail})
        db.dispose()
        typer.echo(f"error: {problem.detail}", err=True)
        raise typer.Exit(2) from None
    result = {
        "run_id": summary.run_id, "period_start": first.isoformat(), "period_end": last.isoformat(), "as_of": day.isoformat(),
        "people_evaluated": summary.people_evaluated, "notices": summary.notices, "items": summary.items,
        "already_sent": summary.already_sent, "output": str(summary.output),
    }
    _log(db, by, "health_mgmt.reminders.run", "ok", result)
    db.dispose()
    if as_json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return
    out.print(
        f"run {summary.run_id}: {summary.people_evaluated:,} residents read, {summary.notices:,} notices "
        f"({summary.items:,} due doses; {summary.already_sent:,} already noticed before) in {summary.output}"
    )


def _stack_nats_url(data: Path) -> str:
    """Where the stack recorded in ``data`` runs NATS."""
    from renkei.stack import RunRecord, run_file

    path = run_file(Path(data).resolve())
    if not path.exists():
        raise typer.BadParameter(f"no stack is recorded in {path.parent}: start one, or give --nats-url", param_hint="--nats-url")
    return RunRecord.load(path).nats.url


@fees_app.command("determine")
def determine_fees(
    fiscal_year: Annotated[int, typer.Option("--fiscal-year", min=1990, max=2100, help="The fiscal year (年度) to decide.")],
    city: CityOption,
    data: DataOption = Path("var"),
    base_url: DatabaseOption = None,
    nats_url: Annotated[str | None, typer.Option("--nats-url", help="NATS of the stack (default: the one recorded in --data).")] = None,
    by: ByOption = "",
    as_json: JsonOption = False,
) -> None:
    """Ask the city's tax and welfare systems about everyone on the register and redo the
    determinations (flow [06]), on the bus as the city's health management (its keys and NATS
    login from --data). Running it again when nothing changed changes nothing.

    Exit status: 0 done, 2 the systems did not answer (what was matched before stays).
    """
    import asyncio

    from services.health_mgmt import fee_inquiry
    from services.health_mgmt.config import Settings
    from shared.nats_config import nats_user
    from shared.service import build_context

    by = by or getpass.getuser()
    db = open_register(data, city, base_url)  # validates --city and migrates
    db.dispose()
    settings = Settings(service=SERVICE, city=city, data_dir=data, database_url=base_url)
    credentials = json.loads((Path(data) / "nats" / "credentials.json").read_text())
    user = nats_user(settings.principal)
    ctx = build_context(settings)

    async def run():
        await ctx.bus.connect(nats_url or _stack_nats_url(data), user, credentials[user])
        try:
            return await fee_inquiry.inquire(ctx, fiscal_year, by, settings.fee_inquiry_timeout_seconds)
        finally:
            await ctx.bus.close()

    try:
        report = asyncio.run(run())
    except Problem as problem:
        _log(ctx.db, by, "health_mgmt.fee_determination.inquire", "refused", {"fiscal_year": fiscal_year, "detail": problem.detail})
        ctx.db.dispose()
        typer.echo(f"error: {problem.detail}", err=True)
        raise typer.Exit(2) from None
    result = {"fiscal_year": report.fiscal_year, "people": report.people, "sources": [vars(s) for s in report.sources]}
    _log(ctx.db, by, "health_mgmt.fee_determination.inquire", "ok", result)
    ctx.db.dispose()
    if as_json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return
    for s in report.sources:
        aside = ", ".join(f"{n} {outcome}" for outcome, n in sorted(s.set_aside.items())) or "none"
        out.print(
            f"{s.source}: {s.asked:,} asked, {s.recorded:,} answers recorded ({s.matched:,} matched; set aside: {aside}), "
            f"{s.unchanged:,} unchanged; {s.determined:,} determinations redone"
        )
