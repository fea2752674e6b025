"""The routine schedule (定期接種): date arithmetic, dose evaluation and forecast.

Each row of CASES names the rule of ``data/routine_schedule.json`` it checks. Expected dates
were worked out by hand from the rules (see docs/schedule.md), not taken from the code.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, field
from datetime import date
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.health_mgmt.schedule import (
    Period,
    Person,
    RecordedDose,
    attained_on,
    earliest_after,
    evaluate,
    fiscal_year,
    load_schedule,
    schedule_from_dict,
    school_start,
)

SCHEDULE = load_schedule()


def d(text: str) -> date:
    return date.fromisoformat(text)


def dose(vaccine: str, day: str, product: str | None = None, physician: bool = False) -> RecordedDose:
    return RecordedDose(vaccine, d(day), product, physician_judgement=physician)


def doses(vaccine: str, *days: str, product: str | None = None) -> tuple[RecordedDose, ...]:
    return tuple(dose(vaccine, day, product) for day in days)


def girl(born: str, **flags) -> Person:
    return Person(d(born), "F", **flags)


def boy(born: str, **flags) -> Person:
    return Person(d(born), "M", **flags)


# Born 2024-04-15: 生後2月 2024-06-14, 5月 09-14, 7月 11-14, 12月 2025-04-14, 24月 2026-04-14,
# 36月 2027-04-14, 60月 2029-04-14, 90月 2031-10-14; 出生6週0日後 05-27, 14週6日後 07-28,
# 24週0日後 09-30, 32週0日後 11-25.
BABY = girl("2024-04-15")
# Born 2019-06-10: 6月 2019-12-09, 90月 2026-12-09, 9歳 2028-06-09, 13歳 2032-06-09.
CHILD = boy("2019-06-10")
# Born 2000-05-01 (日本脳炎特例): 90月 2007-10-31, 13歳 2013-04-30, 20歳 2020-04-30.
JE_SPECIAL = boy("2000-05-01")
# Born 2011-06-01: 12歳 2023-05-31 (年度 2023), 13歳 2024-05-31 (年度 2024), 15歳 2026-05-31, 16歳 2027-05-31 (年度 2027).
GIRL_2011 = girl("2011-06-01")
# Born 1959-10-10: 65歳 2024-10-09, 66歳 2025-10-09.
SENIOR = boy("1959-10-10")


@dataclass(frozen=True)
class Case:
    id: str
    rule: str  # the rule under test (an id in routine_schedule.json)
    person: Person
    doses: tuple[RecordedDose, ...]
    as_of: date
    verdicts: tuple[str, ...] = ()  # per dose, in order: "valid" or the first reason's code
    cites: str | None = None  # rule the last dose's first reason (or warning) must name; default: rule
    series: str | None = None  # series of the last dose
    target: str | None = None  # target dose of the last dose
    plan: str | None = None  # plan of the last dose
    warnings: tuple[str, ...] | None = None  # warning codes on the last dose, when checked
    forecast: str | None = None  # series whose forecast is checked
    expect: dict = field(default_factory=dict)  # expected Forecast fields


def case(id, rule, person, history, as_of, *verdicts, **expected) -> Case:
    return Case(id, rule, person, tuple(history), d(as_of), tuple(verdicts), **expected)


V, SHORT, EARLY, OUT, YOUNG = "valid", "interval_too_short", "too_early", "outside_eligible_age", "below_minimum_age"
NOT_ELIGIBLE, TOO_MANY, WRONG = "not_eligible", "too_many_doses", "wrong_product"
FIVE = "dpt_ipv_hib"

CASES = [
    # 五種混合 第1期
    case("five-day-before-2m", "dpt_ipv_hib.eligible_age", BABY, doses(FIVE, "2024-06-13"), "2024-07-01", EARLY),
    case("five-on-2m", "dpt_ipv_hib.eligible_age", BABY, doses(FIVE, "2024-06-14"), "2024-07-01", V, target="初回1回目"),
    case("five-primary-19-days", "dpt_ipv_hib.primary_interval", BABY, doses(FIVE, "2024-06-14", "2024-07-04"), "2024-08-01", V, SHORT),
    case("five-primary-20-days", "dpt_ipv_hib.primary_interval", BABY, doses(FIVE, "2024-06-14", "2024-07-05"), "2024-08-01", V, V, target="初回2回目"),
    case("five-booster-a-day-early", "dpt_ipv_hib.booster_interval", BABY,
         doses(FIVE, "2024-06-14", "2024-07-05", "2024-07-26", "2025-01-25"), "2025-02-01", V, V, V, SHORT),
    case("five-booster-completes", "dpt_ipv_hib.booster_interval", BABY,
         doses(FIVE, "2024-06-14", "2024-07-05", "2024-07-26", "2025-01-26"), "2025-02-01", V, V, V, V,
         target="追加", forecast="dpt_ipv_hib_1", expect={"status": "complete", "valid_doses": 4}),
    case("five-fifth-dose", "schedule.too_many_doses", BABY,
         doses(FIVE, "2024-06-14", "2024-07-05", "2024-07-26", "2025-01-26", "2025-06-01"), "2025-07-01", V, V, V, V, TOO_MANY),
    case("five-on-90m", "dpt_ipv_hib.eligible_age", BABY, doses(FIVE, "2031-10-14"), "2031-11-01", V),
    case("five-day-after-90m", "dpt_ipv_hib.eligible_age", BABY, doses(FIVE, "2031-10-15"), "2031-11-01", OUT),
    case("five-before-programme", "dpt_ipv_hib.eligible_age", girl("2023-12-01"), doses(FIVE, "2024-03-15"), "2024-04-01",
         "before_programme_start"),
    case("five-in-one-is-the-default", "dpt.one_combination", BABY, (), "2024-07-01",
         forecast="dpt_ipv_1", expect={"status": "not_applicable"}),
    case("five-in-one-covers-hib", "dpt.one_combination", BABY, (), "2024-07-01", forecast="hib", expect={"status": "not_applicable"}),
    case("four-in-one-path-drops-five", "dpt.one_combination", BABY, doses("dpt_ipv", "2024-06-14"), "2024-07-01", V,
         forecast="dpt_ipv_hib_1", expect={"status": "not_applicable"}),
    case("before-april-2024-four-in-one-and-hib", "dpt.one_combination", girl("2023-06-01"), (), "2024-02-01",
         forecast="dpt_ipv_hib_1", expect={"status": "not_applicable"}),
    # 四種混合 第1期
    case("four-primary-19-days", "dpt_ipv.primary_interval", BABY, doses("dpt_ipv", "2024-06-14", "2024-07-04"), "2024-08-01", V, SHORT),
    case("four-booster-forecast", "dpt_ipv.booster_interval", BABY, doses("dpt_ipv", "2024-06-14", "2024-07-05", "2024-07-26"),
         "2024-08-01", V, V, V, forecast="dpt_ipv_1",
         expect={"status": "upcoming", "next_dose": "追加", "earliest": d("2025-01-26"), "recommended": d("2025-07-26"), "latest": d("2031-10-14")}),
    # Hib
    case("hib-day-before-2m", "hib.eligible_age", BABY, doses("hib", "2024-06-13"), "2024-07-01", EARLY),
    case("hib-primary-26-days", "hib.primary_interval", BABY, doses("hib", "2024-06-14", "2024-07-11"), "2024-08-01", V, SHORT),
    case("hib-primary-27-days", "hib.primary_interval", BABY, doses("hib", "2024-06-14", "2024-07-12"), "2024-08-01", V, V),
    case("hib-physician-20-days", "hib.primary_interval", BABY, (dose("hib", "2024-06-14"), dose("hib", "2024-07-05", physician=True)),
         "2024-08-01", V, V),
    case("hib-physician-19-days", "hib.primary_interval", BABY, (dose("hib", "2024-06-14"), dose("hib", "2024-07-04", physician=True)),
         "2024-08-01", V, SHORT),
    case("hib-second-primary-on-12m", "hib.primary_by_12m", BABY, doses("hib", "2024-06-14", "2025-04-14"), "2025-05-01", V, V,
         target="初回2回目"),
    case("hib-after-12m-becomes-booster", "hib.primary_by_12m", BABY, doses("hib", "2024-06-14", "2025-04-15"), "2025-05-01", V, V,
         target="追加", forecast="hib", expect={"status": "complete"}),
    case("hib-booster-after-skip-26-days", "hib.booster_after_skipped_primary", BABY, doses("hib", "2025-03-20", "2025-04-16"),
         "2025-05-01", V, SHORT, plan="hib.start_by_12m"),
    case("hib-start-on-7m", "hib.plan_by_start_age", BABY, doses("hib", "2024-11-14"), "2024-12-01", V, plan="hib.start_by_7m"),
    case("hib-start-day-after-7m", "hib.plan_by_start_age", BABY, doses("hib", "2024-11-15"), "2024-12-01", V, plan="hib.start_by_12m"),
    case("hib-start-after-12m-one-dose", "hib.plan_by_start_age", BABY, doses("hib", "2025-04-15"), "2025-05-01", V,
         plan="hib.start_by_60m", forecast="hib", expect={"status": "complete"}),
    case("hib-booster-7-months-short", "hib.booster_interval", BABY, doses("hib", "2024-06-14", "2024-07-12", "2024-08-09", "2025-03-08"),
         "2025-04-01", V, V, V, SHORT),
    case("hib-booster-forecast", "hib.booster_interval", BABY, doses("hib", "2024-06-14", "2024-07-12", "2024-08-09"), "2024-09-01",
         V, V, V, forecast="hib",
         expect={"status": "upcoming", "next_dose": "追加", "earliest": d("2025-03-09"), "recommended": d("2025-03-09"), "latest": d("2029-04-14")}),
    case("hib-day-after-60m", "hib.eligible_age", BABY, doses("hib", "2029-04-15"), "2029-05-01", OUT),
    # 小児用肺炎球菌
    case("pcv-third-primary-skipped", "pcv.third_primary_skipped_after_12m", BABY,
         doses("pcv_pediatric", "2024-11-01", "2025-04-15", "2025-06-15", product="pcv13"), "2025-07-01", V, V, V, target="追加"),
    case("pcv-booster-before-12m", "pcv.booster", BABY, doses("pcv_pediatric", "2024-06-14", "2024-07-12", "2024-08-09", "2025-04-13"),
         "2025-05-01", V, V, V, YOUNG),
    case("pcv-booster-on-12m", "pcv.booster", BABY, doses("pcv_pediatric", "2024-06-14", "2024-07-12", "2024-08-09", "2025-04-14"),
         "2025-05-01", V, V, V, V, forecast="pcv_pediatric", expect={"status": "complete"}),
    case("pcv-two-doses-59-days", "pcv.two_doses_from_12m", BABY, doses("pcv_pediatric", "2025-05-01", "2025-06-30"), "2025-07-01",
         V, SHORT, plan="pcv.start_by_24m"),
    case("pcv-start-after-24m", "pcv.plan_by_start_age", BABY, doses("pcv_pediatric", "2026-04-15"), "2026-05-01", V,
         plan="pcv.start_by_60m", forecast="pcv_pediatric", expect={"status": "complete"}),
    case("pcv-primaries-skipped-after-24m", "pcv.primary_by_24m", BABY, doses("pcv_pediatric", "2024-10-15"), "2026-05-01", V,
         forecast="pcv_pediatric",
         expect={"status": "due", "next_dose": "追加", "earliest": d("2025-04-14"), "latest": d("2029-04-14")}),
    case("pcv-products-interchange", "pcv.products", BABY,
         (dose("pcv_pediatric", "2024-06-14", "pcv13"), dose("pcv_pediatric", "2024-07-12", "pcv20")), "2024-08-01", V, V),
    # B型肝炎
    case("hepb-second-26-days", "hepatitis_b.second_interval", BABY, doses("hepatitis_b", "2024-06-14", "2024-07-11"), "2024-08-01", V, SHORT),
    case("hepb-third-138-days", "hepatitis_b.third_interval", BABY, doses("hepatitis_b", "2024-06-14", "2024-07-12", "2024-10-31"),
         "2024-11-05", V, V, SHORT),
    case("hepb-third-139-days", "hepatitis_b.third_interval", BABY, doses("hepatitis_b", "2024-06-14", "2024-07-12", "2024-11-01"),
         "2024-11-05", V, V, V, forecast="hepatitis_b", expect={"status": "complete"}),
    case("hepb-on-1y", "hepatitis_b.eligible_age", BABY, doses("hepatitis_b", "2025-04-14"), "2025-05-01", V),
    case("hepb-day-after-1y", "hepatitis_b.eligible_age", BABY, doses("hepatitis_b", "2025-04-15"), "2025-05-01", OUT),
    case("hepb-born-before-cohort", "hepatitis_b.eligible_age", girl("2016-03-31"), doses("hepatitis_b", "2016-10-05"), "2016-11-01",
         NOT_ELIGIBLE),
    case("hepb-perinatal-prophylaxis", "hepatitis_b.perinatal_excluded", girl("2024-04-15", hbv_perinatal_prophylaxis=True),
         doses("hepatitis_b", "2024-06-14"), "2024-07-01", NOT_ELIGIBLE, forecast="hepatitis_b", expect={"status": "not_eligible"}),
    # ロタウイルス
    case("rota-day-before-6w", "rotavirus.eligible_age", BABY, doses("rotavirus", "2024-05-26", product="rota1"), "2024-06-01", EARLY),
    case("rota-on-6w", "rotavirus.eligible_age", BABY, doses("rotavirus", "2024-05-27", product="rota1"), "2024-06-01", V),
    case("rota1-day-after-24w", "rotavirus.eligible_age_rota1", BABY, doses("rotavirus", "2024-07-01", "2024-10-01", product="rota1"),
         "2024-10-02", V, OUT),
    case("rota1-on-24w", "rotavirus.eligible_age_rota1", BABY, doses("rotavirus", "2024-07-01", "2024-09-30", product="rota1"),
         "2024-10-02", V, V, forecast="rotavirus", expect={"status": "complete"}),
    case("rota5-day-after-32w", "rotavirus.eligible_age_rota5", BABY,
         doses("rotavirus", "2024-06-14", "2024-07-12", "2024-11-26", product="rota5"), "2024-12-01", V, V, OUT),
    case("rota5-on-32w", "rotavirus.eligible_age_rota5", BABY,
         doses("rotavirus", "2024-06-14", "2024-07-12", "2024-11-25", product="rota5"), "2024-12-01", V, V, V),
    case("rota-mixed-products", "rotavirus.same_product", BABY,
         (dose("rotavirus", "2024-06-14", "rota1"), dose("rotavirus", "2024-07-12", "rota5")), "2024-08-01", V, WRONG),
    case("rota-product-missing", "rotavirus.same_product", BABY, doses("rotavirus", "2024-06-14"), "2024-07-01", "product_required"),
    case("rota-first-dose-on-14w6d", "rotavirus.first_dose_by_14w6d", BABY, doses("rotavirus", "2024-07-28", product="rota1"),
         "2024-08-01", V, warnings=()),
    case("rota-first-dose-after-14w6d", "rotavirus.first_dose_by_14w6d", BABY, doses("rotavirus", "2024-07-29", product="rota1"),
         "2024-08-01", V, warnings=("first_dose_after_standard_age",)),
    case("rota-born-before-programme", "rotavirus.eligible_age", girl("2020-07-31"), doses("rotavirus", "2020-10-05", product="rota1"),
         "2020-11-01", NOT_ELIGIBLE),
    case("rota-forecast", "rotavirus.first_dose_by_14w6d", BABY, (), "2024-06-01", forecast="rotavirus",
         expect={"status": "due", "earliest": d("2024-05-27"), "recommended": d("2024-06-14"), "latest": d("2024-07-28")}),
    # BCG
    case("bcg-on-1y", "bcg.eligible_age", BABY, doses("bcg", "2025-04-14"), "2025-05-01", V),
    case("bcg-day-after-1y", "bcg.eligible_age", BABY, doses("bcg", "2025-04-15"), "2025-05-01", OUT),
    case("bcg-forecast-standard-age", "bcg.standard_age", BABY, (), "2024-06-01", forecast="bcg",
         expect={"status": "due", "earliest": d("2024-04-15"), "recommended": d("2024-09-14"), "latest": d("2025-04-14")}),
    # MR
    case("mr1-day-before-12m", "mr1.eligible_age", BABY, doses("mr", "2025-04-13"), "2025-05-01", EARLY, series="mr_1"),
    case("mr1-on-24m", "mr1.eligible_age", BABY, doses("mr", "2026-04-14"), "2026-05-01", V, series="mr_1"),
    case("mr1-day-after-24m", "mr1.eligible_age", BABY, doses("mr", "2026-04-15"), "2026-05-01", EARLY, cites="mr2.eligible_age",
         series="mr_2", forecast="mr_1", expect={"status": "aged_out"}),
    case("mr2-born-on-1-april", "mr2.school_start", girl("2019-04-01"), doses("mr", "2020-04-01", "2024-04-01"), "2024-05-01", V, V,
         series="mr_2", target="第2期"),
    case("mr2-born-on-2-april", "mr2.school_start", girl("2019-04-02"), doses("mr", "2020-04-02", "2024-04-01"), "2024-05-01", V, EARLY,
         cites="mr2.eligible_age", series="mr_2"),
    case("mr2-forecast", "mr2.eligible_age", girl("2019-04-02"), doses("mr", "2020-04-02"), "2025-01-01", V, forecast="mr_2",
         expect={"status": "upcoming", "earliest": d("2025-04-01"), "latest": d("2026-03-31")}),
    # 水痘
    case("varicella-day-before-12m", "varicella.eligible_age", BABY, doses("varicella", "2025-04-13"), "2025-05-01", EARLY),
    case("varicella-interval-short", "varicella.interval", BABY, doses("varicella", "2025-04-14", "2025-07-13"), "2025-08-01", V, SHORT),
    case("varicella-3-months", "varicella.interval", BABY, doses("varicella", "2025-04-14", "2025-07-14"), "2025-08-01", V, V,
         forecast="varicella", expect={"status": "complete"}),
    case("varicella-forecast", "varicella.interval", BABY, doses("varicella", "2025-04-14"), "2025-05-01", V, forecast="varicella",
         expect={"status": "upcoming", "next_dose": "2回目", "earliest": d("2025-07-14"), "recommended": d("2025-10-14"), "latest": d("2027-04-14")}),
    case("varicella-day-after-36m", "varicella.eligible_age", BABY, doses("varicella", "2027-04-15"), "2027-05-01", OUT),
    # 日本脳炎
    case("je1-day-before-6m", "je1.eligible_age", CHILD, doses("japanese_encephalitis", "2019-12-08"), "2020-01-01", EARLY, series="je_1"),
    case("je1-primary-5-days", "je1.primary_interval", CHILD, doses("japanese_encephalitis", "2022-06-09", "2022-06-15"), "2022-07-01", V, SHORT),
    case("je1-primary-6-days", "je1.primary_interval", CHILD, doses("japanese_encephalitis", "2022-06-09", "2022-06-16"), "2022-07-01", V, V),
    case("je1-booster-short", "je1.booster_interval", CHILD,
         doses("japanese_encephalitis", "2022-06-09", "2022-06-16", "2022-12-15"), "2023-01-01", V, V, SHORT),
    case("je1-booster-forecast", "je1.booster_interval", CHILD, doses("japanese_encephalitis", "2022-06-09", "2022-06-16"), "2022-07-01",
         V, V, forecast="je_1",
         expect={"status": "upcoming", "next_dose": "追加", "earliest": d("2022-12-16"), "recommended": d("2023-06-16"), "latest": d("2026-12-09")}),
    case("je2-on-9y", "je2.eligible_age", CHILD,
         doses("japanese_encephalitis", "2022-06-09", "2022-06-16", "2023-06-16", "2028-06-09"), "2028-07-01", V, V, V, V,
         series="je_2", target="第2期"),
    case("je2-day-after-13y", "je2.eligible_age", CHILD,
         doses("japanese_encephalitis", "2022-06-09", "2022-06-16", "2023-06-16", "2032-06-10"), "2032-07-01", V, V, V, OUT, series="je_2"),
    case("je2-does-not-need-phase1", "je2.eligible_age", CHILD, doses("japanese_encephalitis", "2022-06-09", "2028-07-01"), "2028-08-01",
         V, V, series="je_2"),
    case("je-special-remaining-doses-6-days", "je.special_1995_2007", JE_SPECIAL,
         doses("japanese_encephalitis", "2004-05-01", "2018-01-10", "2018-01-16"), "2018-02-01", V, V, SHORT, series="je_1"),
    case("je-special-until-20", "je.special_1995_2007", JE_SPECIAL, doses("japanese_encephalitis", "2004-05-01", "2020-05-01"),
         "2020-06-01", V, OUT),
    case("je-special-fresh-start-keeps-intervals", "je.special_1995_2007", JE_SPECIAL,
         doses("japanese_encephalitis", "2016-01-01", "2016-01-08", "2016-03-01"), "2016-04-01", V, V, SHORT, cites="je1.booster_interval"),
    case("je-special-phase2-after-phase1", "je.special_phase2_after_phase1", JE_SPECIAL,
         doses("japanese_encephalitis", "2004-05-01", "2004-05-20", "2005-05-20", "2016-01-01"), "2016-02-01", V, V, V, V, series="je_2"),
    case("je-special-phase2-waits-for-phase1", "je.special_phase2_after_phase1", JE_SPECIAL,
         doses("japanese_encephalitis", "2004-05-01"), "2016-01-01", V, forecast="je_2", expect={"status": "upcoming", "earliest": None}),
    case("je-special-2007-cohort-phase1-at-9", "je.special_2007_2009", boy("2008-01-15"),
         doses("japanese_encephalitis", "2012-01-20", "2017-03-01"), "2017-04-01", V, V, series="je_1", target="初回2回目"),
    # 二種混合 第2期 (born 2012-05-10: 11歳 2023-05-09, 13歳 2025-05-09)
    case("dt2-day-before-11", "dt2.eligible_age", boy("2012-05-10"), doses("dt", "2023-05-08"), "2023-06-01", EARLY),
    case("dt2-on-13", "dt2.eligible_age", boy("2012-05-10"), doses("dt", "2025-05-09"), "2025-06-01", V),
    case("dt2-day-after-13", "dt2.eligible_age", boy("2012-05-10"), doses("dt", "2025-05-10"), "2025-06-01", OUT),
    # HPV
    case("hpv-day-before-fiscal-year-of-12", "hpv.eligible_age", GIRL_2011, doses("hpv", "2023-03-31", product="hpv9"), "2023-04-10", EARLY),
    case("hpv-first-day-of-fiscal-year-of-12", "hpv.eligible_age", GIRL_2011, doses("hpv", "2023-04-01", product="hpv9"), "2023-04-10", V),
    case("hpv-last-day-of-fiscal-year-of-16", "hpv.eligible_age", GIRL_2011, doses("hpv", "2028-03-31", product="hpv9"), "2028-04-10", V),
    case("hpv-after-fiscal-year-of-16", "hpv.eligible_age", GIRL_2011, doses("hpv", "2028-04-01", product="hpv9"), "2028-04-10", OUT),
    case("hpv-boys-not-routine", "hpv.eligible_age", boy("2011-06-01"), doses("hpv", "2024-04-10", product="hpv9"), "2024-05-01",
         NOT_ELIGIBLE, forecast="hpv", expect={"status": "not_eligible"}),
    case("hpv9-two-doses-complete", "hpv9.two_dose_under_15", GIRL_2011, doses("hpv", "2024-04-10", "2024-10-10", product="hpv9"),
         "2024-11-01", V, V, forecast="hpv", expect={"status": "complete", "plan": "hpv.hpv9_two_dose"}),
    case("hpv9-exactly-5-months", "hpv9.two_dose_under_15", GIRL_2011, doses("hpv", "2024-04-10", "2024-09-10", product="hpv9"),
         "2024-11-01", V, V, forecast="hpv", expect={"status": "complete"}),
    case("hpv9-second-too-soon-needs-third", "hpv9.two_dose_under_15", GIRL_2011, doses("hpv", "2024-04-10", "2024-08-10", product="hpv9"),
         "2024-12-01", V, V, forecast="hpv",
         expect={"status": "due", "next_dose": "3回目", "earliest": d("2024-11-10"), "latest": d("2028-03-31")}),
    case("hpv9-first-on-15th-birthday-eve", "hpv9.two_dose_under_15", GIRL_2011, doses("hpv", "2026-05-31", product="hpv9"), "2026-06-10",
         V, plan="hpv.hpv9_two_dose"),
    case("hpv9-first-after-15", "hpv9.three_dose_intervals", GIRL_2011, doses("hpv", "2026-06-01", product="hpv9"), "2026-06-10",
         V, plan="hpv.hpv9_three_dose"),
    case("hpv9-third-short", "hpv9.three_dose_intervals", GIRL_2011, doses("hpv", "2026-06-01", "2026-07-01", "2026-09-30", product="hpv9"),
         "2026-10-10", V, V, SHORT),
    case("hpv2-third-before-5-months", "hpv2.intervals", GIRL_2011, doses("hpv", "2024-04-01", "2024-05-01", "2024-08-31", product="hpv2"),
         "2024-09-10", V, V, SHORT),
    case("hpv2-half-month-short", "hpv2.intervals", GIRL_2011, doses("hpv", "2024-01-01", "2024-06-20", "2024-09-04", product="hpv2"),
         "2024-09-10", V, V, SHORT),
    case("hpv2-half-month-enough", "hpv2.intervals", GIRL_2011, doses("hpv", "2024-01-01", "2024-06-20", "2024-09-05", product="hpv2"),
         "2024-09-10", V, V, V, forecast="hpv", expect={"status": "complete"}),
    case("hpv-complete-with-9", "hpv.same_product", GIRL_2011, (dose("hpv", "2024-04-10", "hpv4"), dose("hpv", "2024-06-10", "hpv9")),
         "2024-07-01", V, V, plan="hpv.hpv4"),
    case("hpv-no-switch-away-from-9", "hpv.same_product", GIRL_2011, (dose("hpv", "2024-04-10", "hpv9"), dose("hpv", "2024-06-10", "hpv4")),
         "2024-07-01", V, WRONG),
    case("hpv-catch-up", "hpv.catch_up", girl("2000-07-01"), doses("hpv", "2023-05-01", product="hpv9"), "2023-06-01", V),
    case("hpv-catch-up-extension", "hpv.catch_up_extension", girl("2000-07-01"), doses("hpv", "2025-02-01", "2025-06-01", product="hpv9"),
         "2025-07-01", V, V),
    case("hpv-no-extension-without-a-dose", "hpv.catch_up_extension", girl("2000-07-01"), doses("hpv", "2025-06-01", product="hpv9"),
         "2025-07-01", OUT, cites="hpv.catch_up"),
    case("hpv-extension-ends-march-2026", "hpv.catch_up_extension", girl("2000-07-01"),
         doses("hpv", "2025-02-01", "2025-03-05", "2026-04-01", product="hpv9"), "2026-04-10", V, V, OUT),
    case("hpv-catch-up-closed", "hpv.catch_up", girl("2008-05-01"), (), "2025-06-01", forecast="hpv", expect={"status": "aged_out"}),
    case("hpv-forecast", "hpv.standard_age", GIRL_2011, (), "2023-01-01", forecast="hpv",
         expect={"status": "upcoming", "plan": "hpv.hpv9_two_dose", "earliest": d("2023-04-01"), "recommended": d("2024-04-01"),
                 "latest": d("2028-03-31")}),
    # 高齢者インフルエンザ
    case("flu-day-before-65", "influenza.eligible_age", SENIOR, doses("influenza_elderly", "2024-10-08"), "2024-11-01", EARLY),
    case("flu-on-65", "influenza.eligible_age", SENIOR, doses("influenza_elderly", "2024-10-09"), "2024-11-01", V),
    case("flu-twice-in-a-fiscal-year", "influenza.once_per_fiscal_year", SENIOR,
         doses("influenza_elderly", "2024-10-15", "2025-01-10", "2025-10-10"), "2025-11-01", V, TOO_MANY, V),
    case("flu-60-with-disability", "influenza.eligible_age", boy("1962-01-01", heart_kidney_respiratory_disability=True),
         doses("influenza_elderly", "2024-11-01"), "2024-12-01", V),
    case("flu-60-without-disability", "influenza.eligible_age", boy("1962-01-01"), doses("influenza_elderly", "2024-11-01"), "2024-12-01",
         EARLY),
    case("flu-forecast-this-season", "influenza.standard_season", boy("1954-01-01"), (), "2024-08-01", forecast="influenza_elderly",
         expect={"status": "due", "earliest": d("2024-04-01"), "recommended": d("2024-10-01"), "latest": d("2025-03-31")}),
    case("flu-forecast-next-season", "influenza.once_per_fiscal_year", boy("1954-01-01"), doses("influenza_elderly", "2024-10-15"),
         "2024-11-01", V, forecast="influenza_elderly",
         expect={"status": "upcoming", "earliest": d("2025-04-01"), "recommended": d("2025-10-01"), "latest": d("2026-03-31")}),
    # 高齢者肺炎球菌
    case("ppsv-on-66", "ppsv.eligible_age", SENIOR, doses("pneumococcal_elderly", "2025-10-09"), "2025-11-01", V),
    case("ppsv-day-after-66", "ppsv.eligible_age", SENIOR, doses("pneumococcal_elderly", "2025-10-10"), "2025-11-01", OUT),
    case("ppsv-after-voluntary-dose", "ppsv.no_prior_ppsv23", SENIOR, doses("pneumococcal_elderly", "2023-01-01", "2024-11-01"),
         "2024-12-01", EARLY, NOT_ELIGIBLE),
    case("ppsv-declared-prior-dose", "ppsv.no_prior_ppsv23", boy("1959-10-10", prior_courses=frozenset({"pneumococcal_elderly"})), (),
         "2024-11-01", forecast="pneumococcal_elderly", expect={"status": "not_eligible"}),
    case("ppsv-second-dose", "ppsv.single_dose", SENIOR, doses("pneumococcal_elderly", "2024-11-01", "2025-01-01"), "2025-02-01", V, TOO_MANY),
    # 帯状疱疹
    case("zoster-turns-65-on-1-april", "zoster.eligible_age", boy("1960-04-02"), doses("herpes_zoster", "2025-04-01", product="zoster_recombinant"),
         "2025-04-10", V),
    case("zoster-turned-65-on-31-march", "zoster.transitional", boy("1960-04-01"),
         doses("herpes_zoster", "2025-05-01", product="zoster_recombinant"), "2025-05-10", EARLY, forecast="herpes_zoster",
         expect={"status": "upcoming", "earliest": d("2029-04-01"), "latest": d("2030-03-31")}),
    case("zoster-transitional-70", "zoster.transitional", boy("1955-06-01"), doses("herpes_zoster", "2025-06-01", product="zoster_live"),
         "2025-07-01", V),
    case("zoster-over-100-in-2025", "zoster.transitional", boy("1925-01-01"), doses("herpes_zoster", "2025-06-01", product="zoster_live"),
         "2025-07-01", V),
    case("zoster-over-100-only-in-2025", "zoster.transitional", boy("1925-01-01"), doses("herpes_zoster", "2026-04-02", product="zoster_live"),
         "2026-05-01", OUT),
    case("zoster-recombinant-short", "zoster.recombinant_interval", boy("1960-04-02"),
         doses("herpes_zoster", "2025-04-10", "2025-06-09", product="zoster_recombinant"), "2025-07-01", V, SHORT),
    case("zoster-recombinant-physician", "zoster.recombinant_interval", boy("1960-04-02"),
         (dose("herpes_zoster", "2025-04-10", "zoster_recombinant"), dose("herpes_zoster", "2025-05-10", "zoster_recombinant", physician=True)),
         "2025-07-01", V, V, forecast="herpes_zoster", expect={"status": "complete"}),
    case("zoster-mixed-vaccines", "zoster.same_product", boy("1960-04-02"),
         (dose("herpes_zoster", "2025-04-10", "zoster_live"), dose("herpes_zoster", "2025-06-10", "zoster_recombinant")), "2025-07-01", V, WRONG),
    case("zoster-after-private-course", "zoster.no_prior_course", boy("1960-04-02"),
         (dose("herpes_zoster", "2023-05-01", "zoster_live"), dose("herpes_zoster", "2025-05-01", "zoster_recombinant")), "2025-06-01",
         "before_programme_start", NOT_ELIGIBLE),
    case("zoster-hiv-60-to-64", "zoster.eligible_age", boy("1963-01-01", hiv_immune_disability=True),
         doses("herpes_zoster", "2025-05-01", product="zoster_recombinant"), "2025-06-01", V),
    case("zoster-forecast", "zoster.eligible_age", boy("1960-04-02"), (), "2025-04-01", forecast="herpes_zoster",
         expect={"status": "due", "earliest": d("2025-04-01"), "latest": d("2026-03-31")}),
    # Different injected live vaccines (MR 1期 on 生後12月 2025-04-14; 27 days → from 2025-05-12)
    case("live-vaccines-26-days-apart", "schedule.live_vaccine_spacing", BABY, (dose("mr", "2025-04-14"), dose("varicella", "2025-05-11")),
         "2025-06-01", V, SHORT),
    case("live-vaccines-27-days-apart", "schedule.live_vaccine_spacing", BABY, (dose("mr", "2025-04-14"), dose("varicella", "2025-05-12")),
         "2025-06-01", V, V),
    case("live-vaccines-same-day", "schedule.live_vaccine_spacing", BABY, (dose("mr", "2025-04-14"), dose("varicella", "2025-04-14")),
         "2025-06-01", V, V),
    case("inactivated-after-live-needs-no-gap", "schedule.live_vaccine_spacing", BABY,
         (dose("mr", "2025-04-14"), dose("pcv_pediatric", "2025-04-15")), "2025-06-01", V, V),
    # Data errors
    case("dose-after-evaluation-date", "schedule.recorded_dose_dates", BABY, doses("bcg", "2024-09-20"), "2024-09-01", "date_error"),
    case("unknown-vaccine", "schedule.outside_eligible_range", BABY, doses("covid19", "2024-09-20"), "2024-10-01", "unknown_vaccine"),
]


def test_the_table_is_large_and_its_ids_unique():
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)


def test_every_series_is_exercised_by_the_table():
    touched = set()
    for c in CASES:
        evaluation = evaluate(c.person, c.doses, c.as_of)
        touched.update(e.series for e in evaluation.doses if e.series)
        if c.forecast:
            touched.add(c.forecast)
    assert touched == {s.id for s in SCHEDULE.series}


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_schedule_case(c: Case):
    assert c.rule in SCHEDULE.rules, f"unknown rule {c.rule}"
    evaluation = evaluate(c.person, c.doses, c.as_of)
    got = tuple("valid" if e.valid else e.reasons[0].code for e in evaluation.doses)
    assert got == c.verdicts
    if c.doses:
        last = evaluation.doses[-1]
        if not last.valid:
            assert last.reasons[0].rule == (c.cites or c.rule)
        if c.series:
            assert last.series == c.series
        if c.target:
            assert last.target == c.target
        if c.plan:
            assert last.plan == c.plan
        if c.warnings is not None:
            assert tuple(w.code for w in last.warnings) == c.warnings
            assert all(w.rule == c.rule for w in last.warnings)
    if c.forecast:
        forecast = evaluation.forecast(c.forecast)
        for key, value in c.expect.items():
            assert getattr(forecast, key) == value, key
        if forecast.status != "complete":
            assert c.rule in forecast.rules


# ---------------------------------------------------------------------------------------------
# Date arithmetic (年齢計算ニ関スル法律, 接種間隔の解釈)


@pytest.mark.parametrize(
    ("born", "age", "attained"),
    [
        ("2020-04-01", "1y", "2021-03-31"),  # 事務連絡の例: 令和2年4月1日生まれ → 令和3年3月31日に1歳
        ("2024-07-31", "2m", "2024-09-30"),  # Q&A の例: 7月31日生まれは9月30日に生後2月
        ("2024-03-31", "2m", "2024-05-30"),
        ("2020-02-29", "1y", "2021-02-28"),  # no 29 February: the month's last day
        ("2024-04-15", "6w0d", "2024-05-27"),  # birth + 42 days
        ("2024-04-15", "14w6d", "2024-07-28"),  # birth + 104 days
        ("2019-06-10", "90m", "2026-12-09"),
    ],
)
def test_age_is_attained_the_day_before(born, age, attained):
    assert attained_on(d(born), Period.parse(age)) == d(attained)


@pytest.mark.parametrize(
    ("previous", "interval", "earliest"),
    [
        ("2024-06-14", "27d", "2024-07-12"),  # the same weekday four weeks later
        ("2024-06-14", "20d", "2024-07-05"),
        ("2024-06-14", "139d", "2024-11-01"),
        ("2023-04-01", "3m", "2023-07-01"),  # 部会資料の例
        ("2022-11-30", "3m", "2023-03-01"),  # no 30 February: from 1 March
        ("2023-04-01", "2m+half", "2023-06-16"),  # 部会資料の例: June has 30 days → +15
        ("2024-06-20", "2m+half", "2024-09-05"),  # August has 31 days → +16
        ("2023-12-01", "2m+half", "2024-02-16"),  # February 2024 has 29 days → +15
        ("2022-12-01", "2m+half", "2023-02-15"),  # February 2023 has 28 days → +14
    ],
)
def test_minimum_interval(previous, interval, earliest):
    assert earliest_after(d(previous), Period.parse(interval)) == d(earliest)


@pytest.mark.parametrize(
    ("born", "start"), [("2019-04-01", "2025-04-01"), ("2019-04-02", "2026-04-01"), ("2018-12-31", "2025-04-01")]
)
def test_school_start(born, start):
    assert school_start(d(born)) == d(start)


def test_fiscal_year_turns_on_1_april():
    assert fiscal_year(d("2025-03-31")) == 2024
    assert fiscal_year(d("2025-04-01")) == 2025


@pytest.mark.parametrize("text", ["", "2x", "m", "1y2", "half"])
def test_bad_periods_are_refused(text):
    with pytest.raises(ValueError):
        Period.parse(text)


# ---------------------------------------------------------------------------------------------
# Properties and data


def test_input_order_does_not_change_verdicts():
    history = list(doses("hib", "2024-06-14", "2024-07-11", "2024-07-12", "2025-03-09")) + list(
        doses("japanese_encephalitis", "2022-06-09")
    )
    first = evaluate(BABY, history, d("2025-04-01"))
    shuffled = history[:]
    random.Random(7).shuffle(shuffled)
    second = evaluate(BABY, shuffled, d("2025-04-01"))
    by_dose = {e.dose: (e.valid, e.target, e.reasons) for e in first.doses}
    assert {e.dose: (e.valid, e.target, e.reasons) for e in second.doses} == by_dose
    assert first.forecasts == second.forecasts
    assert [e.dose for e in second.doses] == shuffled  # reported in input order


def test_evaluation_is_deterministic():
    history = doses("pcv_pediatric", "2024-06-14", "2024-07-12", product="pcv20")
    assert evaluate(BABY, history, d("2024-08-01")) == evaluate(BABY, history, d("2024-08-01"))


def test_voluntary_doses_are_told_apart_from_mistakes():
    evaluation = evaluate(BABY, doses("hib", "2024-06-14", "2024-06-20", "2029-04-15"), d("2029-05-01"))
    assert [e.voluntary for e in evaluation.doses] == [False, False, True]


def test_every_rule_has_a_source():
    for rule in SCHEDULE.rules.values():
        assert rule.sources and all(rule.sources), rule.id


def _raw() -> dict:
    text = resources.files("services.health_mgmt").joinpath("data").joinpath("routine_schedule.json").read_text(encoding="utf-8")
    return json.loads(text)


def test_a_reference_to_an_undefined_rule_is_refused():
    data = _raw()
    data["series"][0]["windows"][0]["rule"] = "nowhere.rule"
    with pytest.raises(ValueError, match="nowhere.rule"):
        schedule_from_dict(data)


def test_an_unknown_person_flag_is_refused():
    data = copy.deepcopy(_raw())
    flu = next(s for s in data["series"] if s["id"] == "influenza_elderly")
    flu["windows"][1]["requires_any_flag"] = ["retired"]
    with pytest.raises(ValueError, match="retired"):
        schedule_from_dict(data)


# ---------------------------------------------------------------------------------------------
# Invariants over arbitrary histories

_PRODUCTS = {code: (None, *sorted(v.products)) for code, v in SCHEDULE.vaccines.items()}
_MAX_DOSES = {s.id: max(len(p.doses) for p in s.plans) for s in SCHEDULE.series if not s.per_fiscal_year}


@st.composite
def histories(draw):
    born = draw(st.dates(min_value=date(1925, 1, 1), max_value=date(2025, 1, 1)))
    person = Person(
        born,
        draw(st.sampled_from(("F", "M"))),
        heart_kidney_respiratory_disability=draw(st.booleans()),
        hiv_immune_disability=draw(st.booleans()),
    )
    as_of = draw(st.dates(min_value=born, max_value=date(2031, 3, 31)))
    vaccine = st.sampled_from(sorted(_PRODUCTS))
    history = []
    for _ in range(draw(st.integers(0, 12))):
        code = draw(vaccine)
        day = draw(st.dates(min_value=born, max_value=as_of + (as_of - born) // 20))
        history.append(RecordedDose(code, day, draw(st.sampled_from(_PRODUCTS[code])), draw(st.booleans())))
    return person, history, as_of


@settings(max_examples=400, deadline=None)
@given(histories())
def test_invariants_hold_for_any_history(case_data):
    person, history, as_of = case_data
    evaluation = evaluate(person, history, as_of)
    assert [e.dose for e in evaluation.doses] == history
    counted: dict[str, int] = {}
    for judged in evaluation.doses:
        assert judged.valid == (not judged.reasons)
        if judged.valid:
            assert person.birth_date <= judged.dose.date <= as_of
            counted[judged.series] = counted.get(judged.series, 0) + 1
    for series, count in counted.items():
        if series in _MAX_DOSES:
            assert count <= _MAX_DOSES[series]
    for forecast in evaluation.forecasts:
        assert forecast.status in {"due", "upcoming", "complete", "aged_out", "not_eligible", "not_applicable"}
        if forecast.status in ("due", "upcoming") and forecast.earliest is not None:
            assert forecast.earliest <= forecast.recommended <= forecast.latest
        if forecast.status == "due":
            assert forecast.earliest <= as_of <= forecast.latest
