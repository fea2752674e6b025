"""The local certificate authority for mutual TLS between organisations.

On first run the stack creates a CA and, for each principal, a certificate that serves as
both TLS server and client certificate (names: the principal, ``localhost`` and
``127.0.0.1``). The links between organisations (each intermediate server and the hub, the
Juki-net CS and the prefecture server) accept only peers holding a certificate from it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shared.trust import Principal

CA_LIFETIME = dt.timedelta(days=3650)
LEAF_LIFETIME = dt.timedelta(days=397)


@dataclass(frozen=True)
class TlsFiles:
    certificate: Path
    private_key: Path
    ca_certificate: Path

    def server_context(self) -> ssl.SSLContext:
        """Server side: demands a client certificate signed by the local CA."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca_certificate))
        context.load_cert_chain(self.certificate, self.private_key)
        context.verify_mode = ssl.CERT_REQUIRED
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        return context

    def client_context(self) -> ssl.SSLContext:
        """Client side: presents its certificate and trusts only the local CA."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_certificate))
        context.load_cert_chain(self.certificate, self.private_key)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        return context


def pki_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "pki"


def tls_files(data_dir: Path, principal: Principal) -> TlsFiles:
    folder = pki_dir(data_dir)
    return TlsFiles(folder / f"{principal}.crt", folder / f"{principal}.key", folder / "ca.crt")


def ensure_pki(data_dir: Path, principals: list[Principal]) -> None:
    """Create the CA (once) and a certificate for every principal that has none."""
    folder = pki_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    ca_cert_path, ca_key_path = folder / "ca.crt", folder / "ca.key"
    if ca_cert_path.exists():
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    else:
        ca_key, ca_cert = _new_ca()
        _write_key(ca_key_path, ca_key)
        ca_cert_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    for principal in principals:
        files = tls_files(data_dir, principal)
        if files.certificate.exists():
            continue
        key, cert = issue_certificate(ca_key, ca_cert, str(principal))
        _write_key(files.private_key, key)
        files.certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _new_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Renkei"), x509.NameAttribute(NameOID.COMMON_NAME, "Renkei local CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue_certificate(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, common_name: str
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A leaf certificate for ``common_name``, good for TLS server and client authentication."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Renkei"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + LEAF_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _write_key(path: Path, key) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
