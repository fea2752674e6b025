"""Benchmarks. Each module offers ``run(quick=False) -> dict`` and prints JSON figures, every
figure beside a baseline measured in the same run (machines are noisy: compare ratios)."""

from __future__ import annotations

import importlib
from types import ModuleType

#: ``renkei bench NAME`` → module under ``bench``.
BENCHMARKS = {
    "address-assign": "bench.address_assign",
    "bus": "bench.bus",
    "clinic-import": "bench.clinic_import",
    "reminders": "bench.reminders",
    "move-in": "bench.move_in",
    "ledger": "bench.ledger",
    "schedule": "bench.schedule",
    "juki-search": "bench.juki_search_http",
    "juki-search-index": "bench.juki_search",
    "seed": "bench.seed",
}


def load(name: str) -> ModuleType:
    return importlib.import_module(BENCHMARKS[name])
