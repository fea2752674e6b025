"""``renkei staff``: personal staff accounts of one service of one city."""

from __future__ import annotations

import importlib
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import typer
from rich.console import Console

from shared.config import ServiceSettings
from shared.contracts import CITY_SERVICES, GLOBAL_SERVICES
from shared.errors import Problem
from shared.service import migrate_database, open_database
from shared.staff import STAFF_KINDS, StaffDirectory

JAPAN = timezone(timedelta(hours=9), "JST")

app = typer.Typer(help="Staff accounts (職員アカウント): one per person, with roles.", no_args_is_help=True)
console = Console()


@app.command("add")
def add(
    service: str = typer.Option(..., help="the service the account is for"),
    user: str = typer.Option(..., help="personal user id"),
    name: str = typer.Option(..., help="the person's name"),
    role: list[str] = typer.Option(..., "--role", help="a role the person holds (repeatable)"),
    city: str = typer.Option(None, help="local-government code (not for the hub or the ops console)"),
    kind: str = typer.Option("staff", help=f"one of {', '.join(STAFF_KINDS)}"),
    data: Path = typer.Option(Path("var"), "--data"),
    database_url: str = typer.Option(None, envvar="RENKEI_DATABASE_URL"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from standard input"),
) -> None:
    """Create an account; prints its TOTP secret once, to enrol in an authenticator."""
    known_roles = _spec(service).roles
    if not known_roles:
        console.print(f"[red]error:[/red] {service} has no staff roles")
        raise typer.Exit(2)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt("password", hide_input=True, confirmation_prompt=True)
    directory, settings = _directory(service, city, data, database_url)
    try:
        account = directory.create_account(user, name, password, role, kind, known_roles=known_roles)
    except Problem as problem:
        console.print(f"[red]error:[/red] {problem.detail}")
        raise typer.Exit(1) from None
    console.print(f"created {account.user_id} for {settings.principal}")
    console.print(f"TOTP secret: {account.totp_secret}")
    console.print(f"enrolment URI: {account.provisioning_uri}")


@app.command("approve-window")
def approve_window(
    service: str = typer.Option(..., help="the service the contractor works on"),
    user: str = typer.Option(..., help="the contractor's user id (作業者)"),
    purpose: str = typer.Option(..., help="what the work is for (作業目的)"),
    starts: datetime = typer.Option(..., "--from", formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S%z"], help="start (作業日時); Japan time unless an offset is given"),
    ends: datetime = typer.Option(..., "--until", formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S%z"], help="end; at most 24 hours after the start"),
    approved_by: str = typer.Option(..., "--approved-by", help="the city staff member who approves (承諾)"),
    city: str = typer.Option(None, help="local-government code (not for the hub or the ops console)"),
    data: Path = typer.Option(Path("var"), "--data"),
    database_url: str = typer.Option(None, envvar="RENKEI_DATABASE_URL"),
) -> None:
    """Approve a contractor's maintenance window (M13): who, why, from when to when."""
    directory, settings = _directory(service, city, data, database_url)
    try:
        window = directory.approve_window(user, purpose, _japan_time(starts), _japan_time(ends), approved_by)
    except Problem as problem:
        console.print(f"[red]error:[/red] {problem.detail}")
        raise typer.Exit(1) from None
    console.print(f"window {window} approved for {user} at {settings.principal}")


@app.command("revoke-window")
def revoke_window(
    service: str = typer.Option(...),
    window: int = typer.Option(..., help="the window's number"),
    revoked_by: str = typer.Option(..., "--by", help="the city staff member who revokes it"),
    city: str = typer.Option(None),
    data: Path = typer.Option(Path("var"), "--data"),
    database_url: str = typer.Option(None, envvar="RENKEI_DATABASE_URL"),
) -> None:
    """End a maintenance window now; the contractor's sessions in it end at their next request."""
    directory, _ = _directory(service, city, data, database_url)
    try:
        directory.revoke_window(window, revoked_by)
    except Problem as problem:
        console.print(f"[red]error:[/red] {problem.detail}")
        raise typer.Exit(1) from None
    console.print(f"window {window} revoked")


def _spec(service: str):
    if service not in (*CITY_SERVICES, *GLOBAL_SERVICES):
        console.print(f"[red]error:[/red] no service {service!r}")
        raise typer.Exit(2)
    return importlib.import_module(f"services.{service}.app").SPEC


def _directory(service: str, city: str | None, data: Path, database_url: str | None) -> tuple[StaffDirectory, ServiceSettings]:
    spec = _spec(service)
    settings = ServiceSettings(service=service, city=city, data_dir=data, database_url=database_url)
    db = open_database(settings)
    migrate_database(db, spec)
    directory = StaffDirectory(db, issuer=f"Renkei {settings.principal}", idle=timedelta(minutes=15), lifetime=timedelta(hours=8))
    return directory, settings


def _japan_time(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=JAPAN)
