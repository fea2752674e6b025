"""The routine schedule as data: its model, the inputs and outputs of an evaluation, and
loading ``data/routine_schedule.json`` with the checks that keep the data consistent.

Every rule carries an id and its legal source; the evaluator (``schedule.py``) names the
rule behind each verdict.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

from services.health_mgmt.legal_dates import Period

# ---------------------------------------------------------------------------------------------
# The schedule, as loaded from data


@dataclass(frozen=True)
class Rule:
    id: str
    summary: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class IntervalSpec:
    """A minimum (and/or standard) interval from an earlier dose of the same plan."""

    rule: str
    from_dose: int | None = None  # target index; None = the previous valid dose
    minimum: Period | None = None
    minimum_physician: Period | None = None  # 医師が必要と認めた場合
    standard: Period | None = None


@dataclass(frozen=True)
class AgeCondition:
    age: Period
    rule: str


@dataclass(frozen=True)
class TargetDose:
    label_ja: str
    min_age: Period | None = None
    min_age_rule: str | None = None
    standard_from: Period | None = None
    standard_rule: str | None = None
    standard_fiscal_year_age: int | None = None
    intervals: tuple[IntervalSpec, ...] = ()
    intervals_after_skip: tuple[IntervalSpec, ...] | None = None
    skip_after_age: AgeCondition | None = None
    skip_if_dose_after_age: tuple[int, AgeCondition] | None = None
    skip_if_interval_at_least: tuple[int, int, Period, str] | None = None
    warn_after_age: AgeCondition | None = None


@dataclass(frozen=True)
class Plan:
    id: str
    rule: str | None
    doses: tuple[TargetDose, ...]
    product_in: frozenset[str] | None = None
    first_dose_age_until: Period | None = None
    products: frozenset[str] | None = None
    forecast_default: bool = False
    age_until: Period | None = None
    age_until_rule: str | None = None


@dataclass(frozen=True)
class IntervalOverride:
    minimum: Period
    rule: str
    when_started_in_first_window: bool


@dataclass(frozen=True)
class SeriesPrerequisite:
    series: str
    min_interval: Period
    rule: str


@dataclass(frozen=True)
class Window:
    """One eligible range of a series (定期接種の対象者); all its conditions must hold."""

    rule: str
    age_from: Period | None = None
    age_until: Period | None = None
    fiscal_year_age_from: int | None = None
    fiscal_year_age_until: int | None = None
    fiscal_year_age_in: tuple[int, ...] | None = None
    year_before_school: bool = False
    born_from: date | None = None
    born_until: date | None = None
    date_from: date | None = None
    date_until: date | None = None
    requires_any_flag: tuple[str, ...] = ()
    requires_dose_between: tuple[date, date] | None = None
    interval_override: IntervalOverride | None = None
    requires_series_complete: SeriesPrerequisite | None = None


@dataclass(frozen=True)
class PerFiscalYear:
    doses: int
    rule: str
    recommended_from: tuple[int, int]
    recommended_rule: str


@dataclass(frozen=True)
class Series:
    id: str
    name_ja: str
    vaccine: str
    windows: tuple[Window, ...]
    plans: tuple[Plan, ...]
    sex: str | None = None
    excluded_by_flags: tuple[tuple[str, str], ...] = ()
    excluded_by_prior_course_rule: str | None = None
    per_fiscal_year: PerFiscalYear | None = None
    product_rule: str | None = None


@dataclass(frozen=True)
class Vaccine:
    code: str
    name_ja: str
    record_type: str | None
    products: Mapping[str, str]
    product_required: bool


@dataclass(frozen=True)
class Alternative:
    rule: str
    options: tuple[tuple[str, ...], ...]
    default: int
    default_before: tuple[date, int] | None


@dataclass(frozen=True)
class LiveSpacing:
    """Different injected live vaccines are kept apart (unless given the same day)."""

    vaccines: frozenset[str]
    products: frozenset[str]
    minimum: Period
    rule: str

    def applies(self, dose: RecordedDose) -> bool:
        return dose.vaccine in self.vaccines or dose.product in self.products


@dataclass(frozen=True)
class Schedule:
    rules: Mapping[str, Rule]
    vaccines: Mapping[str, Vaccine]
    series: tuple[Series, ...]
    alternatives: tuple[Alternative, ...]
    sources: Mapping[str, str]
    live_spacing: LiveSpacing | None = None

    def series_by_id(self, series_id: str) -> Series:
        for series in self.series:
            if series.id == series_id:
                return series
        raise KeyError(series_id)

    def series_for_vaccine(self, vaccine: str) -> tuple[Series, ...]:
        return tuple(s for s in self.series if s.vaccine == vaccine)


# ---------------------------------------------------------------------------------------------
# Inputs and outputs

Sex = Literal["F", "M"]
PERSON_FLAGS = ("heart_kidney_respiratory_disability", "hiv_immune_disability", "hbv_perinatal_prophylaxis")


@dataclass(frozen=True)
class Person:
    """The person whose history is evaluated.

    heart_kidney_respiratory_disability: 心臓・腎臓・呼吸器の機能の障害で身の回りの生活が極度に制限
        される程度 (身体障害者手帳1級相当) — makes 60–64-year-olds B類 targets.
    hiv_immune_disability: ヒト免疫不全ウイルスによる免疫の機能の障害で日常生活がほとんど不可能な程度.
    hbv_perinatal_prophylaxis: vaccinated against B型肝炎 as 母子感染予防 under health insurance.
    prior_courses: vaccines (codes) of which the person declares a completed course that is
        not in the register (予診票「過去に接種したことがあるか」).
    """

    birth_date: date
    sex: Sex
    heart_kidney_respiratory_disability: bool = False
    hiv_immune_disability: bool = False
    hbv_perinatal_prophylaxis: bool = False
    prior_courses: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RecordedDose:
    """One dose in the register: the vaccine (record type code), the date, the product."""

    vaccine: str
    date: date
    product: str | None = None
    physician_judgement: bool = False  # 医師が必要と認めた場合 (shorter minimum interval)
    dose_id: str | None = None


ReasonCode = Literal[
    "too_early",
    "below_minimum_age",
    "interval_too_short",
    "outside_eligible_age",
    "not_eligible",
    "before_programme_start",
    "too_many_doses",
    "wrong_product",
    "product_required",
    "unknown_vaccine",
    "previous_phase_incomplete",
    "date_error",
    "first_dose_after_standard_age",
]
VOLUNTARY_REASONS = frozenset({"too_early", "outside_eligible_age", "not_eligible", "before_programme_start"})


@dataclass(frozen=True)
class Reason:
    code: ReasonCode
    rule: str
    message: str


@dataclass(frozen=True)
class DoseEvaluation:
    dose: RecordedDose
    series: str | None
    valid: bool
    target: str | None = None  # the dose of the plan it counts for, e.g. 初回2回目
    plan: str | None = None
    reasons: tuple[Reason, ...] = ()
    warnings: tuple[Reason, ...] = ()

    @property
    def voluntary(self) -> bool:
        """Given outside the routine range: a 任意接種, not a 定期接種."""
        return not self.valid and any(r.code in VOLUNTARY_REASONS for r in self.reasons)

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(r.rule for r in self.reasons + self.warnings)


ForecastStatus = Literal["due", "upcoming", "complete", "aged_out", "not_eligible", "not_applicable"]


@dataclass(frozen=True)
class Forecast:
    series: str
    name_ja: str
    status: ForecastStatus
    valid_doses: int
    plan: str | None = None
    next_dose: str | None = None
    earliest: date | None = None
    recommended: date | None = None
    latest: date | None = None
    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class Evaluation:
    as_of: date
    doses: tuple[DoseEvaluation, ...]
    forecasts: tuple[Forecast, ...]

    def forecast(self, series: str) -> Forecast:
        for item in self.forecasts:
            if item.series == series:
                return item
        raise KeyError(series)

    def for_series(self, series: str) -> tuple[DoseEvaluation, ...]:
        return tuple(d for d in self.doses if d.series == series)


# ---------------------------------------------------------------------------------------------
# Loading


def _period(value: str | None) -> Period | None:
    return Period.parse(value) if value is not None else None


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value is not None else None


def _month_day(value: str) -> tuple[int, int]:
    month, day = value.split("-")
    return int(month), int(day)


def _intervals(specs: Sequence[Mapping[str, Any]]) -> tuple[IntervalSpec, ...]:
    return tuple(
        IntervalSpec(
            rule=s["rule"],
            from_dose=s.get("from_dose"),
            minimum=_period(s.get("min")),
            minimum_physician=_period(s.get("min_physician")),
            standard=_period(s.get("standard")),
        )
        for s in specs
    )


def _target(spec: Mapping[str, Any]) -> TargetDose:
    standard = spec.get("standard_age", {})
    skip_dose = spec.get("skip_if_dose_after_age")
    skip_interval = spec.get("skip_if_interval_at_least")
    fy_age = spec.get("standard_fiscal_year_age")

    def condition(key: str) -> AgeCondition | None:
        value = spec.get(key)
        return AgeCondition(Period.parse(value["age"]), value["rule"]) if value else None

    return TargetDose(
        label_ja=spec["label_ja"],
        min_age=_period(spec.get("min_age")),
        min_age_rule=spec.get("min_age_rule"),
        standard_from=_period(standard.get("from")),
        standard_rule=standard.get("rule") or (fy_age or {}).get("rule"),
        standard_fiscal_year_age=fy_age["age"] if fy_age else None,
        intervals=_intervals(spec.get("intervals", ())),
        intervals_after_skip=_intervals(spec["intervals_after_skip"]) if "intervals_after_skip" in spec else None,
        skip_after_age=condition("skip_after_age"),
        skip_if_dose_after_age=(
            (skip_dose["dose"], AgeCondition(Period.parse(skip_dose["age"]), skip_dose["rule"])) if skip_dose else None
        ),
        skip_if_interval_at_least=(
            (*skip_interval["between"], Period.parse(skip_interval["interval"]), skip_interval["rule"]) if skip_interval else None
        ),
        warn_after_age=condition("warn_after_age"),
    )


def _window(spec: Mapping[str, Any]) -> Window:
    override = spec.get("interval_override")
    prerequisite = spec.get("requires_series_complete")
    between = spec.get("requires_dose_between")
    return Window(
        rule=spec["rule"],
        age_from=_period(spec.get("age_from")),
        age_until=_period(spec.get("age_until")),
        fiscal_year_age_from=spec.get("fiscal_year_age_from"),
        fiscal_year_age_until=spec.get("fiscal_year_age_until"),
        fiscal_year_age_in=tuple(spec["fiscal_year_age_in"]) if "fiscal_year_age_in" in spec else None,
        year_before_school=bool(spec.get("year_before_school", False)),
        born_from=_day(spec.get("born_from")),
        born_until=_day(spec.get("born_until")),
        date_from=_day(spec.get("date_from")),
        date_until=_day(spec.get("date_until")),
        requires_any_flag=tuple(spec.get("requires_any_flag", ())),
        requires_dose_between=(_day(between["from"]), _day(between["until"])) if between else None,
        interval_override=(
            IntervalOverride(
                Period.parse(override["min"]), override["rule"], bool(override.get("when_started_in_first_window"))
            )
            if override
            else None
        ),
        requires_series_complete=(
            SeriesPrerequisite(prerequisite["series"], Period.parse(prerequisite["min_interval"]), prerequisite["rule"])
            if prerequisite
            else None
        ),
    )


def _plan(spec: Mapping[str, Any]) -> Plan:
    when = spec.get("when", {})
    return Plan(
        id=spec["id"],
        rule=spec.get("rule"),
        doses=tuple(_target(d) for d in spec["doses"]),
        product_in=frozenset(when["product_in"]) if "product_in" in when else None,
        first_dose_age_until=_period(when.get("first_dose_age_until")),
        products=frozenset(spec["products"]) if "products" in spec else None,
        forecast_default=bool(spec.get("forecast_default", False)),
        age_until=_period(spec.get("age_until")),
        age_until_rule=spec.get("age_until_rule"),
    )


def _series(spec: Mapping[str, Any]) -> Series:
    yearly = spec.get("per_fiscal_year")
    prior = spec.get("excluded_by_prior_course")
    return Series(
        id=spec["id"],
        name_ja=spec["name_ja"],
        vaccine=spec["vaccine"],
        windows=tuple(_window(w) for w in spec["windows"]),
        plans=tuple(_plan(p) for p in spec["plans"]),
        sex=spec.get("sex"),
        excluded_by_flags=tuple((e["flag"], e["rule"]) for e in spec.get("excluded_by_flags", ())),
        excluded_by_prior_course_rule=prior["rule"] if prior else None,
        per_fiscal_year=(
            PerFiscalYear(
                doses=yearly["doses"],
                rule=yearly["rule"],
                recommended_from=_month_day(yearly["recommended_from"]),
                recommended_rule=yearly["recommended_rule"],
            )
            if yearly
            else None
        ),
        product_rule=spec.get("product_rule"),
    )


_RULE_HOLDERS = (IntervalSpec, AgeCondition, TargetDose, Plan, Window, IntervalOverride, SeriesPrerequisite, PerFiscalYear)


def referenced_rules(schedule: Schedule) -> set[str]:
    """Every rule id the series refer to (for consistency checks of the data)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            return
        if isinstance(value, _RULE_HOLDERS):
            for f in fields(value):
                item = getattr(value, f.name)
                if f.name.endswith("rule") and isinstance(item, str):
                    found.add(item)
                else:
                    walk(item)
        elif isinstance(value, (tuple, list)):
            for item in value:
                walk(item)

    for series in schedule.series:
        walk(series.windows)
        walk(series.plans)
        walk(series.per_fiscal_year)
        found.update(rule for _, rule in series.excluded_by_flags)
        for rule in (series.excluded_by_prior_course_rule, series.product_rule):
            if rule:
                found.add(rule)
    found.update(a.rule for a in schedule.alternatives)
    if schedule.live_spacing:
        found.add(schedule.live_spacing.rule)
    return found


