"""Benchmark of the Juki CS search by the four items (基本4情報検索), in process.

Builds the synthetic population of Koshigaya, indexes it in a FourItemIndex and times
4-item searches written the ways people write them (old character forms, half-width
kana, hiragana for katakana, a wildcard for a character outside the set, a birth date
in the Japanese calendar, no birth date at all) beside exact-key lookups of the same
people by resident code in a dict, and reports both and their ratio.

    python -m bench.juki_search [people] [queries] [seed]

prints the figures as JSON.
"""

from __future__ import annotations

import gc
import json
import math
import random
import sys
import unicodedata
from collections.abc import Callable, Sequence
from time import perf_counter, perf_counter_ns

from services.juki_cs.matching import DATA_DIR as MATCHING_DATA_DIR
from services.juki_cs.matching import FourItemIndex, FourItemQuery, Person
from services.resident_registry.population import Resident, generate

CITY = "112224"
MUNICIPALITY = "越谷市"
WILDCARD = "＊"
_ERAS = (("令和", 2019, (5, 1)), ("平成", 1989, (1, 8)), ("昭和", 1926, (12, 25)), ("大正", 1912, (7, 30)))


def _variant_groups() -> dict[str, tuple[str, ...]]:
    """Each character of the variant table → the other forms of its group."""
    with open(MATCHING_DATA_DIR / "character_variants.json", encoding="utf-8") as handle:
        groups = json.load(handle)["groups"]
    return {char: tuple(other for other in group if other != char) for group in groups for char in group}


def _half_width_table() -> dict[str, str]:
    """Full-width katakana → half-width forms (ガ → ｶﾞ), the inverse of NFKC on them."""
    table: dict[str, str] = {"\u3000": " "}
    for code in range(0xFF61, 0xFFA0):
        half = chr(code)
        for mark in ("", "\uff9e", "\uff9f"):
            full = unicodedata.normalize("NFKC", half + mark)
            if len(full) == 1 and full not in table:
                table[full] = half + mark
    return table


_HALF_WIDTH = _half_width_table()
_VARIANTS = _variant_groups()


def _to_half_width(kana: str) -> str:
    return "".join(_HALF_WIDTH.get(char, char) for char in kana)


def _to_hiragana(kana: str) -> str:
    return "".join(chr(ord(char) - 0x60) if "ァ" <= char <= "ヶ" else char for char in kana)


def _japanese_calendar(day) -> str:
    for name, year, (month, first_day) in _ERAS:
        if (day.year, day.month, day.day) >= (year, month, first_day):
            era_year = day.year - year + 1
            return f"{name}{'元' if era_year == 1 else era_year}年{day.month}月{day.day}日"
    return day.isoformat()


def _with_old_forms(name: str, rng: random.Random) -> str:
    return "".join(rng.choice(_VARIANTS[char]) if char in _VARIANTS else char for char in name)


def _with_wildcard(name: str, rng: random.Random) -> str:
    positions = [i for i, char in enumerate(name) if not char.isspace()]
    i = rng.choice(positions)
    return name[:i] + WILDCARD + name[i + 1 :]


def _query(resident: Resident, name: str, *, birth_date: object = True) -> FourItemQuery:
    return FourItemQuery(
        name=name,
        address=resident.address,
        sex=resident.sex,
        birth_date=resident.birth_date if birth_date is True else birth_date,
    )


VARIATIONS: dict[str, Callable[[Resident, random.Random], FourItemQuery]] = {
    "exact": lambda r, rng: _query(r, r.name_kanji),
    "old_character_forms": lambda r, rng: _query(r, _with_old_forms(r.name_kanji, rng)),
    "half_width_kana": lambda r, rng: _query(r, _to_half_width(r.name_kana)),
    "hiragana_for_katakana": lambda r, rng: _query(r, _to_hiragana(r.name_kana)),
    "wildcard_for_gaiji": lambda r, rng: _query(r, _with_wildcard(r.name_kanji, rng)),
    "japanese_calendar_birth_date": lambda r, rng: _query(
        r, r.name_kanji, birth_date=_japanese_calendar(r.birth_date)
    ),
    "no_birth_date": lambda r, rng: _query(r, r.name_kanji, birth_date=None),
}


