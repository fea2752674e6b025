"""The Secrets and the ConfigMap the Kubernetes manifests expect, from a prepared data folder.

    python deploy/k8s/make_secrets.py --data ./stack --database-url postgresql://… | kubectl apply -n renkei -f -

The data folder is prepared as ``renkei up`` prepares it (keys, trust directory, local CA,
NATS passwords), here and once, on the operator's machine; each service then receives only
its own private keys (``renkei-identity-<member>``), every service the public trust
directory and the CA certificate (``renkei-trust``), NATS every password
(``renkei-nats-credentials``), and the services the database URL (``renkei-database``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(DEPLOY.parent))
sys.path.insert(0, str(DEPLOY))

from generate import NATS_MONITOR_PORT, NATS_PORT, _dump, identity_secret_name, members  # noqa: E402

from renkei.stack import DEFAULT_CITIES, parse_cities, prepare  # noqa: E402
from shared.pki import tls_files  # noqa: E402
from shared.trust import directory_path, key_path  # noqa: E402

HEADER = "# Secrets of one deployment: keep out of version control.\n"


def documents(data_dir: Path, cities: list[str], database_url: str) -> list[dict]:
    credentials = prepare(data_dir, cities, NATS_PORT, NATS_MONITOR_PORT)
    docs: list[dict] = []
    for member in members(cities):
        p = member.principal
        tls = tls_files(data_dir, p)
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": identity_secret_name(member), "labels": member.labels},
                "type": "Opaque",
                "stringData": {
                    "signing.pem": key_path(data_dir, p).read_text(),
                    "agreement.pem": (data_dir / "keys" / f"{p}.x25519.pem").read_text(),
                    "tls.crt": tls.certificate.read_text(),
                    "tls.key": tls.private_key.read_text(),
                },
            }
        )
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "renkei-trust"},
            "data": {
                "directory.json": directory_path(data_dir).read_text(),
                "ca.crt": tls_files(data_dir, members(cities)[0].principal).ca_certificate.read_text(),
            },
        }
    )
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "renkei-nats-credentials"},
            "type": "Opaque",
            "stringData": {m.nats_user: credentials[m.nats_user] for m in members(cities)},
        }
    )
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "renkei-database"},
            "type": "Opaque",
            "stringData": {"url": database_url},
        }
    )
    return docs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the data folder to prepare (or reuse)")
    parser.add_argument("--cities", default=",".join(DEFAULT_CITIES))
    parser.add_argument("--database-url", required=True, help="postgresql://user:password@host:5432/renkei")
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgresql://"):
        parser.error("--database-url must be a postgresql:// URL")
    sys.stdout.write(_dump(documents(args.data.resolve(), parse_cities(args.cities), args.database_url), HEADER))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


