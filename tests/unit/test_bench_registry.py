"""Every name ``renkei bench`` offers leads to a benchmark it can run."""

from __future__ import annotations

import inspect

import pytest

from bench import BENCHMARKS, load


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_every_benchmark_offers_run_with_quick(name):
    run = getattr(load(name), "run", None)
    assert callable(run), f"{BENCHMARKS[name]} has no run()"
    assert "quick" in inspect.signature(run).parameters
