"""Private keys kept as PEM files under the data folder, and their public halves in base64.

Each principal has two: an Ed25519 key that signs (tokens, permits, records) and an X25519
key that agrees a secret with a peer (the key of the per-request proofs on the bus).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

PrivateKey = TypeVar("PrivateKey", Ed25519PrivateKey, X25519PrivateKey)


def load_or_create(path: Path, kind: type[PrivateKey]) -> PrivateKey:
    """The key at ``path``, created (readable by its owner only) if there is none yet."""
    path = Path(path)
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, kind):
            raise ValueError(f"{path} does not hold an {kind.__name__.removesuffix('PrivateKey')} key")
        return key
    key = kind.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return load_or_create(path, kind)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return key


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    return load_or_create(path, Ed25519PrivateKey)


def public_key_b64(key) -> str:
    """The raw 32-byte public key, base64: the form the trust directory stores."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey | X25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def public_key_from_b64(value: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(value))


def agreement_key_from_b64(value: str) -> X25519PublicKey:
    return X25519PublicKey.from_public_bytes(base64.b64decode(value))
