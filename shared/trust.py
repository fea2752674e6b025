"""Who is who: principals, their key files and the directory of public keys.

A principal is one service of one city, written ``service@city`` (``health_mgmt@112224``);
the services that exist once for all cities (the national hub, the ops console) are
written by name alone. Each principal's Ed25519 signing key is ``DATA/keys/<principal>.pem``
and its X25519 agreement key ``DATA/keys/<principal>.x25519.pem``; the public halves of all
of them form the trust directory ``DATA/trust/directory.json``, which every service loads to
check who signed a token, a permit or a record, and to agree request-proof keys with peers.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from shared.keys import (
    agreement_key_from_b64,
    load_or_create,
    load_or_create_signing_key,
    public_key_b64,
    public_key_from_b64,
)

GLOBAL_SCOPE = "global"


@dataclass(frozen=True, order=True)
class Principal:
    """One service of one city (``city`` is None for the services that exist once)."""

    service: str
    city: str | None = None

    @classmethod
    def parse(cls, text: str) -> Principal:
        service, _, city = text.partition("@")
        if not service:
            raise ValueError(f"not a principal: {text!r}")
        return cls(service, city or None)

    @property
    def scope(self) -> str:
        """The second token of the principal's NATS subjects: its city, or ``global``."""
        return self.city or GLOBAL_SCOPE

    def __str__(self) -> str:
        return principal_name(self.service, self.city)


def principal_name(service: str, city: str | None) -> str:
    """``service@city``, or the service alone for the services that exist once."""
    return f"{service}@{city}" if city else service


def key_path(data_dir: Path, principal: Principal) -> Path:
    return Path(data_dir) / "keys" / f"{principal}.pem"


def directory_path(data_dir: Path) -> Path:
    return Path(data_dir) / "trust" / "directory.json"


def signing_key(data_dir: Path, principal: Principal) -> Ed25519PrivateKey:
    return load_or_create_signing_key(key_path(data_dir, principal))


def agreement_key(data_dir: Path, principal: Principal) -> X25519PrivateKey:
    return load_or_create(Path(data_dir) / "keys" / f"{principal}.x25519.pem", X25519PrivateKey)


class TrustDirectory:
    """The public signing and agreement keys of every principal, as the stack was configured."""

    def __init__(self, keys: dict[str, Ed25519PublicKey], agreement_keys: dict[str, X25519PublicKey] | None = None) -> None:
        self._keys = dict(keys)
        self._agreement = dict(agreement_keys or {})

    @classmethod
    def load(cls, data_dir: Path) -> TrustDirectory:
        raw = json.loads(directory_path(data_dir).read_text())["principals"]
        return cls(
            {name: public_key_from_b64(entry["signing_key"]) for name, entry in raw.items()},
            {name: agreement_key_from_b64(entry["agreement_key"]) for name, entry in raw.items() if "agreement_key" in entry},
        )

    @classmethod
    def create(cls, data_dir: Path, principals: list[Principal]) -> TrustDirectory:
        """Create (or keep) every principal's keys and write the directory of their public keys."""
        keys = {str(p): signing_key(data_dir, p).public_key() for p in principals}
        agreement = {str(p): agreement_key(data_dir, p).public_key() for p in principals}
        path = directory_path(data_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "principals": {
                name: {"signing_key": public_key_b64(keys[name]), "agreement_key": public_key_b64(agreement[name])}
                for name in sorted(keys)
            }
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(document, indent=2) + "\n")
        os.replace(tmp, path)
        return cls(keys, agreement)

    def public_key(self, principal: Principal | str) -> Ed25519PublicKey:
        try:
            return self._keys[str(principal)]
        except KeyError:
            raise KeyError(f"unknown principal: {principal}") from None

    def agreement_key(self, principal: Principal | str) -> X25519PublicKey:
        try:
            return self._agreement[str(principal)]
        except KeyError:
            raise KeyError(f"no agreement key for {principal}") from None

    def __contains__(self, principal: object) -> bool:
        return str(principal) in self._keys

    def principals(self) -> list[str]:
        return sorted(self._keys)
