"""Who is on the other end of the TLS connection.

uvicorn verifies the client certificate against the local CA (``ssl_cert_reqs=CERT_REQUIRED``)
but does not hand it to the app. ``PeerCertificateProtocol`` is uvicorn's HTTP protocol
that adds the ASGI TLS extension (``scope["extensions"]["tls"]``: ``client_cert_chain``,
``client_cert_name``) to every request of a connection; ``peer_principal`` reads the
principal from the certificate's common name. A request that arrives without the
extension (no TLS, or served without this protocol) names nobody and is refused.
"""

from __future__ import annotations

import ssl
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from fastapi import Request
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from shared.errors import Forbidden, Unauthenticated
from shared.oplog import Actor
from shared.trust import Principal

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(ssl_object: ssl.SSLObject | None) -> dict[str, Any] | None:
    """The ASGI TLS extension for a connection, or None without a verified client certificate."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    certificate = x509.load_der_x509_certificate(der)
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)],
        "client_cert_name": certificate.subject.rfc4514_string(),
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


class PeerCertificateProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's HTTP protocol, passing the connection's client certificate to the app."""

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        tls = tls_extension(transport.get_extra_info("ssl_object"))
        if tls is None:
            return
        app = self.app

        async def with_peer(scope, receive, send):
            if scope["type"] in ("http", "websocket"):
                scope = {**scope, "extensions": {**(scope.get("extensions") or {}), "tls": tls}}
            await app(scope, receive, send)

        self.app = with_peer


def peer_principal(request: Request) -> Principal:
    """Dependency: the principal the verified client certificate names (its common name)."""
    tls = (request.scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    if not chain:
        raise Unauthenticated("no client certificate: this server speaks only mutual TLS")
    certificate = x509.load_pem_x509_certificate(chain[0].encode())
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise Forbidden("the client certificate names no principal")
    principal = Principal.parse(str(names[0].value))
    request.state.actor = Actor(str(principal), "service")
    return principal
