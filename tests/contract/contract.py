"""The contract check between the two sides of a message.

The sending side builds a message with its model and puts its JSON on the bus; the
receiving side validates those bytes with its own model. The contract holds when the
receiver accepts every message the sender can build, reads it back to the same JSON (so
nothing was dropped or changed on the way), and the bytes match the schema published in
docs/asyncapi.yaml, which other teams and tools build against.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ValidationError

from tests.contract.examples import examples

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"


@cache
def published() -> dict[str, Any]:
    return yaml.safe_load(PUBLISHED.read_text())


def published_schema(message_id: str) -> dict[str, Any]:
    """The payload schema of a message of the published document (a reply's, not the problem's)."""
    document = published()
    payload = document["components"]["messages"][message_id]["payload"]
    if "oneOf" in payload:
        payload = payload["oneOf"][0]
    return {**payload, "components": {"schemas": document["components"]["schemas"]}}


def check(sender: type[BaseModel], receiver: type[BaseModel], schema: dict[str, Any] | None = None) -> list[str]:
    """What breaks when ``sender``'s messages reach ``receiver``; empty when the contract holds."""
    built = examples(sender)
    if not built:
        return [f"no example of {sender.__name__} could be built: extend tests/contract/examples.py"]
    problems: list[str] = []
    validator = Draft202012Validator(schema) if schema is not None else None
    for message in built:
        wire = message.model_dump_json()
        try:
            received = receiver.model_validate_json(wire)
        except ValidationError as exc:
            errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            problems.append(f"{receiver.__name__} refuses {wire}: {errors}")
            continue
        if json.loads(received.model_dump_json()) != json.loads(wire):
            problems.append(f"{receiver.__name__} reads {wire} back as {received.model_dump_json()}")
        if validator is not None:
            for error in validator.iter_errors(json.loads(wire)):
                problems.append(f"{wire} does not match the published schema: {error.message}")
    return problems
