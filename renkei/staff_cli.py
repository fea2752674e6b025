"""``renkei staff``: personal staff accounts of one service of one city."""

from __future__ import annotations

import importlib
import sys
from datetime import timedelta
from pathlib import Path

import typer
from rich.console import Console

from shared.config import ServiceSettings
from shared.contracts import CITY_SERVICES, GLOBAL_SERVICES
from shared.errors import Problem
from shared.service import migrate_database, open_database
from shared.staff import STAFF_KINDS, StaffDirectory

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
    if service not in (*CITY_SERVICES, *GLOBAL_SERVICES):
        console.print(f"[red]error:[/red] no service {service!r}")
        raise typer.Exit(2)
    spec = importlib.import_module(f"services.{service}.app").SPEC
    known_roles = spec.roles
    if not known_roles:
        console.print(f"[red]error:[/red] {service} has no staff roles")
        raise typer.Exit(2)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt("password", hide_input=True, confirmation_prompt=True)
    settings = ServiceSettings(service=service, city=city, data_dir=data, database_url=database_url)
    db = open_database(settings)
    migrate_database(db, spec)
    directory = StaffDirectory(db, issuer=f"Renkei {settings.principal}", idle=timedelta(minutes=15), lifetime=timedelta(hours=8))
    try:
        account = directory.create_account(user, name, password, role, kind, known_roles=known_roles)
    except Problem as problem:
        console.print(f"[red]error:[/red] {problem.detail}")
        raise typer.Exit(1) from None
    console.print(f"created {account.user_id} for {settings.principal}")
    console.print(f"TOTP secret: {account.totp_secret}")
    console.print(f"enrolment URI: {account.provisioning_uri}")
