"""The console's JSON API, as OpenAPI documents it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class ServiceState(BaseModel):
    principal: str
    service: str
    city: str | None
    url: str
    state: Literal["ready", "not_ready", "down"]
    detail: str
    requests_per_second: float | None  # since the previous round; probes not counted
    error_ratio: float | None  # server errors among those requests
    p95_ms: float | None
    outbox_backlog: float | None  # None for a service that publishes no events
    bus: str | None  # "ok", the refusal or failure of its ping, or None when not pinged


class NatsStream(BaseModel):
    name: str
    messages: int
    bytes: int
    consumers: int
    replicas: int


class NatsConsumer(BaseModel):
    stream: str
    name: str
    pending: int  # not yet delivered: the consumer's lag
    ack_pending: int  # delivered, not yet acknowledged
    redelivered: int


class JetStreamState(BaseModel):
    enabled: bool
    streams: list[NatsStream]
    consumers: list[NatsConsumer]


class NatsState(BaseModel):
    reachable: bool
    url: str | None = None
    error: str | None = None
    healthy: bool | None = None
    server_name: str | None = None
    version: str | None = None
    uptime: str | None = None
    connections: int | None = None
    slow_consumers: int | None = None
    clients: list[str] = []
    jetstream: JetStreamState | None = None


class CheckpointShown(BaseModel):
    seq: int
    tenant: str
    tree_size: int
    time: str | None
    age_seconds: float


class LedgerState(BaseModel):
    principal: str
    city: str | None
    available: bool
    checkpoint: CheckpointShown | None = None
    verified: bool | None = None
    detail: str


class Feature(BaseModel):
    key: str
    title: str
    available: bool
    detail: str
    figures: dict[str, Any] | None


class CityFeatures(BaseModel):
    city: str
    features: list[Feature]


class Node(BaseModel):
    id: str
    service: str
    city: str | None
    group: str
    name: str
    name_ja: str


class Edge(BaseModel):
    source: str
    target: str
    kind: Literal["bus", "event", "network"]
    labels: list[str]


class Topology(BaseModel):
    groups: list[str]
    nodes: list[Node]
    edges: list[Edge]


class Overview(BaseModel):
    generated_at: str
    members_file: str
    problem: str | None
    cities: list[str]
    services: list[ServiceState]
    nats: NatsState
    ledgers: list[LedgerState]
    intermediate_server: list[CityFeatures]
    topology: Topology
    idle_minutes: int
