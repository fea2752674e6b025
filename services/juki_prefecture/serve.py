"""Run the prefecture server: ``python -m services.juki_prefecture.serve`` (the same as
``python -m shared.serve services.juki_prefecture.app``, which ``renkei up`` uses).

Reads its settings from the environment like every service (``RENKEI_DATA_DIR``,
``RENKEI_PORT``, ``RENKEI_DATABASE_URL``) and serves HTTPS with client certificates
required. ``ServerThread`` runs it inside another process (tests, benchmarks) on a real
socket, with the same options.
"""

from __future__ import annotations

import threading
import time

import uvicorn

from services.juki_prefecture.app import create_app, uvicorn_options
from services.juki_prefecture.config import Settings
from shared import serve


def config(settings: Settings, **overrides) -> uvicorn.Config:
    app = create_app(settings)
    options = {**uvicorn_options(settings), **overrides}
    return uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, access_log=False, lifespan="on", **options)


class ServerThread:
    """The server on ``settings.port`` in a thread of this process, until ``stop``."""

    def __init__(self, settings: Settings, **overrides) -> None:
        self.settings = settings
        self.server = uvicorn.Server(config(settings, **overrides))
        self._thread = threading.Thread(target=self.server.run, name="juki-prefecture", daemon=True)

    @property
    def url(self) -> str:
        return f"https://{self.settings.host}:{self.settings.port}"

    @property
    def app(self):
        return self.server.config.app

    def start(self, timeout: float = 20.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the prefecture server did not start")
            time.sleep(0.02)
        return self

    def stop(self, grace_seconds: float = 2.0) -> None:
        """Stop serving; a peer still holding a keep-alive connection is cut off after the grace."""
        self.server.should_exit = True
        self._thread.join(timeout=grace_seconds)
        if self._thread.is_alive():
            self.server.force_exit = True
            self._thread.join(timeout=10)

    def __enter__(self) -> ServerThread:
        return self if self._thread.is_alive() else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    serve.main(["services.juki_prefecture.app"])


if __name__ == "__main__":
    main()
