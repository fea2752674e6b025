"""The writer that the ledger crash test kills: appends a burst, acknowledging each commit.

Prints ``<index>`` for every record once its batch is committed and ``checkpoint <size>``
after every checkpoint, flushing after each batch, so that whatever the parent read was
durable before the kill. Stops by itself after ``--limit`` records.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from shared.db import make_engine
from shared.keys import load_or_create_signing_key
from shared.ledger import Ledger
from shared.ledger.testing import sample_records


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--schema", default=None)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--limit", type=int, default=200_000)
    args = parser.parse_args()

    ledger = Ledger(make_engine(args.url, args.schema), args.tenant, load_or_create_signing_key(args.key))
    rng = random.Random(28)
    batches = 0
    while (size := ledger.tree_size()) < args.limit:
        count = rng.choice((1, 1, 2, 5, 17, 40))
        records = sample_records(count, args.tenant, start=size)
        receipts = [ledger.append(records[0])] if count == 1 else ledger.append_many(records)
        sys.stdout.write("".join(f"{r.index}\n" for r in receipts))
        batches += 1
        if batches % 7 == 0:
            sys.stdout.write(f"checkpoint {ledger.checkpoint().tree_size}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
