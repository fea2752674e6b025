"""The bus benchmark runs end to end and reports its figures beside its baseline."""

from bench import bus


def test_bus_benchmark_reports_both_paths_and_their_ratio():
    figures = bus.run(quick=True, total=200, in_flight=4)
    for path in ("authenticated", "bare"):
        assert figures[path]["round_trips_per_s"] > 0
        assert 0 < figures[path]["p50_ms"] <= figures[path]["p99_ms"]
    expected = figures["authenticated"]["round_trips_per_s"] / figures["bare"]["round_trips_per_s"]
    assert abs(figures["ratio"] - expected) < 0.001
