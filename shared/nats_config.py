"""The NATS server configuration: one user per service, with the subjects it may use.

Permissions are derived from the contracts, so a service can publish only to operations
whose allowlist names it, receive only its own operations and its own replies, and touch
only its own streams and consumers: the server refuses the rest before any token is read.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from shared.bus import inbox_prefix
from shared.contracts import GLOBAL_SERVICES, Event, Registry
from shared.trust import Principal


def nats_user(principal: Principal) -> str:
    return f"{principal.service}-{principal.city}" if principal.city else principal.service


def permissions(principal: Principal, registry: Registry) -> dict:
    """The publish and subscribe allowlists of one principal's NATS user."""
    city = principal.city
    publish: set[str] = set()
    subscribe: set[str] = {f"{inbox_prefix(nats_user(principal))}.>"}

    for op in registry.served_by(principal.service):
        subscribe.add(op.subject(city))
    for op in registry.callable_by(principal.service):
        if op.owner in GLOBAL_SERVICES:
            publish.add(op.subject(None))
        else:  # a city system calls its own city; a global service calls any city
            publish.add(op.subject(city) if city else op.subject("*"))

    own_events = registry.published_by(principal.service)
    if own_events:
        stream = Event.stream_name(principal.service, city)
        publish.add(f"renkei.{principal.scope}.{principal.service}.events.>")
        publish.update(f"$JS.API.STREAM.{verb}.{stream}" for verb in ("INFO", "CREATE", "UPDATE"))
    for event in registry.consumed_by(principal.service):
        stream, durable = event.stream(city), f"{principal.service}__{event.name}"
        publish.update(
            {
                f"$JS.API.CONSUMER.*.{stream}.{durable}",
                f"$JS.API.CONSUMER.CREATE.{stream}.{durable}.>",
                f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
                f"$JS.ACK.{stream}.{durable}.>",
            }
        )
    return {
        "publish": {"allow": sorted(publish)},
        "subscribe": {"allow": sorted(subscribe)},
        "allow_responses": True,
    }


def load_or_create_credentials(path: Path, principals: list[Principal]) -> dict[str, str]:
    """Each principal's NATS password, created once and kept readable by the owner only."""
    path = Path(path)
    credentials: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    for principal in principals:
        credentials.setdefault(nats_user(principal), secrets.token_urlsafe(24))
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(path, json.dumps(credentials, indent=2, sort_keys=True))
    return credentials


def render(
    principals: list[Principal],
    registry: Registry,
    credentials: dict[str, str],
    port: int,
    monitor_port: int,
    store_dir: Path,
    host: str = "127.0.0.1",
) -> str:
    """The server configuration (NATS reads JSON as its own format)."""
    users = [
        {"user": nats_user(p), "password": credentials[nats_user(p)], "permissions": permissions(p, registry)}
        for p in principals
    ]
    config = {
        "server_name": "renkei",
        "host": host,
        "port": port,
        "http": f"{host}:{monitor_port}",
        "jetstream": {"store_dir": str(store_dir), "sync_interval": "always"},
        "authorization": {"users": users},
    }
    return json.dumps(config, indent=2)


def write_config(path: Path, text: str) -> None:
    _write_private(Path(path), text)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(path.with_suffix(".tmp"), path)
