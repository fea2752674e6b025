"""NATS health from its monitoring endpoint: connections, JetStream streams and consumers.

``/varz`` gives the server's figures, ``/connz`` who is connected (each service connects
under its principal's name), ``/jsz`` the streams and, per durable consumer, its lag: the
messages not yet delivered (``num_pending``), those delivered but not acknowledged
(``num_ack_pending``) and those delivered more than once (``num_redelivered``).
"""

from __future__ import annotations

from typing import Any

import httpx


def summarise(varz: dict[str, Any], connz: dict[str, Any], jsz: dict[str, Any], healthy: bool) -> dict[str, Any]:
    streams, consumers = [], []
    for account in jsz.get("account_details") or []:
        for stream in account.get("stream_detail") or []:
            state = stream.get("state") or {}
            streams.append(
                {
                    "name": stream["name"],
                    "messages": int(state.get("messages", 0)),
                    "bytes": int(state.get("bytes", 0)),
                    "consumers": int(state.get("consumer_count", 0)),
                    "replicas": 1 + len((stream.get("cluster") or {}).get("replicas") or []),
                }
            )
            for consumer in stream.get("consumer_detail") or []:
                consumers.append(
                    {
                        "stream": stream["name"],
                        "name": consumer["name"],
                        "pending": int(consumer.get("num_pending", 0)),
                        "ack_pending": int(consumer.get("num_ack_pending", 0)),
                        "redelivered": int(consumer.get("num_redelivered", 0)),
                    }
                )
    return {
        "reachable": True,
        "healthy": healthy,
        "server_name": varz.get("server_name"),
        "version": varz.get("version"),
        "uptime": varz.get("uptime"),
        "connections": int(varz.get("connections", 0)),
        "slow_consumers": int(varz.get("slow_consumers", 0)),
        "clients": sorted(c.get("name") or "(unnamed)" for c in connz.get("connections") or []),
        "jetstream": {
            "enabled": bool(jsz) and "config" in jsz,
            "streams": sorted(streams, key=lambda s: s["name"]),
            "consumers": sorted(consumers, key=lambda c: (c["stream"], c["name"])),
        },
    }


async def probe(client: httpx.AsyncClient, base_url: str) -> dict[str, Any]:
    """The summary of one NATS server, or ``reachable: false`` with the reason."""
    base = base_url.rstrip("/")
    try:
        health = await client.get(f"{base}/healthz", params={"js-enabled-only": "true"})
        varz = (await client.get(f"{base}/varz")).raise_for_status().json()
        connz = (await client.get(f"{base}/connz", params={"limit": 1024})).raise_for_status().json()
        jsz = (await client.get(f"{base}/jsz", params={"accounts": "true", "streams": "true", "consumers": "true"})).json()
    except (httpx.HTTPError, ValueError) as exc:
        return {"reachable": False, "url": base, "error": _reason(exc)}
    return {"url": base, **summarise(varz, connz, jsz, health.status_code == 200)}


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
