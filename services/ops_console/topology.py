"""The topology the console draws, as the assessment draws it: the systems of each city, the
national hub, and the links between them.

Links come from the contracts (who may call whom on the bus, who reads whose events), so
the picture cannot drift from what the NATS permissions allow; the links between
organisations, which are HTTPS and not on the bus, are listed here.
"""

from __future__ import annotations

from collections.abc import Iterable

from services.ops_console.members import Member
from shared.contracts import Registry
from shared.trust import principal_name

#: Each system's name in English and as the assessment names it.
SYSTEMS: dict[str, tuple[str, str]] = {
    "resident_registry": ("Resident registry", "住民記録システム"),
    "integrated_address": ("Integrated address", "団体内統合宛名システム"),
    "welfare_address": ("Welfare address", "福祉宛名システム"),
    "juki_cs": ("Juki-net CS", "住基ネットCS"),
    "health_mgmt": ("Health management", "健康管理システム"),
    "intermediate_server": ("Intermediate server", "中間サーバー"),
    "tax_welfare": ("Tax and welfare", "庁内業務システム (税務・福祉)"),
    "provision_network": ("National hub", "情報提供ネットワークシステム"),
    "juki_prefecture": ("Prefecture server", "都道府県サーバ"),
    "ops_console": ("Ops console", "運用コンソール"),
}

#: Links between organisations, over HTTPS with mutual TLS: (city system, national system, label).
NETWORK_LINKS: tuple[tuple[str, str, str], ...] = (
    ("intermediate_server", "provision_network", "情報提供ネットワーク (HTTPS, mutual TLS)"),
    ("juki_cs", "juki_prefecture", "住基ネット (HTTPS, mutual TLS)"),
)

GLOBAL_GROUP = "national"


def _edge_key(source: str, target: str, kind: str) -> tuple[str, str, str]:
    return (source, target, kind)


def build(members: Iterable[Member], cities: list[str], registry: Registry) -> dict:
    members = list(members)
    present = {m.principal for m in members}
    nodes = [
        {
            "id": m.principal,
            "service": m.service,
            "city": m.city,
            "group": m.city or GLOBAL_GROUP,
            "name": SYSTEMS.get(m.service, (m.service, ""))[0],
            "name_ja": SYSTEMS.get(m.service, (m.service, ""))[1],
        }
        for m in members
    ]
    edges: dict[tuple[str, str, str], list[str]] = {}

    def link(source: str, target: str, kind: str, label: str) -> None:
        if source in present and target in present and source != target:
            edges.setdefault(_edge_key(source, target, kind), []).append(label)

    scopes: list[str | None] = [*cities, None]
    for op in registry.operations.values():
        if op.name == "ping":  # everyone answers it; it is no link of the affairs
            continue
        for caller in sorted(op.callers):
            for city in scopes:
                owner_city = None if _is_global(op.owner, members) else city
                link(principal_name(caller, city), principal_name(op.owner, owner_city), "bus", op.name)
    for event in registry.events.values():
        for consumer in sorted(event.consumers):
            for city in scopes:
                link(principal_name(event.owner, city), principal_name(consumer, city), "event", event.name)
    for local, national, label in NETWORK_LINKS:
        for city in cities:
            link(principal_name(local, city), principal_name(national, None), "network", label)
    groups = [*cities, GLOBAL_GROUP] if any(m.city is None for m in members) else list(cities)
    return {
        "groups": groups,
        "nodes": nodes,
        "edges": [
            {"source": s, "target": t, "kind": k, "labels": sorted(set(labels))} for (s, t, k), labels in sorted(edges.items())
        ],
    }


def _is_global(service: str, members: list[Member]) -> bool:
    return any(m.service == service and m.city is None for m in members)
