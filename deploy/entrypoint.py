"""Start one service in a container: ``RENKEI_SERVICE`` and ``RENKEI_CITY`` say which.

Its NATS login comes from the environment (Kubernetes: a Secret) or, when the password is
not set there, from the data folder that ``renkei prepare`` filled (compose). Only the
suite's own services can be started, by name.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from shared.contracts import CITY_SERVICES, GLOBAL_SERVICES
from shared.nats_config import nats_user
from shared.trust import Principal


def main() -> None:
    service = os.environ.get("RENKEI_SERVICE", "")
    city = os.environ.get("RENKEI_CITY") or None
    if service not in (*CITY_SERVICES, *GLOBAL_SERVICES):
        raise SystemExit(f"RENKEI_SERVICE must name a service of the suite, not {service!r}")
    if (city is None) != (service in GLOBAL_SERVICES):
        raise SystemExit(f"{service} {'runs once, without' if city else 'needs'} RENKEI_CITY")
    user = nats_user(Principal(service, city))
    os.environ.setdefault("RENKEI_NATS_USER", user)
    if not os.environ.get("RENKEI_NATS_PASSWORD"):
        credentials = Path(os.environ.get("RENKEI_DATA_DIR", "/data")) / "nats" / "credentials.json"
        try:
            os.environ["RENKEI_NATS_PASSWORD"] = json.loads(credentials.read_text())[user]
        except (OSError, ValueError, KeyError) as exc:
            raise SystemExit(f"no NATS password for {user}: set RENKEI_NATS_PASSWORD or run 'renkei prepare' ({exc})") from None
    os.execv(sys.executable, [sys.executable, "-m", "shared.serve", f"services.{service}.app"])


if __name__ == "__main__":
    main()
