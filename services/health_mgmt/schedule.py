"""Routine vaccination schedule (定期接種): evaluation of recorded doses and forecast.

The schedule itself is data (``data/routine_schedule.json``): each series has its eligible
range (定期接種対象年齢 and the conditions of 予防接種法施行令), its plans (the dose sequences,
chosen by the age at the first dose or by the vaccine product) and, for every dose, the
minimum age, the minimum intervals and the standard (標準的な) ages and intervals. Every rule
carries an id and its legal source; every verdict here names the rule it applied.

The logic follows the idea of CDC's CDSi: read the history in date order, match each dose to
the next target dose of its series, say whether it counts and why not, then forecast what
is due next. Everything is a pure function of (person, doses, as_of).

Dates follow Japanese law: an age is attained on the day before the birthday (年齢計算ニ関スル
法律, 民法第143条), and an upper age bound includes the day it is attained (厚生労働省事務連絡
平成26年3月11日). See docs/schedule.md.
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

# ---------------------------------------------------------------------------------------------
# Japanese legal date arithmetic


@dataclass(frozen=True)
class Period:
    """An age or interval as the law writes it: years, months, weeks, days, and 月半."""

    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0
    half_month: bool = False

    _FORM = re.compile(r"^(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)w)?(?:(\d+)d)?(\+half)?$")

    @classmethod
    def parse(cls, text: str) -> Period:
        match = cls._FORM.match(text)
        if not text or match is None:
            raise ValueError(f"not a period: {text!r}")
        y, m, w, d, half = match.groups()
        return cls(int(y or 0), int(m or 0), int(w or 0), int(d or 0), half is not None)

    @property
    def calendar_months(self) -> int:
        return self.years * 12 + self.months

    def __str__(self) -> str:
        units = ((self.years, "y"), (self.months, "m"), (self.weeks, "w"), (self.days, "d"))
        parts = [f"{n}{unit}" for n, unit in units if n]
        return "".join(parts) + ("+half" if self.half_month else "") or "0d"


def _shift_months(day: date, months: int) -> tuple[int, int, bool]:
    """Year and month ``months`` after ``day``'s month, and whether ``day.day`` exists there."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return year, month + 1, day.day <= calendar.monthrange(year, month + 1)[1]


def attained_on(birth: date, age: Period) -> date:
    """The day an age is attained (…に達する日 / …に至った日).

    Years and months: the day before the corresponding day, or the month's last day when
    that day does not exist (born 31 July → 生後2月 on 30 September; born 29 February → an
    age in years on 28 February). Weeks and days count from birth as 出生0週0日 (rotavirus).
    """
    if age.half_month:
        raise ValueError("月半 is an interval, not an age")
    if age.calendar_months:
        year, month, exists = _shift_months(birth, age.calendar_months)
        if exists:
            reached = date(year, month, birth.day) - timedelta(days=1)
        else:
            reached = date(year, month, calendar.monthrange(year, month)[1])
        return reached + timedelta(days=7 * age.weeks + age.days)
    return birth + timedelta(days=7 * age.weeks + age.days)


def earliest_after(previous: date, interval: Period) -> date:
    """The first day a dose may follow ``previous`` at the given minimum interval.

    N日以上の間隔 → day N+1 after; N月以上 → the same day N months later, or the 1st of the next
    month when that day does not exist; 月半 adds 14/15/15/16 days by the length of the month
    reached after the whole months.
    """
    day = previous
    if interval.calendar_months:
        year, month, exists = _shift_months(previous, interval.calendar_months)
        if exists:
            day = date(year, month, previous.day)
        else:
            day = date(year, month, calendar.monthrange(year, month)[1]) + timedelta(days=1)
    if interval.half_month:
        day = day + timedelta(days={28: 14, 29: 15, 30: 15, 31: 16}[calendar.monthrange(day.year, day.month)[1]])
    total_days = 7 * interval.weeks + interval.days
    if total_days:
        day = day + timedelta(days=total_days + 1)
    return day