def _percentile(sorted_values: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile of values already sorted."""
    rank = max(1, math.ceil(percent / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _person(resident: Resident) -> Person:
    return Person(
        key=resident.resident_code,
        name_kanji=resident.name_kanji,
        name_kana=resident.name_kana,
        sex=resident.sex,
        birth_date=resident.birth_date,
        address=resident.address,
    )


def run_in_process(people: int = 340_000, queries: int = 2000, seed: int = 1) -> dict:
    """Times 4-item searches and exact-key lookups over a population of ``people``."""
    if people < 1 or queries < 1:
        raise ValueError("people and queries must be positive")
    started = perf_counter()
    residents = list(generate(CITY, people, seed))
    population_seconds = perf_counter() - started

    started = perf_counter()
    index = FourItemIndex(municipality_prefixes=(MUNICIPALITY,))
    index.add_all(_person(resident) for resident in residents)
    index_seconds = perf_counter() - started
    by_code = {resident.resident_code: resident for resident in residents}

    rng = random.Random(seed + 1)  # queries drawn apart from the population
    with_variants = [r for r in residents if any(char in _VARIANTS for char in r.name_kanji)] or residents
    names = list(VARIATIONS)
    cases: list[tuple[str, FourItemQuery, str]] = []
    for i in range(queries):
        variation = names[i % len(names)]
        target = rng.choice(with_variants if variation == "old_character_forms" else residents)
        cases.append((variation, VARIATIONS[variation](target, rng), target.resident_code))

    # The index lives as long as the service: keep the collector from rescanning it.
    gc.collect()
    gc.freeze()
    try:
        for _, query, _ in cases[: min(50, len(cases))]:
            index.search(query, limit=5)  # warm-up
        latencies_ns: list[int] = []
        hits: list[bool] = []
        loop_started = perf_counter()
        for _, query, expected in cases:
            before = perf_counter_ns()
            found = index.search(query, limit=5)
            latencies_ns.append(perf_counter_ns() - before)
            hits.append(bool(found) and found[0].key == expected)
        search_seconds = perf_counter() - loop_started

        codes = [expected for _, _, expected in cases]
        lookup_ns: list[int] = []
        for code in codes:
            before = perf_counter_ns()
            by_code[code]
            lookup_ns.append(perf_counter_ns() - before)
        rounds = max(1, 200_000 // len(codes))
        loop_started = perf_counter()
        for _ in range(rounds):
            for code in codes:
                by_code[code]
        lookup_seconds = perf_counter() - loop_started
    finally:
        gc.unfreeze()

    ordered = sorted(latencies_ns)
    ordered_lookups = sorted(lookup_ns)
    searches_per_s = len(cases) / search_seconds
    lookups_per_s = rounds * len(codes) / lookup_seconds
    by_variation = {}
    for name in names:
        picked = sorted(ns for (variation, _, _), ns in zip(cases, latencies_ns) if variation == name)
        found = [hit for (variation, _, _), hit in zip(cases, hits) if variation == name]
        if picked:
            by_variation[name] = {
                "queries": len(picked),
                "p50_ms": _percentile(picked, 50) / 1e6,
                "p99_ms": _percentile(picked, 99) / 1e6,
                "top1_rate": sum(found) / len(found),
            }
    four_item_p50_us = _percentile(ordered, 50) / 1e3
    exact_p50_us = _percentile(ordered_lookups, 50) / 1e3
    return {
        "people": people,
        "queries": len(cases),
        "seed": seed,
        "population_seconds": population_seconds,
        "index_build_seconds": index_seconds,
        "four_item_search": {
            "searches_per_s": searches_per_s,
            "p50_ms": _percentile(ordered, 50) / 1e6,
            "p99_ms": _percentile(ordered, 99) / 1e6,
            "max_ms": ordered[-1] / 1e6,
            "top1_rate": sum(hits) / len(hits),
            "by_variation": by_variation,
        },
        "exact_key_lookup": {
            "lookups_per_s": lookups_per_s,
            "p50_us": exact_p50_us,
            "p99_us": _percentile(ordered_lookups, 99) / 1e3,
        },
        "four_item_vs_exact": {
            "p50_latency_ratio": four_item_p50_us / exact_p50_us,
            "throughput_ratio": lookups_per_s / searches_per_s,
        },
    }


def run(quick: bool = False) -> dict:
    """``renkei bench juki-search-index``: the index alone; ``juki-search`` is the same through HTTP."""
    return run_in_process(5_000, 140) if quick else run_in_process()


def main(argv: Sequence[str]) -> None:
    people, queries, seed = (int(value) for value in (list(argv) + ["340000", "2000", "1"][len(argv) :])[:3])
    print(json.dumps(run_in_process(people, queries, seed), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
