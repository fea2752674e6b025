"""The register's record types (別添2) and the checks a dose record must pass (M02, M04)."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal
from importlib import resources

import pytest

from services.health_mgmt.catalogue import (
    RecordRejected,
    UnknownRecordType,
    catalogue_from_dict,
    load_catalogue,
)
from services.health_mgmt.schedule import load_schedule

# The lists exactly as 別添2 of the assessment prints them (labels, in order).
COMMON_LABELS = [
    "接種日", "接種場所", "接種時年齢", "請求年月", "診察区分", "ＬＯＴ－ＮＯ", "転入前接種", "予診医師名", "接種医師名",
    "公費自費区分", "委託料", "接種量", "接種番号", "体温", "製薬会社", "備考", "整理番号", "備考１", "備考２", "備考３",
]
ASSESSMENT_LABELS = {
    "tuberculin": [
        "接種日", "接種場所", "接種時年齢", "転入前接種", "請求年月", "接種番号", "診察区分", "体温", "接種量", "予診医師名",
        "接種医師名", "製薬会社", "ＬＯＴ－ＮＯ", "備考", "整理番号", "公費自費区分", "委託料", "判定", "判定補足", "長径",
    ],
    "hib": [
        "接種日", "接種場所", "接種時年齢", "請求年月", "診察区分", "ＬＯＴ－ＮＯ", "初回接種年月日", "初回接種年齢区分", "転入前接種",
        "予診医師名", "接種医師名", "公費自費区分", "委託料", "接種量", "接種番号", "体温", "製薬会社", "備考", "整理番号",
        "備考１", "備考２", "備考３",
    ],
    "hpv": [
        "接種日", "接種場所", "接種時年齢", "請求年月", "診察区分", "ＬＯＴ－ＮＯ", "ワクチン", "転入前接種", "予診医師名", "接種医師名",
        "公費自費区分", "委託料", "接種量", "接種番号", "体温", "製薬会社", "備考", "整理番号", "備考１", "備考２", "備考３",
    ],
    "influenza_elderly": [
        "年度", "接種日", "医療機関名", "接種時年齢", "回数", "市外受診区分", "請求年月", "診察区分", "ＬＯＴ－ＮＯ", "自己負担額",
        "身体障害者手帳１級", "該当理由", "台帳表示項目",
    ],
    "pneumococcal_elderly": [
        "年度", "接種日", "医療機関名", "接種時年齢", "過去に接種したことがあるか", "過去の接種日", "過去のワクチン名", "市外受診区分",
        "身体障害者手帳１級", "該当理由", "請求年月", "診察区分", "接種ワクチン名", "ＬＯＴ－ＮＯ", "接種部位", "自己負担額", "台帳表示項目",
    ],
    "rubella_antibody_test": [
        "検査日", "接種場所", "検査時年齢", "抗体価", "単位", "抗体価単位", "判定結果", "検査番号", "備考", "請求年月", "委託料",
        "データ更新日",
    ],
    "rubella_adult_male": [
        "接種日", "接種場所", "接種時年齢", "診察区分", "ＬＯＴ－ＮＯ", "転入前接種", "予診医師名", "接種医師名", "公費自費区分", "委託料",
        "接種量", "接種番号", "体温", "製薬会社", "備考", "整理番号", "備考１", "備考２", "備考３",
    ],
    "rotavirus": [
        "接種日", "接種場所", "接種時年齢", "請求年月", "診察区分", "ＬＯＴ－ＮＯ", "ワクチン", "転入前接種", "予診医師名", "接種医師名",
        "公費自費区分", "委託料", "接種量", "備考１", "備考２", "備考３",
    ],
}
COMMON_TYPES = ["live_polio", "japanese_encephalitis", "dt", "dpt", "bcg", "measles", "rubella", "mr", "ipv", "dpt_ipv", "varicella"]


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


def _raw() -> dict:
    text = resources.files("services.health_mgmt").joinpath("data").joinpath("vaccine_types.json").read_text(encoding="utf-8")
    return json.loads(text)


def bcg_record(**changes):
    record = {
        "inoculation_date": "2024-09-20",
        "inoculation_place": "越谷市保健センター",
        "age_at_inoculation": "0歳5か月",
        "billing_month": "2024-10",
        "examination_type": "inoculated",
        "lot_number": "KH-123",
        "vaccinated_before_move_in": False,
        "funding_type": "public",
        "commission_fee_yen": 8500,
        "dose_volume_ml": "0.03",
        "body_temperature_c": 36.8,
        "reference_number": "R0001",
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not None}


def test_all_twenty_one_record_types_of_the_assessment_in_its_order(catalogue):
    assert catalogue.codes == (
        "live_polio", "japanese_encephalitis", "dt", "dpt", "bcg", "measles", "rubella", "mr", "tuberculin", "hib",
        "pcv_pediatric", "hpv", "ipv", "dpt_ipv", "influenza_elderly", "pneumococcal_elderly", "varicella", "hepatitis_b",
        "rubella_antibody_test", "rubella_adult_male", "rotavirus",
    )


@pytest.mark.parametrize("code", COMMON_TYPES)
def test_most_types_record_the_common_twenty_items(catalogue, code):
    assert [i.label_ja for i in catalogue.record_type(code).items] == COMMON_LABELS


@pytest.mark.parametrize("code", sorted(ASSESSMENT_LABELS))
def test_variant_types_follow_the_assessment_list(catalogue, code):
    assert [i.label_ja for i in catalogue.record_type(code).items] == ASSESSMENT_LABELS[code]


def test_hib_and_pcv_share_the_first_dose_items_but_not_their_age_bands(catalogue):
    assert catalogue.record_type("pcv_pediatric").item_codes == catalogue.record_type("hib").item_codes
    hib_bands = set(catalogue.record_type("hib").item("first_dose_age_band").allowed)
    pcv_bands = set(catalogue.record_type("pcv_pediatric").item("first_dose_age_band").allowed)
    assert "12_to_60_months" in hib_bands and "12_to_60_months" not in pcv_bands
    assert {"12_to_24_months", "24_to_60_months"} <= pcv_bands


def test_page_break_items_are_marked_inferred(catalogue):
    assert catalogue.record_type("hib").inferred_items == {"inoculation_date", "inoculation_place", "age_at_inoculation"}
    assert catalogue.record_type("bcg").inferred_items == frozenset()


def test_vaccine_item_allows_each_types_own_products(catalogue):
    assert set(catalogue.record_type("hpv").item("vaccine_product").allowed) == {"hpv2", "hpv4", "hpv9"}
    assert set(catalogue.record_type("rotavirus").item("vaccine_product").allowed) == {"rota1", "rota5"}
    ok = catalogue.validate("rotavirus", {"inoculation_date": "2024-07-01", "examination_type": "inoculated", "vaccine_product": "rota5"})
    assert ok.ok
    bad = catalogue.validate("rotavirus", {"inoculation_date": "2024-07-01", "examination_type": "inoculated", "vaccine_product": "hpv9"})
    assert [(e.field, e.code) for e in bad.errors] == [("vaccine_product", "not_allowed")]


def test_schedule_vaccines_point_at_record_types_with_the_same_products(catalogue):
    schedule = load_schedule()
    unlinked = {code for code, v in schedule.vaccines.items() if v.record_type is None}
    assert unlinked == {"dpt_ipv_hib", "herpes_zoster"}  # introduced after the assessment (2024-04, 2025-04)
    for vaccine in schedule.vaccines.values():
        if vaccine.record_type is None:
            continue
        rtype = catalogue.record_type(vaccine.record_type)
        if "vaccine_product" in rtype.item_codes and vaccine.product_required:
            assert set(rtype.item("vaccine_product").allowed) == set(vaccine.products)


def test_a_full_valid_record_is_parsed_to_typed_values(catalogue):
    values = catalogue.parse("bcg", bcg_record())
    assert values["inoculation_date"] == date(2024, 9, 20)
    assert values["dose_volume_ml"] == Decimal("0.03")
    assert values["body_temperature_c"] == Decimal("36.8")
    assert values["commission_fee_yen"] == 8500
    assert values["vaccinated_before_move_in"] is False


def test_absent_optional_items_are_simply_not_recorded(catalogue):
    values = catalogue.parse("bcg", {"inoculation_date": date(2024, 9, 20), "examination_type": "screening_only", "remarks": ""})
    assert set(values) == {"inoculation_date", "examination_type"}


def test_unknown_item_is_refused_m04(catalogue):
    result = catalogue.validate("bcg", bcg_record(my_number="123456789018"))
    assert [(e.field, e.code) for e in result.errors] == [("my_number", "unknown_item")]


def test_an_item_of_another_type_is_refused_m04(catalogue):
    result = catalogue.validate("bcg", bcg_record(vaccine_product="hpv9", fiscal_year=2024))
    assert sorted((e.field, e.code) for e in result.errors) == [("fiscal_year", "unknown_item"), ("vaccine_product", "unknown_item")]


def test_missing_required_items_are_named(catalogue):
    result = catalogue.validate("bcg", {"inoculation_place": "越谷市保健センター"})
    assert sorted((e.field, e.code) for e in result.errors) == [("examination_type", "missing"), ("inoculation_date", "missing")]


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        pytest.param("inoculation_date", "2024/09/20", "wrong_type", id="date-slashes"),
        pytest.param("inoculation_date", "2024-02-30", "wrong_type", id="date-not-in-calendar"),
        pytest.param("inoculation_date", "20240920", "wrong_type", id="date-basic-format"),
        pytest.param("billing_month", "2024-13", "wrong_type", id="month-13"),
        pytest.param("commission_fee_yen", True, "wrong_type", id="bool-is-not-int"),
        pytest.param("commission_fee_yen", "8,500", "wrong_type", id="int-with-comma"),
        pytest.param("commission_fee_yen", -1, "below_minimum", id="fee-negative"),
        pytest.param("commission_fee_yen", 100001, "above_maximum", id="fee-too-high"),
        pytest.param("dose_volume_ml", "0.005", "too_many_decimals", id="volume-three-places"),
        pytest.param("dose_volume_ml", "2.01", "above_maximum", id="volume-too-much"),
        pytest.param("body_temperature_c", 33.9, "below_minimum", id="temperature-low"),
        pytest.param("body_temperature_c", "36.55", "too_many_decimals", id="temperature-two-places"),
        pytest.param("body_temperature_c", "hot", "wrong_type", id="temperature-text"),
        pytest.param("inoculation_place", "あ" * 61, "too_long", id="place-61-chars"),
        pytest.param("inoculation_place", "越谷\n市", "bad_format", id="control-character"),
        pytest.param("lot_number", "KH 123", "bad_format", id="lot-with-space"),
        pytest.param("age_at_inoculation", "5か月", "bad_format", id="age-without-years"),
        pytest.param("funding_type", "free", "not_allowed", id="funding-unknown-code"),
        pytest.param("vaccinated_before_move_in", "yes", "wrong_type", id="bool-as-text"),
    ],
)
def test_wrong_values_are_refused_with_a_reason_m02(catalogue, field, value, code):
    result = catalogue.validate("bcg", bcg_record(**{field: value}))
    assert [(e.field, e.code) for e in result.errors] == [(field, code)]
    assert result.errors[0].message.startswith(catalogue.record_type("bcg").item(field).label_ja)


def test_limits_themselves_are_accepted(catalogue):
    record = bcg_record(commission_fee_yen=100000, dose_volume_ml="2.00", body_temperature_c="34.0", inoculation_place="あ" * 60)
    assert catalogue.validate("bcg", record).ok


def test_billing_month_cannot_precede_the_inoculation(catalogue):
    assert catalogue.validate("bcg", bcg_record(billing_month="2024-09")).ok
    result = catalogue.validate("bcg", bcg_record(billing_month="2024-08"))
    assert [(e.field, e.code) for e in result.errors] == [("billing_month", "inconsistent")]


@pytest.mark.parametrize(
    ("temperature", "examination", "ok"),
    [("37.4", "inoculated", True), ("37.5", "inoculated", False), ("38.2", "screening_only", True)],
)
def test_fever_excludes_vaccination(catalogue, temperature, examination, ok):
    result = catalogue.validate("bcg", bcg_record(body_temperature_c=temperature, examination_type=examination))
    assert result.ok is ok
    if not ok:
        assert [(e.field, e.code) for e in result.errors] == [("body_temperature_c", "inconsistent")]


def test_first_dose_date_cannot_follow_this_dose(catalogue):
    base = {"inoculation_date": "2024-08-01", "examination_type": "inoculated", "first_dose_age_band": "2_to_7_months"}
    assert catalogue.validate("hib", {**base, "first_dose_date": "2024-06-14"}).ok
    result = catalogue.validate("hib", {**base, "first_dose_date": "2024-08-02"})
    assert [(e.field, e.code) for e in result.errors] == [("first_dose_date", "inconsistent")]


def test_age_band_must_belong_to_the_type(catalogue):
    result = catalogue.validate("hib", {"inoculation_date": "2024-08-01", "examination_type": "inoculated", "first_dose_age_band": "24_to_60_months"})
    assert [(e.field, e.code) for e in result.errors] == [("first_dose_age_band", "not_allowed")]


def test_fiscal_year_must_be_that_of_the_inoculation(catalogue):
    base = {"inoculation_date": "2025-03-31", "examination_type": "inoculated", "eligibility_reason": "age"}
    assert catalogue.validate("influenza_elderly", {**base, "fiscal_year": 2024}).ok
    result = catalogue.validate("influenza_elderly", {**base, "fiscal_year": 2025})
    assert [(e.field, e.code) for e in result.errors] == [("fiscal_year", "inconsistent")]


def test_previous_pneumococcal_dose_needs_a_consistent_history(catalogue):
    base = {"fiscal_year": 2024, "inoculation_date": "2024-11-01", "examination_type": "inoculated"}
    good = {**base, "previously_vaccinated": True, "previous_inoculation_date": "2019-10-01"}
    assert catalogue.validate("pneumococcal_elderly", good).ok
    unflagged = catalogue.validate("pneumococcal_elderly", {**base, "previous_inoculation_date": "2019-10-01"})
    assert [(e.field, e.code) for e in unflagged.errors] == [("previous_inoculation_date", "inconsistent")]
    later = catalogue.validate("pneumococcal_elderly", {**good, "previous_inoculation_date": "2024-11-01"})
    assert [(e.field, e.code) for e in later.errors] == [("previous_inoculation_date", "inconsistent")]


def test_antibody_test_record(catalogue):
    record = {"test_date": "2024-06-03", "antibody_titer": "8", "unit": "HI", "antibody_titer_unit": "倍", "test_judgement": "low",
              "billing_month": "2024-06", "data_updated_on": "2024-06-10"}
    assert catalogue.validate("rubella_antibody_test", record).ok
    result = catalogue.validate("rubella_antibody_test", {**record, "data_updated_on": "2024-06-02", "inoculation_date": "2024-06-03"})
    assert sorted((e.field, e.code) for e in result.errors) == [("inoculation_date", "unknown_item"), ("test_date", "inconsistent")]


def test_adult_male_rubella_has_no_billing_month(catalogue):
    result = catalogue.validate("rubella_adult_male", {"inoculation_date": "2024-06-03", "examination_type": "inoculated", "billing_month": "2024-06"})
    assert [(e.field, e.code) for e in result.errors] == [("billing_month", "unknown_item")]


def test_parse_raises_a_422_problem_listing_every_field(catalogue):
    with pytest.raises(RecordRejected) as caught:
        catalogue.parse("bcg", bcg_record(body_temperature_c="50", shoe_size=23))
    problem = caught.value.to_dict()
    assert problem["status"] == 422
    assert problem["record_type"] == "bcg"
    assert sorted(e["field"] for e in problem["errors"]) == ["body_temperature_c", "shoe_size"]


def test_unknown_record_type_is_not_found(catalogue):
    with pytest.raises(UnknownRecordType) as caught:
        catalogue.validate("covid19", {})
    assert caught.value.status == 404


def test_data_errors_are_caught_when_loading():
    data = _raw()
    twice = copy.deepcopy(data)
    twice["record_types"][0] = {"code": "x", "name_ja": "x", "items": ["inoculation_date", "inoculation_date"]}
    with pytest.raises(ValueError, match="listed twice"):
        catalogue_from_dict(twice)
    bad_type = copy.deepcopy(data)
    bad_type["items"]["remarks"]["type"] = "string"
    with pytest.raises(ValueError, match="unknown type"):
        catalogue_from_dict(bad_type)
    bad_subset = copy.deepcopy(data)
    bad_subset["record_types"][9]["overrides"]["first_dose_age_band"]["allowed_subset"].append("0_to_2_months")
    with pytest.raises(ValueError, match="unknown codes"):
        catalogue_from_dict(bad_subset)