def fiscal_year(day: date) -> int:
    """The fiscal year (年度, April–March) containing ``day``, named by its starting year."""
    return day.year if day.month >= 4 else day.year - 1


def fiscal_year_start(year: int) -> date:
    return date(year, 4, 1)


def fiscal_year_end(year: int) -> date:
    return date(year + 1, 3, 31)


def fiscal_year_of_age(birth: date, years: int) -> int:
    """The fiscal year in which a person attains ``years`` (…歳となる日の属する年度)."""
    return fiscal_year(attained_on(birth, Period(years=years)))


def school_start(birth: date) -> date:
    """The start of primary school: the first 1 April after the day following the 6th year
    is attained (学校教育法 第17条第1項). Born 1 April → starts a year before those born 2 April."""
    day_after = attained_on(birth, Period(years=6)) + timedelta(days=1)
    start = date(day_after.year, 4, 1)
    return start if start >= day_after else date(day_after.year + 1, 4, 1)


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
# Evaluation

_FAR_FUTURE = date(9999, 12, 31)


def _merge(spans: Iterable[tuple[date, date]]) -> list[tuple[date, date]]:
    merged: list[tuple[date, date]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + timedelta(days=1):
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class _SeriesRun:
    """The state of one series while a person's history is read in date order."""

    def __init__(self, series: Series, person: Person, vaccine: Vaccine, history: Sequence[RecordedDose]) -> None:
        self.series = series
        self.person = person
        self.vaccine = vaccine
        self.history = history  # every recorded dose of this vaccine, in date order
        self.plan: Plan | None = None
        self.valid: list[tuple[int, RecordedDose]] = []
        self.skipped: set[int] = set()
        self.started_window: int | None = None
        self.voluntary: list[RecordedDose] = []
        self.per_year: dict[int, int] = {}
        self.spans = [self._spans(w) for w in series.windows]

    # -- eligibility

    def _person_fits(self, window: Window) -> bool:
        born = self.person.birth_date
        if (window.born_from and born < window.born_from) or (window.born_until and born > window.born_until):
            return False
        if window.requires_any_flag and not any(getattr(self.person, f) for f in window.requires_any_flag):
            return False
        if window.requires_dose_between:
            start, end = window.requires_dose_between
            if not any(start <= d.date <= end for d in self.history):
                return False
        return True

    def _spans(self, window: Window) -> list[tuple[date, date]]:
        if not self._person_fits(window):
            return []
        born = self.person.birth_date
        lower, upper = born, _FAR_FUTURE
        if window.age_from:
            lower = max(lower, attained_on(born, window.age_from))
        if window.age_until:
            upper = min(upper, attained_on(born, window.age_until))
        if window.fiscal_year_age_from is not None:
            lower = max(lower, fiscal_year_start(fiscal_year_of_age(born, window.fiscal_year_age_from)))
        if window.fiscal_year_age_until is not None:
            upper = min(upper, fiscal_year_end(fiscal_year_of_age(born, window.fiscal_year_age_until)))
        if window.year_before_school:
            start = school_start(born)
            lower, upper = max(lower, date(start.year - 1, 4, 1)), min(upper, start - timedelta(days=1))
        if window.date_from:
            lower = max(lower, window.date_from)
        if window.date_until:
            upper = min(upper, window.date_until)
        spans = [(lower, upper)]
        if window.fiscal_year_age_in is not None:
            spans = []
            for age in window.fiscal_year_age_in:
                year = fiscal_year_of_age(born, age)
                start, end = max(lower, fiscal_year_start(year)), min(upper, fiscal_year_end(year))
                spans.append((start, end))
        return [(s, e) for s, e in spans if s <= e]

    def eligible_spans(self) -> list[tuple[date, date]]:
        return _merge(span for spans in self.spans for span in spans)

    def _window_at(self, day: date) -> int | None:
        for index, spans in enumerate(self.spans):
            if any(start <= day <= end for start, end in spans):
                return index
        return None

    def _why_not(self, day: date) -> Reason:
        fitting = [(i, w) for i, w in enumerate(self.series.windows) if self.spans[i]]
        first = self.series.windows[0]
        if not fitting:
            person_fits = [w for w in self.series.windows if self._person_fits(w)]
            if person_fits and all(w.date_from and day < w.date_from for w in person_fits):
                w = person_fits[0]
                return Reason("before_programme_start", w.rule, f"not routine before {w.date_from}")
            rule = person_fits[0].rule if person_fits else first.rule
            return Reason("not_eligible", rule, "the person is not in the routine target group of this series")
        starts = [(min(s for s, _ in self.spans[i]), i, w) for i, w in fitting]
        earliest, _, window = min(starts, key=lambda t: t[0])
        if day < earliest:
            if window.date_from and day < window.date_from:
                return Reason("before_programme_start", window.rule, f"not routine before {window.date_from}")
            return Reason("too_early", window.rule, f"routine range starts on {earliest}: a voluntary vaccination")
        ends = [(max(e for _, e in self.spans[i]), w) for i, w in fitting]
        last_end, window = max(ends, key=lambda t: t[0])
        if day > last_end:
            return Reason("outside_eligible_age", window.rule, f"routine range ended on {last_end}: a voluntary vaccination")
        return Reason("outside_eligible_age", window.rule, "outside the routine range on this date: a voluntary vaccination")

    def _exclusion(self, day: date) -> Reason | None:
        if self.series.sex and self.person.sex != self.series.sex:
            return Reason("not_eligible", self.series.windows[0].rule, f"routine only for sex {self.series.sex}")
        for flag, rule in self.series.excluded_by_flags:
            if getattr(self.person, flag):
                return Reason("not_eligible", rule, f"excluded: {flag}")
        rule = self.series.excluded_by_prior_course_rule
        if rule:
            if self.vaccine.code in self.person.prior_courses:
                return Reason("not_eligible", rule, "a completed course was declared before")
            earlier = [d for d in self.voluntary if d.date < day]
            if earlier and self._is_complete_course(earlier):
                return Reason("not_eligible", rule, "a completed course was given before (voluntary)")
        return None

    def _is_complete_course(self, doses: Sequence[RecordedDose]) -> bool:
        by_product: dict[str | None, int] = {}
        for dose in doses:
            by_product[dose.product] = by_product.get(dose.product, 0) + 1
        for product, count in by_product.items():
            plans = [p for p in self.series.plans if p.product_in is None or product in p.product_in]
            if plans and count >= min(len(p.doses) for p in plans):
                return True
        return False

    # -- plans and targets

    def _choose_plan(self, day: date, product: str | None, forecasting: bool = False) -> Plan | None:
        for plan in self.series.plans:
            if plan.product_in is not None:
                if product is None:
                    if not (forecasting and plan.forecast_default):
                        continue
                elif product not in plan.product_in:
                    continue
            if plan.first_dose_age_until and day > attained_on(self.person.birth_date, plan.first_dose_age_until):
                continue
            return plan
        return None

    def _dose_for(self, target: int) -> RecordedDose | None:
        for index, dose in self.valid:
            if index == target:
                return dose
        return None

    def _skipped_regardless_of_date(self, plan: Plan, index: int) -> Reason | None:
        target = plan.doses[index]
        if target.skip_if_dose_after_age:
            ref, cond = target.skip_if_dose_after_age
            dose = self._dose_for(ref)
            if dose and dose.date > attained_on(self.person.birth_date, cond.age):
                return Reason("too_many_doses", cond.rule, f"{target.label_ja} is not given")
        if target.skip_if_interval_at_least:
            first, second, interval, rule = target.skip_if_interval_at_least
            a, b = self._dose_for(first), self._dose_for(second)
            if a and b and b.date >= earliest_after(a.date, interval):
                return Reason("too_many_doses", rule, f"{target.label_ja} is not needed")
        return None

    def _next_target(self, plan: Plan, day: date) -> tuple[int, list[int]]:
        """The target a dose on ``day`` would count for, and the targets skipped on the way."""
        index = self.valid[-1][0] + 1 if self.valid else 0
        skipped: list[int] = []
        while index < len(plan.doses):
            target = plan.doses[index]
            late = target.skip_after_age and day > attained_on(self.person.birth_date, target.skip_after_age.age)
            if late or self._skipped_regardless_of_date(plan, index):
                skipped.append(index)
                index += 1
                continue
            break
        return index, skipped

    def complete(self) -> bool:
        if self.plan is None:
            return False
        index = self.valid[-1][0] + 1 if self.valid else 0
        while index < len(self.plan.doses) and self._skipped_regardless_of_date(self.plan, index):
            index += 1
        return index >= len(self.plan.doses)

    def _intervals(self, plan: Plan, index: int, skipped: Iterable[int], window: int | None) -> tuple[IntervalSpec, ...]:
        target = plan.doses[index]
        if window is not None and window > 0 and self.valid:
            override = self.series.windows[window].interval_override
            if override and (not override.when_started_in_first_window or self.started_window == 0):
                return (IntervalSpec(rule=override.rule, minimum=override.minimum, standard=override.minimum),)
        any_skipped = bool(self.skipped) or any(True for _ in skipped)
        if any_skipped and target.intervals_after_skip is not None:
            return target.intervals_after_skip
        return target.intervals

    def _reference(self, spec: IntervalSpec) -> RecordedDose | None:
        if spec.from_dose is None:
            return self.valid[-1][1] if self.valid else None
        return self._dose_for(spec.from_dose)

    # -- reading one dose

    def accept(self, dose: RecordedDose, runs: Mapping[str, _SeriesRun], live: _LiveDoses) -> DoseEvaluation:
        """Judge one dose (doses arrive in date order) and, if it counts, record it."""
        series = self.series

        def refuse(reason: Reason, plan: Plan | None = None, target: str | None = None) -> DoseEvaluation:
            if reason.code in VOLUNTARY_REASONS:
                self.voluntary.append(dose)  # remembered: a completed voluntary course can exclude later doses
            return DoseEvaluation(dose, series.id, False, target, plan.id if plan else None, (reason,))

        excluded = self._exclusion(dose.date)
        if excluded:
            return refuse(excluded)
        product_rule = series.product_rule or series.windows[0].rule
        if dose.product is None and self.vaccine.product_required:
            return refuse(Reason("product_required", product_rule, "the vaccine product must be recorded for this series"))
        if dose.product is not None and dose.product not in self.vaccine.products:
            return refuse(Reason("wrong_product", product_rule, f"{dose.product!r} is not a product of {self.vaccine.code}"))
        window = self._window_at(dose.date)
        if window is None:
            return refuse(self._why_not(dose.date))
        if series.per_fiscal_year:
            return self._accept_yearly(dose, window)

        plan = self.plan or self._choose_plan(dose.date, dose.product)
        if plan is None:
            return refuse(Reason("outside_eligible_age", series.windows[window].rule, "no plan applies at this age"))
        if plan.products is not None and dose.product not in plan.products:
            begun = sorted(plan.product_in or ())
            return refuse(Reason("wrong_product", product_rule, f"begun with {begun}, cannot continue with {dose.product}"), plan)
        born = self.person.birth_date
        if plan.age_until and dose.date > attained_on(born, plan.age_until):
            limit = attained_on(born, plan.age_until)
            rule = plan.age_until_rule or series.windows[window].rule
            return refuse(Reason("outside_eligible_age", rule, f"this vaccine is routine only until {limit}"), plan)
        if self.plan is not None and self.complete():
            return refuse(Reason("too_many_doses", plan.rule or "schedule.too_many_doses", "the series is already complete"), plan)

        index, skipped = self._next_target(plan, dose.date)
        if index >= len(plan.doses):
            return refuse(Reason("too_many_doses", "schedule.too_many_doses", "no dose of the series remains"), plan)
        target = plan.doses[index]
        problem = self._check_target(dose, plan, index, skipped, window, runs) or live.conflict(dose)
        if problem:
            return refuse(problem, plan, target.label_ja)

        warnings: tuple[Reason, ...] = ()
        if target.warn_after_age and dose.date > attained_on(born, target.warn_after_age.age):
            limit = attained_on(born, target.warn_after_age.age)
            warnings = (Reason("first_dose_after_standard_age", target.warn_after_age.rule, f"given after {limit}: not recommended"),)
        self.plan = plan
        self.skipped.update(skipped)
        self.valid.append((index, dose))
        live.record(dose)
        if self.started_window is None:
            self.started_window = window
        return DoseEvaluation(dose, series.id, True, target.label_ja, plan.id, (), warnings)

    def _check_target(
        self, dose: RecordedDose, plan: Plan, index: int, skipped: Sequence[int], window: int, runs: Mapping[str, _SeriesRun]
    ) -> Reason | None:
        """Minimum age, minimum intervals and (特例) the earlier phase: the first one broken."""
        target = plan.doses[index]
        if target.min_age and dose.date < attained_on(self.person.birth_date, target.min_age):
            earliest = attained_on(self.person.birth_date, target.min_age)
            rule = target.min_age_rule or self.series.windows[window].rule
            return Reason("below_minimum_age", rule, f"{target.label_ja} not before {earliest}")
        for spec in self._intervals(plan, index, skipped, window):
            reference = self._reference(spec)
            minimum = spec.minimum_physician if dose.physician_judgement and spec.minimum_physician else spec.minimum
            if reference is None or minimum is None:
                continue
            earliest = earliest_after(reference.date, minimum)
            if dose.date < earliest:
                return Reason("interval_too_short", spec.rule, f"{target.label_ja} not before {earliest} ({minimum} after {reference.date})")
        prerequisite = self.series.windows[window].requires_series_complete
        if prerequisite and window > 0 and self._window_at_first(dose.date) is None:
            other = runs[prerequisite.series]
            if not other.complete() or not other.valid:
                return Reason("previous_phase_incomplete", prerequisite.rule, f"{prerequisite.series} is not complete")
            earliest = earliest_after(other.valid[-1][1].date, prerequisite.min_interval)
            if dose.date < earliest:
                return Reason("interval_too_short", prerequisite.rule, f"not before {earliest}")
        return None

    def _window_at_first(self, day: date) -> int | None:
        return 0 if any(s <= day <= e for s, e in self.spans[0]) else None

    def _accept_yearly(self, dose: RecordedDose, window: int) -> DoseEvaluation:
        yearly = self.series.per_fiscal_year
        assert yearly is not None
        year = fiscal_year(dose.date)
        plan = self.series.plans[0]
        if self.per_year.get(year, 0) >= yearly.doses:
            reason = Reason("too_many_doses", yearly.rule, f"already vaccinated in fiscal year {year}")
            return DoseEvaluation(dose, self.series.id, False, None, plan.id, (reason,))
        self.per_year[year] = self.per_year.get(year, 0) + 1
        self.valid.append((0, dose))
        if self.started_window is None:
            self.started_window = window
        return DoseEvaluation(dose, self.series.id, True, plan.doses[0].label_ja, plan.id)

    # -- forecast

    def forecast(self, as_of: date, runs: Mapping[str, _SeriesRun]) -> Forecast:
        series = self.series
        base = {"series": series.id, "name_ja": series.name_ja, "valid_doses": len(self.valid)}
        excluded = self._exclusion(as_of + timedelta(days=1))
        spans = self.eligible_spans()
        if excluded or not spans:
            rule = excluded.rule if excluded else series.windows[0].rule
            return Forecast(status="not_eligible", plan=self.plan.id if self.plan else None, rules=(rule,), **base)
        if series.per_fiscal_year:
            return self._forecast_yearly(as_of, spans, base)
        if self.complete():
            assert self.plan is not None
            return Forecast(status="complete", plan=self.plan.id, **base)

        born = self.person.birth_date
        day = max(as_of, spans[0][0])
        plan = self.plan or self._choose_plan(self._first_open_day(spans, day) or day, None, forecasting=True)
        if plan is None:
            return Forecast(status="aged_out", rules=(self._last_window_rule(),), **base)
        rules: list[str] = []
        index = self.valid[-1][0] + 1 if self.valid else 0
        skipped: list[int] = []
        window = self._window_at(day)
        while True:
            while index < len(plan.doses) and self._skipped_regardless_of_date(plan, index):
                skipped.append(index)
                index += 1
            if index >= len(plan.doses):
                return Forecast(status="complete", plan=plan.id, **base)
            target = plan.doses[index]
            earliest = self._earliest_for(plan, index, skipped, spans, window)
            probe = max(earliest, as_of)
            if target.skip_after_age and probe > attained_on(born, target.skip_after_age.age):
                rules.append(target.skip_after_age.rule)
                skipped.append(index)
                index += 1
                continue
            break

        span = next(((s, e) for s, e in spans if e >= max(earliest, as_of)), None)
        if span is None:
            rules.append(self._last_window_rule())
            return Forecast(status="aged_out", plan=plan.id, next_dose=target.label_ja, rules=tuple(rules), **base)
        earliest = max(earliest, span[0])
        latest = span[1]
        window = self._window_at(max(earliest, as_of))
        if window is not None:
            rules.append(series.windows[window].rule)
        prerequisite = series.windows[window].requires_series_complete if window is not None else None
        if prerequisite and window and self._window_at_first(max(earliest, as_of)) is None:
            other = runs[prerequisite.series]
            if not other.complete() or not other.valid:
                rules.append(prerequisite.rule)
                waiting = {"status": "upcoming", "plan": plan.id, "next_dose": target.label_ja, "latest": latest}
                return Forecast(rules=tuple(rules), **waiting, **base)
            earliest = max(earliest, earliest_after(other.valid[-1][1].date, prerequisite.min_interval))
        if plan.age_until:
            latest = min(latest, attained_on(born, plan.age_until))
        if target.skip_after_age:
            latest = min(latest, attained_on(born, target.skip_after_age.age))
        if target.warn_after_age:
            latest = min(latest, attained_on(born, target.warn_after_age.age))
            rules.append(target.warn_after_age.rule)
        if earliest > latest or as_of > latest:
            rule = plan.age_until_rule or self._last_window_rule()
            return Forecast(status="aged_out", plan=plan.id, next_dose=target.label_ja, rules=(*tuple(rules), rule), **base)
        recommended = self._recommended(plan, index, skipped, earliest, window)
        recommended = min(max(recommended, earliest), latest)
        rules.extend(spec.rule for spec in self._intervals(plan, index, skipped, window))
        if target.standard_rule:
            rules.append(target.standard_rule)
        status: ForecastStatus = "due" if as_of >= earliest else "upcoming"
        return Forecast(
            status=status,
            plan=plan.id,
            next_dose=target.label_ja,
            earliest=earliest,
            recommended=recommended,
            latest=latest,
            rules=tuple(dict.fromkeys(rules)),
            **base,
        )

    def _last_window_rule(self) -> str:
        """The rule of the eligible range that closes last for this person."""
        ends = [(max(e for _, e in spans), i) for i, spans in enumerate(self.spans) if spans]
        return self.series.windows[max(ends)[1] if ends else 0].rule

    @staticmethod
    def _first_open_day(spans: Sequence[tuple[date, date]], day: date) -> date | None:
        for start, end in spans:
            if end >= day:
                return max(start, day)
        return None

    def _earliest_for(
        self, plan: Plan, index: int, skipped: Sequence[int], spans: Sequence[tuple[date, date]], window: int | None
    ) -> date:
        target = plan.doses[index]
        born = self.person.birth_date
        earliest = spans[0][0]
        if target.min_age:
            earliest = max(earliest, attained_on(born, target.min_age))
        for spec in self._intervals(plan, index, skipped, window):
            reference = self._reference(spec)
            if reference is not None and spec.minimum is not None:
                earliest = max(earliest, earliest_after(reference.date, spec.minimum))
        return earliest

    def _recommended(self, plan: Plan, index: int, skipped: Sequence[int], earliest: date, window: int | None) -> date:
        target = plan.doses[index]
        born = self.person.birth_date
        recommended = earliest
        if target.standard_from:
            recommended = max(recommended, attained_on(born, target.standard_from))
        if target.standard_fiscal_year_age is not None:
            recommended = max(recommended, fiscal_year_start(fiscal_year_of_age(born, target.standard_fiscal_year_age)))
        for spec in self._intervals(plan, index, skipped, window):
            reference = self._reference(spec)
            if reference is not None and spec.standard is not None:
                recommended = max(recommended, earliest_after(reference.date, spec.standard))
        return recommended

    def _forecast_yearly(self, as_of: date, spans: Sequence[tuple[date, date]], base: dict[str, Any]) -> Forecast:
        yearly = self.series.per_fiscal_year
        assert yearly is not None
        plan = self.series.plans[0]
        year = fiscal_year(as_of)
        done = self.per_year.get(year, 0) >= yearly.doses
        start = fiscal_year_start(year + 1) if done else fiscal_year_start(year)
        span = next(((s, e) for s, e in spans if e >= max(start, as_of if not done else start)), None)
        if span is None:
            return Forecast(status="aged_out", plan=plan.id, rules=(self.series.windows[0].rule,), **base)
        earliest = max(start, span[0])
        season = fiscal_year(earliest)
        latest = min(span[1], fiscal_year_end(season))
        month, day = yearly.recommended_from
        recommended = min(max(earliest, date(season, month, day)), latest)
        status: ForecastStatus = "due" if earliest <= as_of <= latest else "upcoming"
        return Forecast(
            status=status,
            plan=plan.id,
            next_dose=f"{season}年度",
            earliest=earliest,
            recommended=recommended,
            latest=latest,
            rules=(yearly.rule, yearly.recommended_rule),
            **base,
        )


class _LiveDoses:
    """Valid injected live-vaccine doses seen so far, for the spacing between different ones."""

    def __init__(self, spacing: LiveSpacing | None) -> None:
        self.spacing = spacing
        self.seen: list[RecordedDose] = []

    def conflict(self, dose: RecordedDose) -> Reason | None:
        if self.spacing is None or not self.spacing.applies(dose):
            return None
        for earlier in self.seen:
            same_kind = (earlier.vaccine, earlier.product) == (dose.vaccine, dose.product)
            if same_kind or earlier.date == dose.date:  # same vaccine: its own series rules; same day: 同時接種
                continue
            earliest = earliest_after(earlier.date, self.spacing.minimum)
            if dose.date < earliest:
                return Reason("interval_too_short", self.spacing.rule, f"not before {earliest} ({earlier.vaccine} on {earlier.date})")
        return None

    def record(self, dose: RecordedDose) -> None:
        if self.spacing is not None and self.spacing.applies(dose):
            self.seen.append(dose)


def _pick_series(candidates: Sequence[Series], runs: Mapping[str, _SeriesRun], day: date) -> Series:
    if len(candidates) == 1:
        return candidates[0]
    for series in candidates:
        run = runs[series.id]
        if run._window_at(day) is not None and not run.complete():
            return series
    for series in candidates:
        if runs[series.id]._window_at(day) is not None:
            return series
    # Outside every range: report it against the phase it could still have counted for.
    for series in candidates:
        run = runs[series.id]
        if not run.complete() and any(end >= day for _, end in run.eligible_spans()):
            return series
    for series in candidates:
        if not runs[series.id].complete():
            return series
    return candidates[-1]


def _apply_alternatives(
    schedule: Schedule, forecasts: dict[str, Forecast], runs: Mapping[str, _SeriesRun], as_of: date
) -> None:
    """Series that are alternatives (五種混合, or 四種混合 with Hib): only the chosen one is forecast."""
    for alternative in schedule.alternatives:
        counts = [sum(len(runs[s].valid) for s in option) for option in alternative.options]
        if any(counts):
            chosen = max(range(len(counts)), key=lambda i: (counts[i], -i))
        elif alternative.default_before and as_of < alternative.default_before[0]:
            chosen = alternative.default_before[1]
        else:
            chosen = alternative.default
        for i, option in enumerate(alternative.options):
            if i == chosen:
                continue
            for series_id in option:
                if not runs[series_id].valid:
                    old = forecasts[series_id]
                    forecasts[series_id] = Forecast(
                        series=old.series,
                        name_ja=old.name_ja,
                        status="not_applicable",
                        valid_doses=0,
                        rules=(alternative.rule,),
                    )


def evaluate(person: Person, doses: Sequence[RecordedDose], as_of: date, schedule: Schedule | None = None) -> Evaluation:
    """Evaluate every recorded dose and forecast every series for ``person`` as of ``as_of``.

    Doses are read in date order (input order breaks ties); the result lists them in input
    order. Doses dated after ``as_of`` or before birth are reported as data errors and ignored.
    """
    schedule = schedule or load_schedule()
    by_vaccine: dict[str, list[RecordedDose]] = {}
    usable = [d for d in doses if person.birth_date <= d.date <= as_of]
    for dose in sorted(usable, key=lambda d: d.date):
        by_vaccine.setdefault(dose.vaccine, []).append(dose)
    runs = {
        s.id: _SeriesRun(s, person, schedule.vaccines[s.vaccine], by_vaccine.get(s.vaccine, ()))
        for s in schedule.series
    }
    results: list[DoseEvaluation | None] = [None] * len(doses)
    live = _LiveDoses(schedule.live_spacing)
    for position in sorted(range(len(doses)), key=lambda i: (doses[i].date, i)):
        dose = doses[position]
        if dose.date > as_of or dose.date < person.birth_date:
            where = "after the evaluation date" if dose.date > as_of else "before birth"
            reason = Reason("date_error", "schedule.recorded_dose_dates", f"dose dated {dose.date} is {where}")
            results[position] = DoseEvaluation(dose, None, False, reasons=(reason,))
            continue
        candidates = schedule.series_for_vaccine(dose.vaccine)
        if not candidates:
            reason = Reason("unknown_vaccine", "schedule.outside_eligible_range", f"{dose.vaccine!r} has no routine series")
            results[position] = DoseEvaluation(dose, None, False, reasons=(reason,))
            continue
        series = _pick_series(candidates, runs, dose.date)
        results[position] = runs[series.id].accept(dose, runs, live)
    forecasts = {s.id: runs[s.id].forecast(as_of, runs) for s in schedule.series}
    _apply_alternatives(schedule, forecasts, runs, as_of)
    return Evaluation(
        as_of=as_of,
        doses=tuple(r for r in results if r is not None),
        forecasts=tuple(forecasts[s.id] for s in schedule.series),
    )


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


__all__ = [
    "DoseEvaluation",
    "Evaluation",
    "Forecast",
    "Period",
    "Person",
    "Reason",
    "RecordedDose",
    "Schedule",
    "attained_on",
    "earliest_after",
    "evaluate",
    "fiscal_year",
    "load_schedule",
    "schedule_from_dict",
    "school_start",
]
