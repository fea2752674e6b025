"""The bus as an AsyncAPI 3 document, generated from the contracts (``renkei contracts asyncapi``).

Every operation becomes a request channel ``renkei.{city}.<owner>.<name>`` (``global`` in
place of the city for the services that exist once) received by its owner, with a reply
channel; every event a channel sent by its owner and received by each consumer. Payloads
are the JSON schemas of the models both sides validate with (validation mode: what the
receiving side accepts); owners, allowlists, consumers and the audit flags are carried as
``x-renkei-*`` extensions, so the document says who may do what as the registry does.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.contracts.base import event_subject, operation_subject
from shared.contracts.registry import GLOBAL_SERVICES, REGISTRY, Registry
from shared.trust import GLOBAL_SCOPE

ASYNCAPI_VERSION = "3.0.0"
SCHEMAS = "#/components/schemas/"
CITY_PARAMETER = {"description": "The six-digit local-government code (全国地方公共団体コード) of the city whose system it is."}
REQUEST_HEADERS = {
    "type": "object",
    "description": "Every request carries the caller's service token and a proof of possession for this subject and body.",
    "required": ["Authorization"],
    "properties": {
        "Authorization": {
            "type": "string",
            "description": "Renkei <service token> <jti>.<iat>.<mac>: the caller's EdDSA JWT (at most five minutes), "
            "then the request proof, an HMAC over the token's jti, a single-use id, time, subject and body hash",
        },
        "Renkei-Request-Id": {"type": "string", "description": "correlates the call across services and logs"},
    },
}
REPLY_HEADERS = {
    "type": "object",
    "description": "A refusal or failure is answered with RFC 9457 problem details instead of the reply, flagged by Renkei-Error.",
    "properties": {
        "Renkei-Error": {"type": "string", "description": "the problem type URN, e.g. urn:renkei:problem:forbidden"},
        "Content-Type": {"type": "string", "const": "application/problem+json"},
    },
}
EVENT_HEADERS = {
    "type": "object",
    "required": ["Nats-Msg-Id"],
    "properties": {"Nats-Msg-Id": {"type": "string", "description": "the outbox row's id: JetStream drops a re-published duplicate"}},
}
PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
}


def _scope(owner: str) -> str:
    return GLOBAL_SCOPE if owner in GLOBAL_SERVICES else "{city}"


def _ref(path: str) -> dict[str, str]:
    return {"$ref": path}


def _schemas(registry: Registry) -> tuple[dict[type[BaseModel], dict], dict[str, Any]]:
    models: list[type[BaseModel]] = []
    for op in registry.operations.values():
        models += [op.request, op.reply]
    for event in registry.events.values():
        models.append(event.model)
    unique = list(dict.fromkeys(models))
    refs, definitions = models_json_schema([(m, "validation") for m in unique], ref_template=SCHEMAS + "{model}")
    return {model: refs[(model, "validation")] for model in unique}, definitions.get("$defs", {})


def document(registry: Registry = REGISTRY, version: str = "0.1.0") -> dict[str, Any]:
    refs, schemas = _schemas(registry)
    schemas = {**dict(sorted(schemas.items())), "Problem": PROBLEM}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    for op in sorted(registry.operations.values(), key=lambda o: o.key):
        scope = _scope(op.owner)
        request_id, reply_id = f"{op.key}.request", f"{op.key}.reply"
        messages[request_id] = {
            "name": request_id,
            "title": f"{op.key} request",
            "summary": op.summary or f"Request to {op.key}",
            "contentType": "application/json",
            "headers": _ref("#/components/schemas/RequestHeaders"),
            "payload": refs[op.request],
        }
        messages[reply_id] = {
            "name": reply_id,
            "title": f"{op.key} reply",
            "contentType": "application/json",
            "headers": _ref("#/components/schemas/ReplyHeaders"),
            "payload": {"oneOf": [refs[op.reply], _ref(SCHEMAS + "Problem")]},
        }
        channel: dict[str, Any] = {
            "address": operation_subject(scope, op.owner, op.name),
            "messages": {"request": _ref(f"#/components/messages/{request_id}")},
        }
        if scope != GLOBAL_SCOPE:
            channel["parameters"] = {"city": _ref("#/components/parameters/city")}
        channels[op.key] = channel
        channels[f"{op.key}.reply"] = {
            "address": None,
            "description": "The caller's own inbox (_INBOX_<NATS user>.…), which no other service may subscribe to.",
            "messages": {"reply": _ref(f"#/components/messages/{reply_id}")},
        }
        operations[op.key] = {
            "action": "receive",
            "channel": _ref(f"#/channels/{op.key}"),
            "summary": op.summary or op.key,
            "messages": [_ref(f"#/channels/{op.key}/messages/request")],
            "reply": {
                "address": {"location": "$message.header#/reply", "description": "the NATS reply subject of the request"},
                "channel": _ref(f"#/channels/{op.key}.reply"),
                "messages": [_ref(f"#/channels/{op.key}.reply/messages/reply")],
            },
            "x-renkei-owner": op.owner,
            "x-renkei-callers": sorted(op.callers),
            "x-renkei-audited": op.audited,
            "x-renkei-person-field": op.person_field,
        }

    for event in sorted(registry.events.values(), key=lambda e: e.key):
        scope = _scope(event.owner)
        message_id = event.key
        messages[message_id] = {
            "name": message_id,
            "title": event.key,
            "summary": event.summary or event.key,
            "contentType": "application/json",
            "headers": _ref("#/components/schemas/EventHeaders"),
            "payload": refs[event.model],
        }
        channel = {
            "address": event_subject(scope, event.owner, event.name),
            "description": f"JetStream stream {event.stream_name(event.owner, scope)}; consumed exactly once per consumer through its inbox.",
            "messages": {"event": _ref(f"#/components/messages/{message_id}")},
        }
        if scope != GLOBAL_SCOPE:
            channel["parameters"] = {"city": _ref("#/components/parameters/city")}
        channels[event.key] = channel
        operations[f"{event.key}.publish"] = {
            "action": "send",
            "channel": _ref(f"#/channels/{event.key}"),
            "summary": event.summary or event.key,
            "messages": [_ref(f"#/channels/{event.key}/messages/event")],
            "x-renkei-owner": event.owner,
            "x-renkei-consumers": sorted(event.consumers),
        }
        for consumer in sorted(event.consumers):
            operations[f"{event.key}.consume.{consumer}"] = {
                "action": "receive",
                "channel": _ref(f"#/channels/{event.key}"),
                "summary": f"{consumer} applies {event.key} (durable consumer {consumer}__{event.name})",
                "messages": [_ref(f"#/channels/{event.key}/messages/event")],
                "x-renkei-owner": consumer,
            }

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Renkei in-house bus (庁内連携)",
            "version": version,
            "description": (
                "Request/reply operations and JetStream events between the systems of each city, generated from "
                "shared.contracts. Only the services in an operation's x-renkei-callers may call it: the NATS "
                "permissions and the receiving service both refuse everyone else."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:14222",
                "protocol": "nats",
                "description": "The nats-server of 'renkei up': one user per service, with permissions derived from these contracts.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {**schemas, "RequestHeaders": REQUEST_HEADERS, "ReplyHeaders": REPLY_HEADERS, "EventHeaders": EVENT_HEADERS},
            "messages": messages,
            "parameters": {"city": CITY_PARAMETER},
        },
    }


def render(registry: Registry = REGISTRY) -> str:
    """The document as YAML, in a stable order, so that the committed copy can be compared."""
    return yaml.safe_dump(document(registry), sort_keys=False, allow_unicode=True, width=120)
