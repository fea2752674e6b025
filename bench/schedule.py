"""Benchmark of the routine-schedule evaluator (``services.health_mgmt.schedule``).

A synthetic city: people of every age with dose histories drawn around the standard
schedule (some late, some missed, a few given too early, products where the series needs
one). Figures: full evaluations (every dose judged, every series forecast) per second, beside
two baselines measured in the same run on the same histories:

* ``iterate``: only reading each history (sort by date, group by vaccine), no judgement;
* ``one_series``: evaluating the same people against a schedule cut down to one series (BCG),
  which costs the fixed per-person work of an evaluation without the per-series work.

Machines differ; compare the ratios, not the absolute figures.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta

from services.health_mgmt.schedule import (
    Person,
    RecordedDose,
    Schedule,
    evaluate,
    load_schedule,
)

AS_OF = date(2025, 6, 1)

# Nominal age (days) of each dose of a child's routine history, products to draw from, and
# the first birth date for which the vaccine is routine (older cohorts never had it).
CHILD_TEMPLATE: dict[str, tuple[tuple[int, ...], tuple[str, ...], date]] = {
    "dpt_ipv_hib": ((61, 89, 117, 330), (), date(2024, 2, 1)),
    "pcv_pediatric": ((61, 89, 117, 366), ("pcv15", "pcv20"), date(2013, 2, 1)),
    "hepatitis_b": ((61, 89, 215), ("bimmugen", "heptavax_ii"), date(2016, 4, 1)),
    "rotavirus": ((61, 89), ("rota1", "rota5"), date(2020, 8, 1)),
    "bcg": ((160,), (), date(1900, 1, 1)),
    "mr": ((366, 2200), (), date(2006, 4, 2)),
    "varicella": ((366, 550), (), date(2012, 10, 1)),
    "japanese_encephalitis": ((1100, 1120, 1480, 3300), (), date(2009, 10, 2)),
    "dt": ((4100,), (), date(1900, 1, 1)),
}
OLDER_CHILD_TEMPLATE = {  # born before 2024-02: 四種混合 and Hib instead of 五種混合
    **{k: v for k, v in CHILD_TEMPLATE.items() if k != "dpt_ipv_hib"},
    "dpt_ipv": ((61, 89, 117, 480), (), date(2012, 8, 1)),
    "hib": ((61, 89, 117, 330), (), date(2013, 2, 1)),
}


def _child_history(rng: random.Random, born: date, sex: str) -> list[RecordedDose]:
    template = CHILD_TEMPLATE if born >= date(2024, 2, 1) else OLDER_CHILD_TEMPLATE
    history: list[RecordedDose] = []
    for vaccine, (ages, products, cohort_start) in template.items():
        if born < cohort_start:
            continue
        product = rng.choice(products) if products else None
        previous: date | None = None
        for index, age in enumerate(ages):
            if rng.random() < 0.07:  # missed, and the rest of the series with it
                break
            day = born + timedelta(days=age)
            if previous is not None:  # delays carry over to the doses that follow
                day = max(day, previous + timedelta(days=age - ages[index - 1]))
            day += timedelta(days=rng.randint(0, 30))
            if rng.random() < 0.03:  # a mistake: given well before its time
                day -= timedelta(days=rng.randint(5, 40))
            if day > AS_OF:
                break
            history.append(RecordedDose(vaccine, day, product))
            previous = day
    if sex == "F" and born >= date(2009, 4, 2) and rng.random() < 0.5:
        start = born + timedelta(days=365 * 13 + rng.randint(0, 400))
        for months in (0, 2, 6):
            day = start + timedelta(days=30 * months + rng.randint(0, 20))
            if day <= AS_OF:
                history.append(RecordedDose("hpv", day, "hpv9"))
    return history


def _older_history(rng: random.Random, born: date) -> list[RecordedDose]:
    history: list[RecordedDose] = []
    for year in range(max(born.year + 65, 2015), AS_OF.year + 1):
        if rng.random() < 0.55:
            day = date(year, 10, 1) + timedelta(days=rng.randint(0, 80))
            if day <= AS_OF:
                history.append(RecordedDose("influenza_elderly", day))
    if rng.random() < 0.4:
        day = born + timedelta(days=365 * 65 + rng.randint(0, 300))
        if day <= AS_OF:
            history.append(RecordedDose("pneumococcal_elderly", day))
    if born.year <= 1961 and rng.random() < 0.3:
        day = date(2025, 4, 1) + timedelta(days=rng.randint(0, 50))
        history.append(RecordedDose("herpes_zoster", day, "zoster_recombinant"))
    return history


def population(size: int, seed: int = 20240321) -> list[tuple[Person, list[RecordedDose]]]:
    """``size`` people, two in five children (as the register's traffic is mostly children)."""
    rng = random.Random(seed)
    people = []
    for _ in range(size):
        child = rng.random() < 0.4
        age_days = rng.randint(30, 365 * 18) if child else rng.randint(365 * 18, 365 * 95)
        born = AS_OF - timedelta(days=age_days)
        sex = rng.choice(("F", "M"))
        person = Person(born, sex, heart_kidney_respiratory_disability=rng.random() < 0.01)
        history = _child_history(rng, born, sex) if child else _older_history(rng, born)
        rng.shuffle(history)  # registers are not kept in date order
        people.append((person, history))
    return people


def _iterate(person: Person, history: Sequence[RecordedDose]) -> int:
    groups: dict[str, list[RecordedDose]] = {}
    for dose in sorted(history, key=lambda d: d.date):
        if person.birth_date <= dose.date <= AS_OF:
            groups.setdefault(dose.vaccine, []).append(dose)
    return len(groups)


def _rate(work: Callable[[], object], items: int, min_seconds: float) -> tuple[float, float]:
    """Items per second (best of several rounds) and the total time spent."""
    best, spent, rounds = float("inf"), 0.0, 0
    while spent < min_seconds or rounds < 3:
        started = time.perf_counter()
        work()
        elapsed = time.perf_counter() - started
        best, spent, rounds = min(best, elapsed), spent + elapsed, rounds + 1
    return items / best, spent


def run(quick: bool = False) -> dict:
    schedule = load_schedule()
    size = 300 if quick else 5000
    min_seconds = 0.05 if quick else 1.0
    people = population(size)
    doses = sum(len(history) for _, history in people)
    one_series = Schedule(
        schedule.rules, schedule.vaccines, tuple(s for s in schedule.series if s.id == "bcg"), (), schedule.sources, None
    )
    full_rate, full_time = _rate(lambda: [evaluate(p, h, AS_OF, schedule) for p, h in people], len(people), min_seconds)
    iterate_rate, _ = _rate(lambda: [_iterate(p, h) for p, h in people], len(people), min_seconds)
    one_rate, _ = _rate(lambda: [evaluate(p, h, AS_OF, one_series) for p, h in people], len(people), min_seconds)
    judged = [e for p, h in people for e in evaluate(p, h, AS_OF, schedule).doses]
    return {
        "benchmark": "schedule",
        "quick": quick,
        "people": len(people),
        "doses": doses,
        "series": len(schedule.series),
        "evaluations_per_second": round(full_rate, 1),
        "doses_per_second": round(full_rate * doses / len(people), 1),
        "seconds_evaluating": round(full_time, 3),
        "baseline_iterate_per_second": round(iterate_rate, 1),
        "baseline_one_series_per_second": round(one_rate, 1),
        "ratio_iterate_to_evaluate": round(iterate_rate / full_rate, 2),
        "ratio_one_series_to_evaluate": round(one_rate / full_rate, 2),
        "valid_dose_share": round(sum(e.valid for e in judged) / len(judged), 3),
    }


if __name__ == "__main__":
    json.dump(run(quick="--quick" in sys.argv[1:]), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