def schedule_from_dict(data: Mapping[str, Any]) -> Schedule:
    """Build the schedule from the structure of ``data/routine_schedule.json`` and check it."""
    sources = {key: value["title"] for key, value in data["sources"].items()}
    rules: dict[str, Rule] = {}
    for spec in data["rules"]:
        if spec["id"] in rules:
            raise ValueError(f"rule {spec['id']} defined twice")
        if not spec["sources"]:
            raise ValueError(f"rule {spec['id']} cites no source")
        refs = []
        for source in spec["sources"]:
            if source["ref"] not in sources:
                raise ValueError(f"rule {spec['id']}: unknown source {source['ref']!r}")
            refs.append(sources[source["ref"]] + (f" {source['part']}" if "part" in source else ""))
        rules[spec["id"]] = Rule(spec["id"], spec["summary"], tuple(refs))
    vaccines = {
        code: Vaccine(
            code, v["name_ja"], v.get("record_type"), dict(v.get("products", {})), bool(v.get("product_required", False))
        )
        for code, v in data["vaccines"].items()
    }
    series = tuple(_series(s) for s in data["series"])
    alternatives = tuple(
        Alternative(
            rule=a["rule"],
            options=tuple(tuple(option) for option in a["options"]),
            default=a["default"],
            default_before=(
                (date.fromisoformat(a["default_before"]["date"]), a["default_before"]["option"]) if "default_before" in a else None
            ),
        )
        for a in data.get("alternatives", ())
    )
    spacing = data.get("live_injected_spacing")
    live_spacing = (
        LiveSpacing(frozenset(spacing["vaccines"]), frozenset(spacing["products"]), Period.parse(spacing["min"]), spacing["rule"])
        if spacing
        else None
    )
    schedule = Schedule(rules, vaccines, series, alternatives, sources, live_spacing)
    _check(schedule)
    return schedule


