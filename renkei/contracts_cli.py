"""``renkei contracts``: the contracts of the bus as documents for other tools."""

from __future__ import annotations

from pathlib import Path

import typer

from shared.contracts.asyncapi import render

app = typer.Typer(help="The bus contracts as documents (AsyncAPI).", no_args_is_help=True)


@app.callback()
def contracts() -> None:
    """The bus contracts as documents (AsyncAPI)."""


@app.command()
def asyncapi(
    output: Path = typer.Option(None, "--output", "-o", help="write here (docs/asyncapi.yaml is the committed copy); stdout when absent"),
) -> None:
    """The AsyncAPI 3 document of every operation and event, from shared.contracts."""
    text = render()
    if output is None:
        typer.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    typer.echo(f"wrote {output}", err=True)
