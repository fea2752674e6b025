"""``renkei ledger``: check a provision-record ledger (情報提供等記録) and prove a record in it.

A city's ledger lives in its intermediate server's database and is signed with the key of
``intermediate_server@<city>``; without ``--city`` it is the national hub's ledger
(tenant ``hub``, key ``provision_network``). The public key comes from the trust directory
unless ``--public-key`` names a PEM file, so an auditor need not trust the operator's files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from shared.db import database_url, make_engine, schema_name
from shared.ledger.api import inclusion_document
from shared.ledger.reader import LedgerError, LedgerReader
from shared.ledger.records import HUB_TENANT, check_tenant
from shared.ledger.signing import Checkpoint
from shared.ledger.verify import verify_ledger
from shared.trust import Principal, TrustDirectory

app = typer.Typer(help="The provision-record ledger: verify it, prove a record in it.", no_args_is_help=True)

DataOption = Annotated[Path, typer.Option("--data", envvar="RENKEI_DATA_DIR", help="The data folder.")]
CityOption = Annotated[
    str | None, typer.Option("--city", help="The city's six-digit code; without it, the national hub's ledger.")
]
DatabaseOption = Annotated[
    str | None,
    typer.Option("--database-url", envvar="RENKEI_DATABASE_URL", help="PostgreSQL URL, when not SQLite under --data."),
]


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(1)


def _owner(city: str | None) -> tuple[str, Principal]:
    if city is None:
        return HUB_TENANT, Principal("provision_network")
    try:
        check_tenant(city)
    except ValueError as error:
        raise _fail(str(error)) from None
    if city == HUB_TENANT:
        raise _fail("the hub's ledger is the one without --city")
    return city, Principal("intermediate_server", city)


def _engine(data: Path, principal: Principal, base_url: str | None) -> Engine:
    url = database_url(data, principal.service, principal.city, base_url)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise _fail(f"no ledger database for {principal} at {url.removeprefix('sqlite:///')}")
    return make_engine(url, schema_name(principal.service, principal.city) if base_url else None)


def _public_key(data: Path, principal: Principal, public_key: Path | None) -> Ed25519PublicKey:
    try:
        if public_key is not None:
            key = serialization.load_pem_public_key(public_key.read_bytes())
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError(f"{public_key} does not hold an Ed25519 public key")
            return key
        return TrustDirectory.load(data).public_key(principal)
    except (OSError, ValueError, KeyError) as error:
        raise _fail(f"no public key for {principal}: {error}") from None


def _trusted_checkpoint(path: Path) -> Checkpoint:
    try:
        document = json.loads(path.read_text())
        return Checkpoint.from_json(document.get("checkpoint", document))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise _fail(f"{path} does not hold a checkpoint: {error}") from None


@app.command()
def verify(
    data: DataOption = Path("var"),
    city: CityOption = None,
    public_key: Annotated[Path | None, typer.Option("--public-key", help="PEM file of the tenant's Ed25519 public key.")] = None,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option("--checkpoint", help="A checkpoint kept from earlier (JSON, as `proof` prints it); repeatable."),
    ] = None,
    database: DatabaseOption = None,
) -> None:
    """Verify every record, batch seal and checkpoint; exit 1 naming the first failure."""
    tenant, principal = _owner(city)
    engine = _engine(data, principal, database)
    try:
        key = _public_key(data, principal, public_key)
        trusted = [_trusted_checkpoint(path) for path in checkpoint or []]
        report = verify_ledger(engine, tenant, key, trusted=trusted)
    except SQLAlchemyError as error:
        cause = getattr(error, "orig", None) or error
        raise _fail(f"cannot read the ledger of {tenant}: {error.__class__.__name__}: {cause}") from None
    finally:
        engine.dispose()
    typer.echo(str(report))
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def proof(
    index: Annotated[int, typer.Option("--index", help="The record's leaf index.")],
    data: DataOption = Path("var"),
    city: CityOption = None,
    database: DatabaseOption = None,
) -> None:
    """Print the inclusion proof of one record against the latest signed tree head (JSON).

    The head is the latest checkpoint when it covers the record, else the seal of the
    record's batch.
    """
    tenant, principal = _owner(city)
    engine = _engine(data, principal, database)
    try:
        document = inclusion_document(LedgerReader(engine, tenant), index)
    except LedgerError as error:
        raise _fail(f"{error}: run `verify`") from None
    except SQLAlchemyError as error:
        raise _fail(f"cannot read the ledger of {tenant}: {error.__class__.__name__}") from None
    finally:
        engine.dispose()
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
