"""The permitted-query list (照会許可用照合リスト), kept as data in ``data/permitted_queries.csv``.

One row per (affair, procedure, requester kind, provider kind, item): a query is permitted
only when a row matches all five. ``auto_response`` false marks an item whose answers wait
for a provider's staff to release them (自動応答不可, M26). The hub signs the list it
distributes, so each intermediate server can check its own copy came from the hub.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.contracts.network import LIST_LABEL, PermittedList, PermittedQuery, SignedPermittedList, institution_kind
from shared.crypto import canonical_bytes, sign_document

DATA_FILE = "permitted_queries.csv"


def parse_rows(text: str) -> list[PermittedQuery]:
    """The rows of the list, each checked against the contract (codes, kinds, flag)."""
    rows = []
    for number, raw in enumerate(csv.DictReader(text.splitlines()), start=2):
        try:
            flag = {"true": True, "false": False}[raw["auto_response"].strip()]
            rows.append(PermittedQuery(**{**{k: v.strip() for k, v in raw.items()}, "auto_response": flag}))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{DATA_FILE} line {number}: {exc}") from None
    keys = [(r.affair_code, r.procedure_code, r.requester_kind, r.provider_kind, r.item_code) for r in rows]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{DATA_FILE} names a row twice")
    return rows


def list_version(rows: list[PermittedQuery]) -> str:
    return hashlib.sha256(canonical_bytes([r.model_dump(mode="json") for r in rows])).hexdigest()


@lru_cache(maxsize=1)
def permitted_list() -> PermittedList:
    text = resources.files("services.provision_network").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    rows = parse_rows(text)
    return PermittedList(version=list_version(rows), rows=rows)


def signed_list(key: Ed25519PrivateKey) -> SignedPermittedList:
    document = permitted_list()
    return SignedPermittedList(document=document, signature=sign_document(key, LIST_LABEL, document.model_dump(mode="json")))


@dataclass(frozen=True)
class Match:
    row: PermittedQuery | None
    reason: str | None  # why nothing matched


def match(rows: list[PermittedQuery], requester: str, provider: str, affair: str, procedure: str, item: str) -> Match:
    """The row permitting this query, or the reason there is none."""
    kinds = institution_kind(requester), institution_kind(provider)
    for row in rows:
        if (row.affair_code, row.procedure_code, row.item_code) == (affair, procedure, item) and (row.requester_kind, row.provider_kind) == kinds:
            return Match(row, None)
    if not any(r.affair_code == affair and r.procedure_code == procedure for r in rows):
        return Match(None, f"the affair {affair} has no procedure {procedure} on the permitted-query list")
    if not any(r.affair_code == affair and r.procedure_code == procedure and r.item_code == item for r in rows):
        return Match(None, f"the procedure {procedure} may not ask for the item {item}")
    return Match(None, f"a {kinds[0]} may not ask a {kinds[1]} for {item} under {procedure}")
