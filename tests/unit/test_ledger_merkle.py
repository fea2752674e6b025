"""Merkle tree properties: generated proofs verify, and any change to them is refused."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shared.ledger.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    NodeId,
    ProofError,
    TreeFrontier,
    consistency_proof_length,
    inclusion_proof_length,
    leaf_hash,
    node_hash,
    root_of,
    subtree_cover,
    verify_consistency,
    verify_inclusion,
)


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


TREE = MemoryTree(_leaves(300))


def _flip(value: bytes, bit: int) -> bytes:
    data = bytearray(value)
    data[(bit // 8) % len(data)] ^= 1 << (bit % 8)
    return bytes(data)


def test_hashes_follow_rfc9162():
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()
    assert root_of([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_roots_agree_with_the_definition_at_every_size():
    leaves = _leaves(300)
    frontier = TreeFrontier()
    for size in range(1, 301):
        frontier.append(leaves[size - 1])
        assert TREE.root(size) == root_of(leaves[:size]) == frontier.root()


def test_frontier_reports_each_completed_subtree_once():
    frontier = TreeFrontier()
    completed = []
    for value in _leaves(64):
        completed.extend(frontier.append(value, lambda level: True))
    assert sorted(node for node, _ in completed) == sorted(
        NodeId(level, index) for level in range(1, 7) for index in range(64 >> level)
    )
    assert all(TREE.node(node) == value for node, value in completed)


def test_frontier_round_trips_and_refuses_wrong_lengths():
    frontier = TreeFrontier()
    for value in _leaves(11):
        frontier.append(value)
    again = TreeFrontier.from_bytes(11, frontier.to_bytes())
    assert again.hashes == frontier.hashes and again.root() == frontier.root()
    with pytest.raises(ValueError):
        TreeFrontier.from_bytes(12, frontier.to_bytes())


@given(st.integers(0, 10_000), st.integers(1, 10_000))
def test_subtree_cover_tiles_the_range_with_aligned_complete_subtrees(start, length):
    cover = subtree_cover(start, start + length)
    position = start
    for node in cover:
        assert node.first_leaf == position
        assert node.first_leaf % (1 << node.level) == 0
        position = node.end_leaf
    assert position == start + length


@given(st.data())
def test_generated_inclusion_proofs_verify(data):
    size = data.draw(st.integers(1, 300))
    index = data.draw(st.integers(0, size - 1))
    proof = TREE.inclusion_proof(index, size)
    assert len(proof) == inclusion_proof_length(index, size)
    verify_inclusion(TREE.node(NodeId(0, index)), index, size, proof, TREE.root(size))


@given(st.data())
def test_generated_consistency_proofs_verify(data):
    new = data.draw(st.integers(1, 300))
    old = data.draw(st.integers(1, new))
    proof = TREE.consistency_proof(old, new)
    if old < new:
        assert len(proof) == consistency_proof_length(old, new)
    verify_consistency(old, new, TREE.root(old), TREE.root(new), proof)


MUTATIONS = ("flip-proof", "flip-leaf", "flip-root", "drop", "append", "prepend", "other-index", "index-at-size")


@settings(max_examples=300)
@given(st.data(), st.sampled_from(MUTATIONS))
def test_mutated_inclusion_proofs_are_refused(data, mutation):
    size = data.draw(st.integers(1, 300))
    index = data.draw(st.integers(0, size - 1))
    leaf, root, proof = TREE.node(NodeId(0, index)), TREE.root(size), TREE.inclusion_proof(index, size)
    bit = data.draw(st.integers(0, 255))
    if mutation == "flip-proof":
        assume(proof)
        at = data.draw(st.integers(0, len(proof) - 1))
        proof[at] = _flip(proof[at], bit)
    elif mutation == "flip-leaf":
        leaf = _flip(leaf, bit)
    elif mutation == "flip-root":
        root = _flip(root, bit)
    elif mutation == "drop":
        assume(proof)
        del proof[data.draw(st.integers(0, len(proof) - 1))]
    elif mutation == "append":
        proof.append(data.draw(st.binary(min_size=32, max_size=32)))
    elif mutation == "prepend":
        proof.insert(0, TREE.root(size))
    elif mutation == "other-index":
        assume(size > 1)
        index = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
    elif mutation == "index-at-size":
        index = size
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, proof, root)


@settings(max_examples=300)
@given(st.data(), st.sampled_from(("flip-proof", "flip-old-root", "flip-new-root", "drop", "append", "swap-roots")))
def test_mutated_consistency_proofs_are_refused(data, mutation):
    new = data.draw(st.integers(2, 300))
    old = data.draw(st.integers(1, new - 1))
    old_root, new_root, proof = TREE.root(old), TREE.root(new), TREE.consistency_proof(old, new)
    bit = data.draw(st.integers(0, 255))
    if mutation == "flip-proof":
        at = data.draw(st.integers(0, len(proof) - 1))
        proof[at] = _flip(proof[at], bit)
    elif mutation == "flip-old-root":
        old_root = _flip(old_root, bit)
    elif mutation == "flip-new-root":
        new_root = _flip(new_root, bit)
    elif mutation == "drop":
        del proof[data.draw(st.integers(0, len(proof) - 1))]
    elif mutation == "append":
        proof.append(data.draw(st.binary(min_size=32, max_size=32)))
    elif mutation == "swap-roots":
        old_root, new_root = new_root, old_root
    with pytest.raises(ProofError):
        verify_consistency(old, new, old_root, new_root, proof)


@pytest.mark.parametrize(
    ("index", "size", "proof", "why"),
    [
        (0, 0, [], "empty tree"),
        (-1, 4, [b"x" * 32] * 2, "negative index"),
        (4, 4, [b"x" * 32] * 2, "index at size"),
        (0, 4, [b"x" * 31, b"x" * 32], "short hash"),
        (0, 4, [b"x" * 33, b"x" * 32], "long hash"),
        (0, 4, ["x" * 32, b"x" * 32], "not bytes"),
    ],
)
def test_malformed_inclusion_input_is_a_proof_error(index, size, proof, why):
    with pytest.raises(ProofError):
        verify_inclusion(b"l" * 32, index, size, proof, b"r" * 32)


def test_consistency_refuses_sizes_that_prove_nothing():
    for old, new in ((0, 0), (0, 5), (5, 4), (-1, 3)):
        with pytest.raises(ProofError):
            verify_consistency(old, new, TREE.root(max(old, 0)), TREE.root(max(new, 0)), [])
