"""The network listener: a second HTTPS server in the same process, for the hub alone.

The staff and ops API stays on the service's own port; the network endpoints
(``network_api.py``) are served here, only over mutual TLS (a client certificate of the
local CA is required before any request is read), and each call must carry the hub's
service token and request proof. The hub learns the address when this server registers.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

import uvicorn
from fastapi import FastAPI

from shared.pki import TlsFiles


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):
        # The process's own server handles signals; this one is stopped with the app.
        yield


class NetworkListener:
    def __init__(self, app: FastAPI, tls: TlsFiles, host: str, port: int) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            ssl_certfile=str(tls.certificate),
            ssl_keyfile=str(tls.private_key),
            ssl_ca_certs=str(tls.ca_certificate),
            ssl_cert_reqs=ssl.CERT_REQUIRED,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
        self._server = _Server(config)
        self._host = host
        self._task: asyncio.Task | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"https://{self._host}:{self.port}"

    async def start(self, timeout: float = 20.0) -> None:
        self._task = asyncio.create_task(self._server.serve(), name="network-listener")
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise RuntimeError("the network listener stopped at start")
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError("the network listener did not start")
            await asyncio.sleep(0.02)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(self._task, timeout=5)
        except (TimeoutError, asyncio.CancelledError):
            self._server.force_exit = True
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
