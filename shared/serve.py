"""Run one service as its own process: ``python -m shared.serve services.<name>.app``.

The module must offer ``create_app()``; host and port come from the service's settings
(``RENKEI_HOST``, ``RENKEI_PORT``). A service with ``RENKEI_TLS_CLIENT_AUTH`` set serves
HTTPS only, and only to peers whose certificate the local CA issued (mutual TLS). A module
that needs more of uvicorn (the prefecture server reads peers' certificates) offers
``uvicorn_options(settings)``, used instead.
"""

from __future__ import annotations

import importlib
import ssl
import sys

import uvicorn

from shared.pki import tls_files


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python -m shared.serve services.<name>.app")
    module = importlib.import_module(argv[0])
    app = module.create_app()
    settings = app.state.context.settings
    options: dict = {}
    if hasattr(module, "uvicorn_options"):
        options = module.uvicorn_options(settings)
    elif settings.tls_client_auth:
        files = tls_files(settings.data_dir, settings.principal)
        options = {
            "ssl_certfile": str(files.certificate),
            "ssl_keyfile": str(files.private_key),
            "ssl_ca_certs": str(files.ca_certificate),
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
        }
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False, lifespan="on", **options)


if __name__ == "__main__":
    main(sys.argv[1:])
