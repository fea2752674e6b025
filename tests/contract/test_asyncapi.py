"""The AsyncAPI document: generated from the registry, committed as docs/asyncapi.yaml, complete."""

from __future__ import annotations

from typing import Any

import yaml
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from renkei.contracts_cli import app
from shared.contracts import REGISTRY, Operation, Registry
from shared.contracts.asyncapi import document, render
from shared.contracts.system import PingReply, PingRequest
from tests.contract.contract import PUBLISHED

REGENERATE = "renkei contracts asyncapi --output docs/asyncapi.yaml"


def test_the_committed_document_is_up_to_date():
    assert PUBLISHED.read_text() == render(), f"docs/asyncapi.yaml is out of date: run '{REGENERATE}'"


def test_every_operation_and_event_is_there_with_its_owner_and_allowlist():
    doc = yaml.safe_load(render())
    assert doc["asyncapi"].startswith("3.")
    for op in REGISTRY.operations.values():
        entry = doc["operations"][op.key]
        assert entry["action"] == "receive" and entry["x-renkei-owner"] == op.owner
        assert entry["x-renkei-callers"] == sorted(op.callers)
        assert entry["x-renkei-audited"] == op.audited
        assert doc["channels"][op.key]["address"] in (op.subject("{city}"), op.subject(None))
        assert op.request.__name__ in str(doc["components"]["messages"][f"{op.key}.request"]["payload"])
        assert op.reply.__name__ in str(doc["components"]["messages"][f"{op.key}.reply"]["payload"])
    for event in REGISTRY.events.values():
        assert doc["operations"][f"{event.key}.publish"]["x-renkei-consumers"] == sorted(event.consumers)
        for consumer in event.consumers:
            assert doc["operations"][f"{event.key}.consume.{consumer}"]["action"] == "receive"
        assert doc["channels"][event.key]["address"] == event.subject("{city}")


def test_every_reference_resolves_and_every_schema_is_a_json_schema():
    doc = yaml.safe_load(render())

    def refs(node: Any):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    for ref in set(refs(doc)):
        assert ref.startswith("#/"), ref
        target: Any = doc
        for part in ref[2:].split("/"):
            assert part in target, f"{ref} does not resolve"
            target = target[part]
    for name, schema in doc["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema), name


def test_a_global_service_has_no_city_in_its_address():
    hub_only = Registry(
        [Operation("provision_network", "ping", PingRequest, PingReply, frozenset({"ops_console"}))], []
    )
    doc = document(hub_only)
    assert doc["channels"]["provision_network.ping"]["address"] == "renkei.global.provision_network.ping"
    assert "parameters" not in doc["channels"]["provision_network.ping"]


def test_the_command_writes_the_document(tmp_path):
    runner = CliRunner()
    target = tmp_path / "asyncapi.yaml"
    written = runner.invoke(app, ["asyncapi", "--output", str(target)])
    printed = runner.invoke(app, ["asyncapi"])
    assert written.exit_code == 0 and target.read_text() == render()
    assert printed.exit_code == 0 and printed.stdout == render()
