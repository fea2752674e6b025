"""Encryption to a recipient (HPKE, RFC 9180) and signed documents, for the network.

- **Answer keys.** Each intermediate server holds an HPKE key pair of the hybrid
  ML-KEM-768 + X25519 KEM (post-quantum and classical at once: an answer stays secret
  unless both are broken). The private halves are ``DATA/keys/<principal>.hpke-mlkem768.pem``
  and ``DATA/keys/<principal>.hpke-x25519.pem`` (owner-only, created on first use); the
  public key is published as a *key statement* signed with the principal's Ed25519 key,
  so that whoever relays it (the hub's directory) cannot swap it for its own.
- **Sealing.** ``seal`` encrypts to a public key with the default suite
  (ML-KEM-768+X25519 / HKDF-SHA256 / AES-128-GCM). The ``info`` string binds a ciphertext
  to its context (serial number, query, item): a ciphertext moved to another query, or
  altered in any bit, does not open (``OpenError``).
- **Signed documents.** ``sign_document`` / ``verify_document`` sign the canonical JSON of
  a document (sorted keys, no whitespace, UTF-8) under a domain-separation label, so a
  signature made for one kind of document never verifies as another.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from shared.keys import load_or_create
from shared.trust import Principal

#: The default suite, as written into key statements and sealed answers.
SUITE_NAME = "MLKEM768-X25519/HKDF-SHA256/AES-128-GCM"
SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM)
MLKEM768_PUBLIC_LENGTH = 1184
X25519_PUBLIC_LENGTH = 32


class OpenError(Exception):
    """A ciphertext that does not open with this key and context: altered, misdirected or foreign."""


class SignatureMismatch(Exception):
    """A signature that does not verify with the key and label given."""


# --- canonical JSON and base64 ---------------------------------------------------------


def canonical_bytes(document: Any) -> bytes:
    """The one byte form of a JSON-ready document that signatures cover."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError("not base64") from exc


# --- signed documents ------------------------------------------------------------------


def signed_message(label: str, document: Any) -> bytes:
    """The bytes a signature of ``document`` under ``label`` covers."""
    return label.encode("ascii") + b"\n" + canonical_bytes(document)


def sign_document(key: Ed25519PrivateKey, label: str, document: Any) -> str:
    """The base64 Ed25519 signature of ``document`` under ``label``."""
    return b64encode(key.sign(signed_message(label, document)))


def verify_document(key: Ed25519PublicKey, label: str, document: Any, signature: str) -> None:
    """Raise ``SignatureMismatch`` unless ``signature`` signs ``document`` under ``label``."""
    try:
        key.verify(b64decode(signature), signed_message(label, document))
    except (InvalidSignature, ValueError):
        raise SignatureMismatch(f"the signature does not verify as a {label} document") from None


# --- answer keys -----------------------------------------------------------------------


class AnswerKeyPair:
    """An HPKE key pair of the hybrid ML-KEM-768 + X25519 KEM."""

    def __init__(self, mlkem: MLKEM768PrivateKey, x25519: X25519PrivateKey) -> None:
        self._mlkem = mlkem
        self._x25519 = x25519
        self._private = hpke.MLKEM768X25519PrivateKey(mlkem, x25519)
        self.public_bytes = public_key_bytes(mlkem.public_key(), x25519.public_key())
        self.key_id = key_id(self.public_bytes)

    @classmethod
    def generate(cls) -> AnswerKeyPair:
        return cls(MLKEM768PrivateKey.generate(), X25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, data_dir: Path, principal: Principal) -> AnswerKeyPair:
        """The principal's pair from ``DATA/keys/``, created (owner-only) on first use."""
        folder = Path(data_dir) / "keys"
        return cls(
            load_or_create(folder / f"{principal}.hpke-mlkem768.pem", MLKEM768PrivateKey),
            load_or_create(folder / f"{principal}.hpke-x25519.pem", X25519PrivateKey),
        )

    @property
    def public_b64(self) -> str:
        return b64encode(self.public_bytes)

    def open(self, ciphertext: bytes, info: bytes) -> bytes:
        """The plaintext of a ciphertext sealed to this pair under ``info``, or ``OpenError``."""
        try:
            return SUITE.decrypt(ciphertext, self._private, info=info)
        except (InvalidTag, ValueError) as exc:
            raise OpenError("the ciphertext does not open with this key and context") from exc


def public_key_bytes(mlkem: MLKEM768PublicKey, x25519: X25519PublicKey) -> bytes:
    """The published form: the ML-KEM-768 encapsulation key, then the X25519 key (1,216 bytes)."""
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    return mlkem.public_bytes(*raw) + x25519.public_bytes(*raw)


@functools.lru_cache(maxsize=256)
def public_key_from_bytes(data: bytes) -> hpke.MLKEM768X25519PublicKey:
    """The key of its published form; kept, as a requester's key comes with each of its
    queries and changes only when the requester renews it (parsing costs a third of a seal)."""
    if len(data) != MLKEM768_PUBLIC_LENGTH + X25519_PUBLIC_LENGTH:
        raise ValueError(f"a {SUITE_NAME} public key is {MLKEM768_PUBLIC_LENGTH + X25519_PUBLIC_LENGTH} bytes")
    return hpke.MLKEM768X25519PublicKey(
        MLKEM768PublicKey.from_public_bytes(data[:MLKEM768_PUBLIC_LENGTH]),
        X25519PublicKey.from_public_bytes(data[MLKEM768_PUBLIC_LENGTH:]),
    )


def key_id(public_bytes: bytes) -> str:
    """A short name of a public key: the first 16 bytes of its SHA-256, in hex."""
    return hashlib.sha256(public_bytes).hexdigest()[:32]


def seal(plaintext: bytes, public_bytes: bytes, info: bytes) -> bytes:
    """HPKE base-mode encryption to the key ``public_bytes`` (the published form)."""
    return SUITE.encrypt(plaintext, public_key_from_bytes(public_bytes), info=info)
