"""Run one service as its own process: ``python -m shared.serve services.<name>.app``.

The module must offer ``create_app()``; host and port come from the service's settings
(``RENKEI_HOST``, ``RENKEI_PORT``).
"""

from __future__ import annotations

import importlib
import sys

import uvicorn


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python -m shared.serve services.<name>.app")
    module = importlib.import_module(argv[0])
    app = module.create_app()
    settings = app.state.context.settings
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False, lifespan="on")


if __name__ == "__main__":
    main(sys.argv[1:])
