"""Container health check: exit 0 when the URL answers 200.

Without a URL it probes the service of this container on ``/readyz`` (``--path`` to change),
over HTTPS with the service's own client certificate when it serves only peers holding one
(``RENKEI_TLS_CLIENT_AUTH``): a probe from outside could not present one.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
import urllib.error
import urllib.request


def own_url(path: str) -> tuple[str, ssl.SSLContext | None]:
    port = os.environ.get("RENKEI_PORT", "8000")
    if os.environ.get("RENKEI_TLS_CLIENT_AUTH", "").lower() in ("1", "true", "yes"):
        from pathlib import Path

        from shared.pki import tls_files
        from shared.trust import Principal

        principal = Principal(os.environ["RENKEI_SERVICE"], os.environ.get("RENKEI_CITY") or None)
        context = tls_files(Path(os.environ.get("RENKEI_DATA_DIR", "/data")), principal).client_context()
        return f"https://127.0.0.1:{port}{path}", context
    return f"http://127.0.0.1:{port}{path}", None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="what to probe; this container's service when absent")
    parser.add_argument("--path", default="/readyz")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    url, context = (args.url, None) if args.url else own_url(args.path)
    try:
        with urllib.request.urlopen(url, timeout=args.timeout, context=context) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
