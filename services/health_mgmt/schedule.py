"""Routine vaccination schedule (定期接種): evaluation of recorded doses and forecast.

The schedule itself is data (``data/routine_schedule.json``): each series has its eligible
range (定期接種対象年齢 and the conditions of 予防接種法施行令), its plans (the dose sequences,
chosen by the age at the first dose or by the vaccine product) and, for every dose, the
minimum age, the minimum intervals and the standard (標準的な) ages and intervals. Every rule
carries an id and its legal source; every verdict here names the rule it applied.

The logic follows the idea of CDC's CDSi: read the history in date order, match each dose to
the next target dose of its series, say whether it counts and why not, then forecast what
is due next. Everything is a pure function of (person, doses, as_of).

The date arithmetic lives in ``legal_dates.py``, the model and its loading in
``schedule_data.py``; this module evaluates, and is the public face of all three.

Dates follow Japanese law: an age is attained on the day before the birthday (年齢計算ニ関スル
法律, 民法第143条), and an upper age bound includes the day it is attained (厚生労働省事務連絡
平成26年3月11日). See docs/schedule.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from services.health_mgmt.legal_dates import (
    Period,
    attained_on,
    earliest_after,
    fiscal_year,
    fiscal_year_end,
    fiscal_year_of_age,
    fiscal_year_start,
    school_start,
)
from services.health_mgmt.schedule_data import (
    PERSON_FLAGS,
    VOLUNTARY_REASONS,
    DoseEvaluation,
    Evaluation,
    Forecast,
    ForecastStatus,
    IntervalSpec,
    LiveSpacing,
    Person,
    Plan,
    Reason,
    RecordedDose,
    Schedule,
    Series,
    Vaccine,
    Window,
    load_schedule,
    referenced_rules,
    schedule_from_dict,
)

# ---------------------------------------------------------------------------------------------
# Evaluation

_FAR_FUTURE = date(9999, 12, 31)


def _merge(spans: Iterable[tuple[date, date]]) -> list[tuple[date, date]]:
    merged: list[tuple[date, date]] = []
    for start, end in sorted(spans):
        if merged and start - timedelta(days=1) <= merged[-1][1]:  # (end + 1 day would overflow at 9999-12-31)
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _person_fits(window: Window, person: Person, history: Sequence[RecordedDose] | None) -> bool:
    """Whether the person meets the window's conditions; ``history=None`` takes a condition on
    past doses as met."""
    born = person.birth_date
    if (window.born_from and born < window.born_from) or (window.born_until and born > window.born_until):
        return False
    if window.requires_any_flag and not any(getattr(person, f) for f in window.requires_any_flag):
        return False
    if window.requires_dose_between and history is not None:
        start, end = window.requires_dose_between
        if not any(start <= d.date <= end for d in history):
            return False
    return True


def _window_spans(window: Window, person: Person, history: Sequence[RecordedDose] | None) -> list[tuple[date, date]]:
    """The spans of days the window covers for the person."""
    if not _person_fits(window, person, history):
        return []
    born = person.birth_date
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


_PERSON_SPANS: dict[tuple, tuple[Schedule, dict[str, list[list[tuple[date, date]]]]]] = {}


def _spans_by_series(schedule: Schedule, person: Person) -> dict[str, list[list[tuple[date, date]]]]:
    """Every window's spans for the person, by series, with conditions on past doses taken as
    met (a window with such a condition is computed again for each person's history). They
    depend on the birth date and flags alone: computed once for everyone born the same day
    with the same flags."""
    key = (id(schedule), person.birth_date, *(getattr(person, flag) for flag in PERSON_FLAGS))
    cached = _PERSON_SPANS.get(key)
    if cached is not None and cached[0] is schedule:
        return cached[1]
    found = {series.id: [_window_spans(w, person, None) for w in series.windows] for series in schedule.series}
    if len(_PERSON_SPANS) > 200_000:
        _PERSON_SPANS.clear()
    _PERSON_SPANS[key] = (schedule, found)
    return found


_BY_VACCINE: dict[int, tuple[Schedule, dict[str, tuple[Series, ...]]]] = {}


def _series_for_vaccine(schedule: Schedule, vaccine: str) -> tuple[Series, ...]:
    cached = _BY_VACCINE.get(id(schedule))
    if cached is None or cached[0] is not schedule:
        cached = _BY_VACCINE[id(schedule)] = (schedule, {})
    found = cached[1].get(vaccine)
    if found is None:
        found = cached[1][vaccine] = schedule.series_for_vaccine(vaccine)
    return found


class _SeriesRun:
    """The state of one series while a person's history is read in date order."""

    def __init__(
        self,
        series: Series,
        person: Person,
        vaccine: Vaccine,
        history: Sequence[RecordedDose],
        spans: Sequence[list[tuple[date, date]]],
    ) -> None:
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
        # from _spans_by_series (the same for everyone born that day); a window with a
        # condition on past doses is judged on this history
        self.spans = [self._spans(w) if w.requires_dose_between is not None else found for w, found in zip(series.windows, spans)]
        self._eligible: list[tuple[date, date]] | None = None

    # -- eligibility

    def _person_fits(self, window: Window) -> bool:
        return _person_fits(window, self.person, self.history)

    def _spans(self, window: Window) -> list[tuple[date, date]]:
        return _window_spans(window, self.person, self.history)

    def eligible_spans(self) -> list[tuple[date, date]]:
        if self._eligible is None:
            self._eligible = _merge(span for spans in self.spans for span in spans)
        return self._eligible

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
                if not runs[series_id].valid and series_id in forecasts:
                    old = forecasts[series_id]
                    forecasts[series_id] = Forecast(
                        series=old.series,
                        name_ja=old.name_ja,
                        status="not_applicable",
                        valid_doses=0,
                        rules=(alternative.rule,),
                    )


def evaluate(
    person: Person,
    doses: Sequence[RecordedDose],
    as_of: date,
    schedule: Schedule | None = None,
    *,
    forecast: bool = True,
    forecast_within: tuple[date, date] | None = None,
) -> Evaluation:
    """Evaluate every recorded dose and forecast every series for ``person`` as of ``as_of``.

    ``forecast=False`` gives the verdicts alone; ``forecast_within=(first, last)`` forecasts
    only the series whose eligible range meets those days (nothing of another series can
    fall due then), leaving the others out of ``forecasts``.

    Doses are read in date order (input order breaks ties); the result lists them in input
    order. Doses dated after ``as_of`` or before birth are reported as data errors and ignored.
    """
    schedule = schedule or load_schedule()
    return _evaluate(person, doses, as_of, schedule, _spans_by_series(schedule, person), forecast, forecast_within)


def _evaluate(
    person: Person,
    doses: Sequence[RecordedDose],
    as_of: date,
    schedule: Schedule,
    spans: Mapping[str, Sequence[list[tuple[date, date]]]],
    forecast: bool,
    forecast_within: tuple[date, date] | None,
    forecast_only: frozenset[str] | None = None,
) -> Evaluation:
    by_vaccine: dict[str, list[RecordedDose]] = {}
    usable = [d for d in doses if person.birth_date <= d.date <= as_of]
    for dose in sorted(usable, key=lambda d: d.date):
        by_vaccine.setdefault(dose.vaccine, []).append(dose)
    runs = {
        s.id: _SeriesRun(s, person, schedule.vaccines[s.vaccine], by_vaccine.get(s.vaccine, ()), spans[s.id])
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
        candidates = _series_for_vaccine(schedule, dose.vaccine)
        if not candidates:
            reason = Reason("unknown_vaccine", "schedule.outside_eligible_range", f"{dose.vaccine!r} has no routine series")
            results[position] = DoseEvaluation(dose, None, False, reasons=(reason,))
            continue
        series = _pick_series(candidates, runs, dose.date)
        results[position] = runs[series.id].accept(dose, runs, live)
    if not forecast:
        return Evaluation(as_of=as_of, doses=tuple(r for r in results if r is not None), forecasts=())
    wanted = schedule.series
    if forecast_only is not None:
        wanted = tuple(s for s in wanted if s.id in forecast_only)
    if forecast_within is not None:
        first, last = forecast_within
        wanted = tuple(s for s in wanted if any(a <= last and b >= first for a, b in runs[s.id].eligible_spans()))
    forecasts = {s.id: runs[s.id].forecast(as_of, runs) for s in wanted}
    _apply_alternatives(schedule, forecasts, runs, as_of)
    return Evaluation(
        as_of=as_of,
        doses=tuple(r for r in results if r is not None),
        forecasts=tuple(forecasts[s.id] for s in schedule.series if s.id in forecasts),
    )


def forecasts_within(
    person: Person,
    doses: Sequence[RecordedDose],
    as_of: date,
    first: date,
    last: date,
    schedule: Schedule | None = None,
    *,
    series: frozenset[str] | None = None,
) -> tuple[Forecast, ...]:
    """The forecasts of ``evaluate(person, doses, as_of, forecast_within=(first, last))``, and
    only those: the verdicts on the doses are not kept. With ``series``, only the forecasts of
    those series among them (``series_due_within`` gives the ones that can fall due).

    Only the series that can matter are read: those forecast, the other series of their
    vaccines (a dose goes to one of them), the series they require complete (特例), the series
    of the same alternatives (五種混合 or 四種混合 with Hib), and every injected live vaccine
    when one of them is read (their spacing). A dose of any other vaccine changes none of
    these forecasts.
    """
    schedule = schedule or load_schedule()
    spans = _spans_by_series(schedule, person)
    wanted = _series_meeting(schedule, person, spans, first, last)
    if series is not None:
        wanted = wanted & series
    cut, vaccines = _schedule_for(schedule, wanted)
    if not cut.series:
        return ()
    doses = [dose for dose in doses if dose.vaccine in vaccines]  # the others would only be judged unknown
    return _evaluate(person, doses, as_of, cut, spans, True, (first, last), None if series is None else wanted).forecasts


_DUE: dict[tuple, tuple[Schedule, frozenset[str]]] = {}


def series_due_within(person: Person, first: date, last: date, schedule: Schedule | None = None) -> frozenset[str]:
    """The series of which a dose may fall due within ``first``–``last`` for the person: a
    forecast ``due`` or ``upcoming`` whose days meet these and whose recommended day comes by
    ``last``, whatever the person's history.

    It depends on the birth date, the sex and the flags alone, and may say too much, never too
    little: conditions on past doses are taken as met. Left out are the series the person's
    sex or flags exclude, those none of whose eligible ranges meets the days, and a yearly
    series (高齢者インフルエンザ) whose recommended day of the year (1 October) comes after
    ``last`` unless one of its ranges ends within the days: a yearly forecast's recommended
    day is the later of its first day and that day, or its last day if that comes first.
    """
    schedule = schedule or load_schedule()
    key = (id(schedule), person.birth_date, person.sex, *(getattr(person, flag) for flag in PERSON_FLAGS), first, last)
    cached = _DUE.get(key)
    if cached is not None and cached[0] is schedule:
        return cached[1]
    spans = _spans_by_series(schedule, person)
    found = frozenset(s.id for s in schedule.series if _may_fall_due(s, person, spans[s.id], first, last))
    if len(_DUE) > 200_000:
        _DUE.clear()
    _DUE[key] = (schedule, found)
    return found


def _may_fall_due(series: Series, person: Person, window_spans: Sequence[list[tuple[date, date]]], first: date, last: date) -> bool:
    if series.sex and person.sex != series.sex:
        return False
    if any(getattr(person, flag) for flag, _ in series.excluded_by_flags):
        return False
    spans = [span for found in window_spans for span in found]
    if not any(a <= last and b >= first for a, b in spans):
        return False
    yearly = series.per_fiscal_year
    if yearly is None or any(first <= b <= last for _, b in spans):
        return True
    # a yearly forecast's days lie in one fiscal year of a range: its recommended day (that
    # year's, e.g. 1 October) comes by `last` only if the year's does, or the range ends first
    month, day = yearly.recommended_from
    for year in range(fiscal_year(first), fiscal_year(last) + 1):
        start, end = max(first, fiscal_year_start(year)), min(last, fiscal_year_end(year))
        if date(year, month, day) <= last and any(a <= end and b >= start for a, b in spans):
            return True
    return False


_WITHIN: dict[tuple, tuple[Schedule, Schedule, frozenset[str]]] = {}
_WANTED: dict[tuple, tuple[Schedule, frozenset[str]]] = {}


def _series_meeting(
    schedule: Schedule, person: Person, spans: Mapping[str, Sequence[list[tuple[date, date]]]], first: date, last: date
) -> frozenset[str]:
    """The series one of whose eligible ranges (conditions on past doses taken as met) meets
    ``first``–``last``."""
    key = (id(schedule), person.birth_date, *(getattr(person, flag) for flag in PERSON_FLAGS), first, last)
    cached = _WANTED.get(key)
    if cached is not None and cached[0] is schedule:
        return cached[1]
    wanted = frozenset(
        series.id
        for series in schedule.series
        if any(a <= last and b >= first for window_spans in spans[series.id] for a, b in window_spans)
    )
    if len(_WANTED) > 200_000:
        _WANTED.clear()
    _WANTED[key] = (schedule, wanted)
    return wanted


def _schedule_for(schedule: Schedule, wanted: frozenset[str]) -> tuple[Schedule, frozenset[str]]:
    """The schedule cut down to the ``wanted`` series and those their forecasts depend on, and
    the vaccines of its series."""
    key = (id(schedule), wanted)
    cached = _WITHIN.get(key)
    if cached is not None and cached[0] is schedule:
        return cached[1], cached[2]
    needed = set(wanted)
    live = schedule.live_spacing
    live_vaccines = (
        {code for code, vaccine in schedule.vaccines.items() if code in live.vaccines or set(vaccine.products) & live.products}
        if live is not None
        else set()
    )
    while True:
        vaccines = {s.vaccine for s in schedule.series if s.id in needed}
        if vaccines & live_vaccines:
            vaccines |= live_vaccines
        more = {s.id for s in schedule.series if s.vaccine in vaccines}
        for series in schedule.series:
            if series.id in needed:
                more.update(w.requires_series_complete.series for w in series.windows if w.requires_series_complete)
        for alternative in schedule.alternatives:
            members = {member for option in alternative.options for member in option}
            if members & needed:
                more |= members
        if more <= needed:
            break
        needed |= more
    cut = Schedule(
        schedule.rules,
        schedule.vaccines,
        tuple(s for s in schedule.series if s.id in needed),
        tuple(a for a in schedule.alternatives if any(m in needed for option in a.options for m in option)),
        schedule.sources,
        schedule.live_spacing,
    )
    vaccines = frozenset(s.vaccine for s in cut.series)
    if len(_WITHIN) > 4096:
        _WITHIN.clear()
    _WITHIN[key] = (schedule, cut, vaccines)
    return cut, vaccines


def judge(person: Person, doses: Sequence[RecordedDose], as_of: date, schedule: Schedule | None = None) -> tuple[DoseEvaluation, ...]:
    """The verdict on every dose, as ``evaluate`` gives it, without the forecast.

    Only the series of the vaccines in ``doses`` (and the series they depend on) are read:
    a verdict depends on nothing else, so this is what checking incoming records needs.
    """
    schedule = schedule or load_schedule()
    cut = _cut_schedule(schedule, frozenset(d.vaccine for d in doses))
    return evaluate(person, doses, as_of, cut, forecast=False).doses


_CUTS: dict[tuple[int, frozenset[str]], tuple[Schedule, Schedule]] = {}


def _cut_schedule(schedule: Schedule, present: frozenset[str]) -> Schedule:
    """The schedule with only the series of ``present`` vaccines and those they depend on."""
    key = (id(schedule), present)
    cached = _CUTS.get(key)
    if cached is not None and cached[0] is schedule:
        return cached[1]
    needed = {s.id for s in schedule.series if s.vaccine in present}
    pending = list(needed)
    while pending:  # a phase may require another series to be complete (特例)
        for window in schedule.series_by_id(pending.pop()).windows:
            other = window.requires_series_complete.series if window.requires_series_complete else None
            if other and other not in needed:
                needed.add(other)
                pending.append(other)
    cut = Schedule(
        schedule.rules,
        schedule.vaccines,
        tuple(s for s in schedule.series if s.id in needed),
        (),
        schedule.sources,
        schedule.live_spacing,
    )
    if len(_CUTS) > 4096:
        _CUTS.clear()
    _CUTS[key] = (schedule, cut)
    return cut


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
    "forecasts_within",
    "judge",
    "load_schedule",
    "referenced_rules",
    "schedule_from_dict",
    "school_start",
    "series_due_within",
]
