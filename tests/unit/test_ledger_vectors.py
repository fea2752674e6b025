"""Every RFC 9162 proof vector of transparency-dev/merkle, positive and negative."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from shared.ledger.merkle import MemoryTree, ProofError, leaf_hash, verify_consistency, verify_inclusion

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "rfc9162"
INCLUSION = sorted((VECTORS / "inclusion").rglob("*.json"))
CONSISTENCY = sorted((VECTORS / "consistency").rglob("*.json"))

# The leaves of the RFC 6962 test tree, from which the happy-path vectors were made.
RFC6962_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]


def _case_id(path: Path) -> str:
    return str(path.relative_to(VECTORS))


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _proof(case: dict) -> list[bytes]:
    return [_b64(h) for h in case["proof"] or []]


def test_all_vectors_are_found():
    # Both folders hold dozens of cases; an empty glob must not pass as "all vectors ran".
    assert len(INCLUSION) > 80
    assert len(CONSISTENCY) > 80
    assert any(_load(p)["wantErr"] for p in INCLUSION) and not all(_load(p)["wantErr"] for p in INCLUSION)
    assert any(_load(p)["wantErr"] for p in CONSISTENCY) and not all(_load(p)["wantErr"] for p in CONSISTENCY)


@pytest.mark.parametrize("path", INCLUSION, ids=_case_id)
def test_inclusion_vector(path: Path):
    case = _load(path)
    check = lambda: verify_inclusion(  # noqa: E731
        _b64(case["leafHash"]), case["leafIdx"], case["treeSize"], _proof(case), _b64(case["root"])
    )
    if case["wantErr"]:
        with pytest.raises(ProofError):
            check()
    else:
        check()


@pytest.mark.parametrize("path", CONSISTENCY, ids=_case_id)
def test_consistency_vector(path: Path):
    case = _load(path)
    check = lambda: verify_consistency(  # noqa: E731
        case["size1"], case["size2"], _b64(case["root1"]), _b64(case["root2"]), _proof(case)
    )
    if case["wantErr"]:
        with pytest.raises(ProofError):
            check()
    else:
        check()


def _happy(paths: list[Path]) -> list[Path]:
    return [p for p in paths if p.name == "happy-path.json"]


@pytest.mark.parametrize("path", _happy(INCLUSION), ids=_case_id)
def test_generated_inclusion_proof_equals_vector(path: Path):
    case = _load(path)
    tree = MemoryTree(leaf_hash(leaf) for leaf in RFC6962_LEAVES)
    assert leaf_hash(RFC6962_LEAVES[case["leafIdx"]]) == _b64(case["leafHash"])
    assert tree.inclusion_proof(case["leafIdx"], case["treeSize"]) == _proof(case)
    assert tree.root(case["treeSize"]) == _b64(case["root"])


@pytest.mark.parametrize("path", _happy(CONSISTENCY), ids=_case_id)
def test_generated_consistency_proof_equals_vector(path: Path):
    case = _load(path)
    tree = MemoryTree(leaf_hash(leaf) for leaf in RFC6962_LEAVES)
    assert tree.consistency_proof(case["size1"], case["size2"]) == _proof(case)
    assert tree.root(case["size1"]) == _b64(case["root1"])
    assert tree.root(case["size2"]) == _b64(case["root2"])
