"""The answer encryption and the signed documents of the network (``shared.crypto``)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.contracts import network as net
from shared.crypto import (
    SUITE_NAME,
    AnswerKeyPair,
    OpenError,
    SignatureMismatch,
    public_key_from_bytes,
    seal,
    sign_document,
    verify_document,
)
from shared.trust import Principal

INFO = net.answer_info("20250401090000-aa", "a" * 32, net.VACCINATION_RECORDS)


def test_a_sealed_answer_opens_only_with_its_key_and_its_context():
    keys, other = AnswerKeyPair.generate(), AnswerKeyPair.generate()
    ciphertext = seal("接種記録".encode(), keys.public_bytes, INFO)
    assert keys.open(ciphertext, INFO) == "接種記録".encode()
    assert "接種記録".encode() not in ciphertext
    with pytest.raises(OpenError):
        other.open(ciphertext, INFO)
    with pytest.raises(OpenError):  # moved to another query
        keys.open(ciphertext, net.answer_info("20250401090000-aa", "b" * 32, net.VACCINATION_RECORDS))
    for position in (0, 600, 1125, len(ciphertext) - 1):  # the hybrid encapsulation and the sealed part alike
        tampered = bytearray(ciphertext)
        tampered[position] ^= 0x80
        with pytest.raises(OpenError):
            keys.open(bytes(tampered), INFO)
    assert seal(b"x", keys.public_bytes, INFO) != seal(b"x", keys.public_bytes, INFO)  # fresh encapsulation each time


def test_answer_keys_are_kept_owner_only_and_read_back(tmp_path):
    principal = Principal("intermediate_server", "112224")
    made = AnswerKeyPair.load_or_create(tmp_path, principal)
    again = AnswerKeyPair.load_or_create(tmp_path, principal)
    assert made.public_bytes == again.public_bytes and made.key_id == again.key_id
    for name in ("hpke-mlkem768", "hpke-x25519"):
        assert oct((tmp_path / "keys" / f"{principal}.{name}.pem").stat().st_mode & 0o777) == "0o600"
    assert len(made.public_bytes) == 1216 and SUITE_NAME.startswith("MLKEM768-X25519")
    with pytest.raises(ValueError):
        public_key_from_bytes(made.public_bytes[:-1])


def test_a_signed_document_verifies_under_its_own_label_only():
    key = Ed25519PrivateKey.generate()
    document = {"b": 1, "a": ["照会", 2]}
    signature = sign_document(key, net.PERMIT_LABEL, document)
    verify_document(key.public_key(), net.PERMIT_LABEL, {"a": ["照会", 2], "b": 1}, signature)  # key order is not content
    for label, doc, public in (
        (net.LIST_LABEL, document, key.public_key()),
        (net.PERMIT_LABEL, {**document, "b": 2}, key.public_key()),
        (net.PERMIT_LABEL, document, Ed25519PrivateKey.generate().public_key()),
    ):
        with pytest.raises(SignatureMismatch):
            verify_document(public, label, doc, signature)
    with pytest.raises(SignatureMismatch):
        verify_document(key.public_key(), net.PERMIT_LABEL, document, "not base64!")