def _check(schedule: Schedule) -> None:
    ids = [s.id for s in schedule.series]
    if len(set(ids)) != len(ids):
        raise ValueError("a series id is used twice")
    missing = referenced_rules(schedule) - set(schedule.rules)
    if missing:
        raise ValueError(f"rules referenced but not defined: {sorted(missing)}")
    for series in schedule.series:
        vaccine = schedule.vaccines.get(series.vaccine)
        if vaccine is None:
            raise ValueError(f"series {series.id}: unknown vaccine {series.vaccine!r}")
        if not series.windows or not series.plans:
            raise ValueError(f"series {series.id}: needs windows and plans")
        for window in series.windows:
            unknown = set(window.requires_any_flag) - set(PERSON_FLAGS)
            if unknown:
                raise ValueError(f"series {series.id}: unknown person flags {sorted(unknown)}")
            if window.requires_series_complete and window.requires_series_complete.series not in ids:
                raise ValueError(f"series {series.id}: unknown prerequisite series")
        for flag, _ in series.excluded_by_flags:
            if flag not in PERSON_FLAGS:
                raise ValueError(f"series {series.id}: unknown person flag {flag!r}")
        for plan in series.plans:
            for product in (plan.products or frozenset()) | (plan.product_in or frozenset()):
                if product not in vaccine.products:
                    raise ValueError(f"plan {plan.id}: unknown product {product!r}")
            for index, target in enumerate(plan.doses):
                for spec in target.intervals + (target.intervals_after_skip or ()):
                    if spec.from_dose is not None and not 0 <= spec.from_dose < index:
                        raise ValueError(f"plan {plan.id}: dose {index} refers to dose {spec.from_dose}")
    for alternative in schedule.alternatives:
        for option in alternative.options:
            for series_id in option:
                if series_id not in ids:
                    raise ValueError(f"alternative {alternative.rule}: unknown series {series_id}")


@lru_cache(maxsize=1)
def load_schedule() -> Schedule:
    """The schedule shipped with the package (read once)."""
    data = resources.files("services.health_mgmt").joinpath("data").joinpath("routine_schedule.json")
    text = data.read_text(encoding="utf-8")
    return schedule_from_dict(json.loads(text))
