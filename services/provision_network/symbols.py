"""Symbols (符号): one per person per institution, derived with a keyed one-way function.

Like Austria's sector-specific identifiers (bPK), a symbol is an HMAC-SHA256 of the
person's resident code under a key of the institution's own, so symbols of two
institutions cannot be linked without the keys. The keys are derived from the hub's
master secret (``DATA/keys/provision_network.symbols.key``, owner-only) with HKDF, one
per institution; the hub's own reference for a person is another HMAC of the resident
code under a key of its own. The hub stores references and symbols, never resident
codes, and is the only party that can translate a symbol of one institution into the
symbol of another (M24: the symbol serves linkage only, no name matching).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from services.provision_network.models import IssuedSymbol
from shared.db import insert_ignoring_conflicts, rows_for
from shared.models import utcnow

SYMBOL_BYTES = 20
_LETTERS = "abcdefghijklmnop"


def master_secret(data_dir: Path) -> bytes:
    """The hub's symbol master secret, created once (owner-only)."""
    path = Path(data_dir) / "keys" / "provision_network.symbols.key"
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return master_secret(data_dir)
    with os.fdopen(fd, "w") as out:
        out.write(secret.hex() + "\n")
    return secret


def _derive(master: bytes, label: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label.encode("ascii")).derive(master)


def letters(digest: bytes) -> str:
    """Four bits a letter, a–p: never a digit."""
    return "".join(_LETTERS[b >> 4] + _LETTERS[b & 0x0F] for b in digest)


class SymbolIssuer:
    """Derives symbols and person references; keeps the per-institution keys in memory."""

    def __init__(self, master: bytes) -> None:
        self._master = master
        self._person_key = _derive(master, "renkei.network.person-ref/v1")
        self._keys: dict[str, bytes] = {}

    def _key(self, institution: str) -> bytes:
        key = self._keys.get(institution)
        if key is None:
            key = self._keys[institution] = _derive(self._master, f"renkei.network.symbol/v1|{institution}")
        return key

    def symbol(self, institution: str, resident_code: str) -> str:
        digest = hmac.digest(self._key(institution), resident_code.encode("ascii"), hashlib.sha256)
        return letters(digest[:SYMBOL_BYTES])

    def person_ref(self, resident_code: str) -> str:
        return hmac.digest(self._person_key, resident_code.encode("ascii"), hashlib.sha256).hex()

    def issue(self, session: Session, institution: str, resident_codes: list[str]) -> list[str]:
        """The institution's symbols for these people, recorded so that they can be translated."""
        now = utcnow()
        symbols = []
        for code in resident_codes:
            symbol = self.symbol(institution, code)
            insert_ignoring_conflicts(
                session,
                IssuedSymbol.__table__,
                {"institution": institution, "person_ref": self.person_ref(code), "symbol": symbol, "issued_at": now},
            )
            symbols.append(symbol)
        return symbols


_source, _target = IssuedSymbol.__table__.alias("source"), IssuedSymbol.__table__.alias("target")
#: Built once: the statement is the same for every batch of permits, only its parameters change.
_TRANSLATE = (
    select(_source.c.symbol, _target.c.symbol)
    .join(_source, _source.c.person_ref == _target.c.person_ref)
    .where(
        _source.c.institution == bindparam("source"),
        _source.c.symbol.in_(bindparam("keys", expanding=True)),
        _target.c.institution == bindparam("target"),
    )
)


def translate_many(session: Session, from_institution: str, to_institution: str, symbols: Iterable[str]) -> dict[str, str]:
    """The ``to_institution``'s symbol of each person ``symbols`` name at ``from_institution``,
    for those both institutions were issued one, in one statement."""
    return dict(rows_for(session, _TRANSLATE, symbols, source=from_institution, target=to_institution))
