"""The ``renkei`` command."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from bench import BENCHMARKS, load
from renkei import backup as backups
from renkei import stack
from renkei.contracts_cli import app as contracts_app
from renkei.demo_cli import app as demo_app
from renkei.health_cli import fees_app, import_app, reminders_app
from renkei.ledger_cli import app as ledger_app
from renkei.seed_cli import app as seed_app
from renkei.staff_cli import app as staff_app
from renkei.tax_welfare_cli import app as tax_welfare_app
from shared.observability import configure_logging

app = typer.Typer(help="Renkei: a city's vaccination affairs and their My Number information linkage.", no_args_is_help=True)


@app.callback()
def _logging() -> None:
    """Standard output carries what a command prints (JSON included); logs go to standard error."""
    configure_logging("renkei", None, "WARNING")
console = Console()
err = Console(stderr=True)

DataOption = typer.Option(Path("var"), "--data", help="the data folder of the stack")


@app.command()
def up(
    data: Path = DataOption,
    cities: str = typer.Option(",".join(stack.DEFAULT_CITIES), help="local-government codes, comma-separated"),
    detach: bool = typer.Option(False, "--detach", help="return once every service is ready"),
    database_url: str = typer.Option(None, envvar="RENKEI_DATABASE_URL", help="PostgreSQL URL (SQLite files when unset)"),
    people: int = typer.Option(1000, min=0, help="synthetic residents to seed per city on first start (0: none)"),
) -> None:
    """Start NATS and every service for each city; stay in the foreground until Ctrl-C."""
    stopping = threading.Event()
    if not detach:  # a Ctrl-C while starting still ends in a clean stop, never half a stack
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopping.set())
    try:
        city_codes = stack.parse_cities(cities)
        with console.status(f"starting {len(stack.principals_for(city_codes))} services and NATS…"):
            record = stack.up(data, city_codes, database_url=database_url, people=people)
    except stack.StackError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    for note in record.notes:
        err.print(f"[yellow]note:[/yellow] {note}")
    _print_table(stack.status(data))
    if detach:
        console.print(f"running; 'renkei status --data {data}' to check, 'renkei down --data {data}' to stop")
        return
    console.print("running; Ctrl-C stops everything")
    stopping.wait()
    with console.status("stopping…"):
        left = stack.down(data)
    if left:
        err.print(f"[red]still running:[/red] {', '.join(str(m.pid) for m in left)}")
        raise typer.Exit(1)


@app.command()
def prepare(
    data: Path = DataOption,
    cities: str = typer.Option(",".join(stack.DEFAULT_CITIES), help="local-government codes, comma-separated"),
    nats_host: str = typer.Option("127.0.0.1", help="where NATS listens (0.0.0.0 in a container)"),
    nats_port: int = typer.Option(stack.NATS_PORT),
    monitor_port: int = typer.Option(stack.NATS_MONITOR_PORT),
) -> None:
    """Prepare a data folder (keys, trust directory, local CA, NATS configuration) without starting anything."""
    try:
        city_codes = stack.parse_cities(cities)
    except stack.StackError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    data = data.resolve()
    data.mkdir(parents=True, exist_ok=True)
    stack.prepare(data, city_codes, nats_port, monitor_port, host=nats_host)
    console.print(f"prepared {data} for {', '.join(city_codes)}")


@app.command()
def status(data: Path = DataOption, as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Readiness of every service; exit 0 only when all are ready."""
    try:
        rows = stack.status(data)
    except stack.StackError as exc:
        if as_json:
            print("[]")
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        _print_table(rows)
    raise typer.Exit(0 if all(r["ready"] for r in rows) else 1)


@app.command()
def down(data: Path = DataOption) -> None:
    """Stop what 'renkei up --detach' started."""
    left = stack.down(data)
    if left:
        err.print(f"[red]still running:[/red] {', '.join(f'{m.principal} ({m.pid})' for m in left)}")
        raise typer.Exit(1)
    console.print("stopped")


@app.command()
def backup(
    data: Path = DataOption,
    output: Path = typer.Option(..., "--output", help="the archive to write (.tar.gz), outside the data folder"),
    database_url: str = typer.Option(None, envvar="RENKEI_DATABASE_URL", help="PostgreSQL URL (SQLite files when unset)"),
) -> None:
    """Back up a data folder: every database (a consistent snapshot), the keys, CA and NATS configuration (M29)."""
    try:
        report = backups.backup(data, output, database_url, stack_running=stack.is_up(data))
    except backups.BackupError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    for note in report.notes:
        err.print(f"[yellow]note:[/yellow] {note}")
    console.print(f"wrote {report.archive}: {report.members} files, {len(report.databases)} databases")


@app.command()
def restore(
    archive: Path = typer.Option(..., "--input", help="an archive written by 'renkei backup'"),
    data: Path = typer.Option(..., "--data", help="a new or empty folder to restore into"),
    database_url: str = typer.Option(None, envvar="RENKEI_DATABASE_URL", help="PostgreSQL URL, for an archive of PostgreSQL dumps"),
) -> None:
    """Restore a backup into a new folder, after checking every file against the archive's manifest."""
    try:
        report = backups.restore(archive, data, database_url)
    except backups.BackupError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"restored {report.members} files ({len(report.databases)} databases) into {data}")


@app.command()
def bench(
    name: str = typer.Argument(..., help="which benchmark: " + ", ".join(sorted(BENCHMARKS))),
    as_json: bool = typer.Option(False, "--json", help="print only the JSON figures"),
    quick: bool = typer.Option(False, "--quick", help="small sizes, for a smoke run"),
) -> None:
    """Run a benchmark; it prints its figures beside a baseline measured in the same run."""
    if name not in BENCHMARKS:
        err.print(f"[red]error:[/red] no benchmark {name!r}; there are: {', '.join(sorted(BENCHMARKS))}")
        raise typer.Exit(2)
    figures = load(name).run(quick=quick)
    print(json.dumps(figures, indent=None if as_json else 2, ensure_ascii=False))


def _print_table(rows: list[dict]) -> None:
    table = Table(title="Renkei stack")
    for column in ("service", "city", "URL", "state"):
        table.add_column(column)
    for row in rows:
        state = "[green]ready[/green]" if row["ready"] else "[red]not ready[/red]"
        table.add_row(row["service"], row["city"] or "—", row["url"], state)
    console.print(table)


app.add_typer(staff_app, name="staff")
app.add_typer(seed_app, name="seed", help="Seed a city's resident register with its synthetic population.")
app.add_typer(ledger_app, name="ledger", help="Check the provision records (情報提供等記録).")
app.add_typer(contracts_app, name="contracts", help="The bus contracts as documents (AsyncAPI).")
app.add_typer(demo_app, name="demo", help="The assessment's flows, played on a running stack.")
app.add_typer(import_app, name="import")
app.add_typer(reminders_app, name="reminders")
app.add_typer(fees_app, name="fees")
app.add_typer(tax_welfare_app, name="tax-welfare")
