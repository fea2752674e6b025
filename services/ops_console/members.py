"""The stack's members, as the ops console learns them.

``renkei up`` records what it started in ``DATA/run.json``; a deployment without the
launcher (compose, Kubernetes) gives the console a file of the same shape. Only the fields
the console needs are read: each service's name, city and URL, the cities, and the NATS
monitoring URL. The file is read on every round, so a restarted stack is picked up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from shared.trust import principal_name


class MembersUnavailable(Exception):
    """The members file is missing or unreadable."""


@dataclass(frozen=True)
class Member:
    service: str
    city: str | None
    url: str

    @property
    def principal(self) -> str:
        return principal_name(self.service, self.city)


@dataclass(frozen=True)
class StackMembers:
    cities: list[str]
    services: list[Member]
    nats_monitor_url: str | None
    nats_url: str | None


def load_members(path: Path) -> StackMembers:
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise MembersUnavailable(f"no members file at {path}: start the stack with 'renkei up'") from None
    except (OSError, ValueError) as exc:
        raise MembersUnavailable(f"cannot read {path}: {exc}") from None
    try:
        services = [Member(str(m["service"]), m.get("city") or None, str(m["url"]).rstrip("/")) for m in raw["services"]]
        nats = raw.get("nats") or {}
        cities = [str(c) for c in raw.get("cities") or sorted({m.city for m in services if m.city})]
    except (KeyError, TypeError, AttributeError) as exc:
        raise MembersUnavailable(f"{path} is not a members file: {exc!r}") from None
    return StackMembers(cities, services, raw.get("nats_monitor_url"), nats.get("url"))
