"""Logical checks on identifying items (M02): check digits, formats, dates, names."""

from __future__ import annotations

import random
import re
from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.ids import (
    InvalidIdentifier,
    Reason,
    generate_my_number,
    generate_resident_code,
    is_valid_local_government_code,
    is_valid_my_number,
    is_valid_resident_code,
    local_government_code,
    local_government_code_check_digit,
    my_number_check_digit,
    resident_code_check_digit,
    validate_birth_date,
    validate_local_government_code,
    validate_my_number,
    validate_name,
    validate_resident_code,
)

# Numbers published as examples outside this project (articles on the check digit and a
# sample 住民票), so the rule is checked against more than its own implementation.
PUBLISHED_MY_NUMBERS = ["123456789018", "983205673214", "379474484458", "454972364860", "507957100721"]
PUBLISHED_RESIDENT_CODES = ["24727059608", "24846016224", "25208017643"]
# 越谷市, 草加市, 新宿区 (remainder 0 → 1), 渋谷区 (remainder 1 → 0), 札幌市, 東京都, 大阪市.
PUBLISHED_LOCAL_GOVERNMENT_CODES = ["112224", "112216", "131041", "131130", "011002", "130001", "271004"]

# The statutory weights written out, counted from the lowest digit of the body.
PERSONAL_WEIGHTS_FROM_LOWEST = [2, 3, 4, 5, 6, 7, 2, 3, 4, 5, 6]
LOCAL_GOVERNMENT_WEIGHTS = [6, 5, 4, 3, 2]


def personal_remainder(body: str) -> int:
    return sum(int(d) * w for d, w in zip(reversed(body), PERSONAL_WEIGHTS_FROM_LOWEST)) % 11


def local_government_remainder(body: str) -> int:
    return sum(int(d) * w for d, w in zip(body, LOCAL_GOVERNMENT_WEIGHTS)) % 11


# --- known-good values --------------------------------------------------------------


@pytest.mark.parametrize("number", PUBLISHED_MY_NUMBERS)
def test_published_my_numbers_are_valid(number):
    assert validate_my_number(number) == number
    assert is_valid_my_number(number)


@pytest.mark.parametrize("code", PUBLISHED_RESIDENT_CODES)
def test_published_resident_codes_are_valid(code):
    assert validate_resident_code(code) == code
    assert is_valid_resident_code(code)


@pytest.mark.parametrize("code", PUBLISHED_LOCAL_GOVERNMENT_CODES)
def test_published_local_government_codes_are_valid(code):
    assert validate_local_government_code(code) == code
    assert is_valid_local_government_code(code)


def test_check_digits_from_bodies():
    assert my_number_check_digit("12345678901") == 8
    assert resident_code_check_digit("2472705960") == 8
    assert local_government_code_check_digit("11222") == 4  # 越谷市
    assert local_government_code_check_digit("11221") == 6  # 草加市
    assert local_government_code("11222") == "112224"


def test_remainders_zero_and_one_give_check_digit_zero_for_my_number():
    # 00000000000: remainder 0; 00000000003: 3 × 2 = 6; 00000000006: 6 × 2 = 12 ≡ 1.
    assert my_number_check_digit("00000000000") == 0
    assert my_number_check_digit("00000000006") == 0
    assert my_number_check_digit("00000000003") == 11 - 6


def test_local_government_remainders_zero_and_one():
    assert local_government_code_check_digit("13104") == 1  # remainder 0 → 11 → 1
    assert local_government_code_check_digit("13113") == 0  # remainder 1 → 10 → 0


# --- accepted input forms ---------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    ["１２３４５６７８９０１８", "1234 5678 9018", "1234-5678-9018", " 123456789018 ", "1234\u30005678\u30009018"],
)
def test_my_number_is_normalised_from_what_people_type(typed):
    assert validate_my_number(typed) == "123456789018"


def test_local_government_code_with_hyphen_before_check_digit():
    assert validate_local_government_code("11222-4") == "112224"


# --- every kind of bad value --------------------------------------------------------------

BAD_MY_NUMBERS = [
    ("123456789012", Reason.CHECK_DIGIT),
    ("12345678901", Reason.FORMAT),
    ("1234567890189", Reason.FORMAT),
    ("12345678901A", Reason.FORMAT),
    ("١٢٣٤٥٦٧٨٩٠١٨", Reason.FORMAT),  # Arabic-Indic digits are not ASCII digits even after NFKC
    ("1234.5678.9018", Reason.FORMAT),
    ("", Reason.EMPTY),
    ("   ", Reason.EMPTY),
    ("--", Reason.EMPTY),
    (123456789018, Reason.FORMAT),
    (None, Reason.FORMAT),
]


@pytest.mark.parametrize(("value", "reason"), BAD_MY_NUMBERS)
def test_bad_my_numbers_are_refused_with_a_reason(value, reason):
    with pytest.raises(InvalidIdentifier) as raised:
        validate_my_number(value)
    assert raised.value.reason is reason
    assert raised.value.field == "my_number"
    assert not is_valid_my_number(value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("24727059609", Reason.CHECK_DIGIT),
        ("2472705960", Reason.FORMAT),
        ("247270596080", Reason.FORMAT),
        ("2472705960X", Reason.FORMAT),
        ("", Reason.EMPTY),
        (24727059608, Reason.FORMAT),
    ],
)
def test_bad_resident_codes_are_refused_with_a_reason(value, reason):
    with pytest.raises(InvalidIdentifier) as raised:
        validate_resident_code(value)
    assert raised.value.reason is reason
    assert not is_valid_resident_code(value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("112225", Reason.CHECK_DIGIT),
        ("112210", Reason.CHECK_DIGIT),
        ("11222", Reason.FORMAT),
        ("1122244", Reason.FORMAT),
        ("11222a", Reason.FORMAT),
        ("", Reason.EMPTY),
    ],
)
def test_bad_local_government_codes_are_refused_with_a_reason(value, reason):
    with pytest.raises(InvalidIdentifier) as raised:
        validate_local_government_code(value)
    assert raised.value.reason is reason


def test_the_error_never_repeats_the_number():
    with pytest.raises(InvalidIdentifier) as raised:
        validate_my_number("987654321098")
    assert re.search(r"\d{3,}", str(raised.value)) is None


def test_field_name_can_be_given():
    with pytest.raises(InvalidIdentifier) as raised:
        validate_my_number("1", field="spouse_my_number")
    assert raised.value.field == "spouse_my_number"
    assert str(raised.value).startswith("spouse_my_number:")


@pytest.mark.parametrize("body", ["1234567890", "123456789012", "12345678901a"])
def test_check_digit_functions_refuse_a_body_of_the_wrong_shape(body):
    with pytest.raises(InvalidIdentifier):
        my_number_check_digit(body)


# --- properties ------------------------------------------------------------------------------

seeds = st.integers(min_value=0, max_value=2**32)


@given(seeds)
def test_generated_my_numbers_validate(seed):
    number = generate_my_number(random.Random(seed))
    assert len(number) == 12
    assert validate_my_number(number) == number


@given(seeds)
def test_generated_resident_codes_validate(seed):
    code = generate_resident_code(random.Random(seed))
    assert len(code) == 11
    assert validate_resident_code(code) == code


def test_generation_is_deterministic_for_a_seed():
    first, second = random.Random(7), random.Random(7)
    assert [generate_my_number(first) for _ in range(20)] == [generate_my_number(second) for _ in range(20)]


def _changed(number: str, position: int, delta: int) -> str:
    digit = (int(number[position]) + delta) % 10
    return number[:position] + str(digit) + number[position + 1 :]


@given(seeds, st.integers(min_value=0, max_value=11), st.integers(min_value=1, max_value=9))
def test_changing_one_digit_of_a_my_number_fails_except_where_the_statute_cannot_tell(seed, position, delta):
    number = generate_my_number(random.Random(seed))
    changed = _changed(number, position, delta)
    if position == 11:
        assert not is_valid_my_number(changed)  # the check digit itself
        return
    before, after = personal_remainder(number[:11]), personal_remainder(changed[:11])
    assert before != after  # a weight 2..7 times a change 1..9 is never a multiple of 11
    # Remainders 0 and 1 both give check digit 0: the one change the rule cannot see.
    blind = {before, after} == {0, 1}
    assert is_valid_my_number(changed) is blind


@given(seeds, st.integers(min_value=0, max_value=10), st.integers(min_value=1, max_value=9))
def test_changing_one_digit_of_a_resident_code_fails_except_where_the_rule_cannot_tell(seed, position, delta):
    code = generate_resident_code(random.Random(seed))
    changed = _changed(code, position, delta)
    if position == 10:
        assert not is_valid_resident_code(changed)
        return
    blind = {personal_remainder(code[:10]), personal_remainder(changed[:10])} == {0, 1}
    assert is_valid_resident_code(changed) is blind


@given(st.integers(min_value=0, max_value=99999), st.integers(min_value=0, max_value=5), st.integers(1, 9))
def test_changing_one_digit_of_a_local_government_code_fails_except_where_the_rule_cannot_tell(
    body, position, delta
):
    code = local_government_code(f"{body:05d}")
    assert is_valid_local_government_code(code)
    changed = _changed(code, position, delta)
    if position == 5:
        assert not is_valid_local_government_code(changed)
        return
    # Remainders 0 and 10 both give check digit 1.
    blind = {local_government_remainder(code[:5]), local_government_remainder(changed[:5])} == {0, 10}
    assert is_valid_local_government_code(changed) is blind


def test_the_blind_spots_exist():
    # Statutory behaviour, kept visible: a single-digit change between remainders 0 and 1.
    assert is_valid_my_number("000000000000") and is_valid_my_number("000000000060")
    assert is_valid_resident_code("00000000000") and is_valid_resident_code("00000000060")
    assert is_valid_local_government_code("000001") and is_valid_local_government_code("000051")


# --- birth dates ----------------------------------------------------------------------------

TODAY = date(2024, 4, 1)


@pytest.mark.parametrize(
    "value",
    [date(1975, 3, 1), "1975-03-01", "1975/03/01", "19750301", "１９７５－０３－０１", datetime(1975, 3, 1, 9, 30)],
)
def test_birth_date_forms(value):
    assert validate_birth_date(value, today=TODAY) == date(1975, 3, 1)


def test_birth_date_limits_are_inclusive():
    assert validate_birth_date("1870-01-01", today=TODAY) == date(1870, 1, 1)
    assert validate_birth_date(TODAY, today=TODAY) == TODAY


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1869-12-31", Reason.OUT_OF_RANGE),
        ("2024-04-02", Reason.OUT_OF_RANGE),
        ("2023-02-29", Reason.FORMAT),
        ("1975-13-01", Reason.FORMAT),
        ("1975-3-1", Reason.FORMAT),
        ("昭和50年3月1日", Reason.FORMAT),
        ("", Reason.EMPTY),
        (19750301, Reason.FORMAT),
        (None, Reason.FORMAT),
    ],
)
def test_bad_birth_dates(value, reason):
    with pytest.raises(InvalidIdentifier) as raised:
        validate_birth_date(value, today=TODAY)
    assert raised.value.reason is reason
    assert raised.value.field == "birth_date"


def test_birth_date_in_the_future_of_the_real_today_is_refused():
    with pytest.raises(InvalidIdentifier):
        validate_birth_date(date(date.today().year + 1, 1, 1))


# --- names ------------------------------------------------------------------------------------


def test_name_whitespace_becomes_one_ideographic_space():
    assert validate_name("  髙橋 \u3000 太郎 ") == "髙橋\u3000太郎"


def test_all_ascii_name_keeps_an_ascii_space():
    assert validate_name(" SMITH   JOHN ") == "SMITH JOHN"


def test_name_characters_are_kept_as_registered():
    with_ivs = "葛\U000e0100城\u3000一郎"
    assert validate_name(with_ivs) == with_ivs
    assert validate_name("渡邊\u3000﨑子") == "渡邊\u3000﨑子"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", Reason.EMPTY),
        (" \u3000\t", Reason.EMPTY),
        ("佐藤\x00", Reason.FORMAT),
        ("佐藤\u202e", Reason.FORMAT),  # right-to-left override
        (None, Reason.FORMAT),
    ],
)
def test_bad_names(value, reason):
    with pytest.raises(InvalidIdentifier) as raised:
        validate_name(value, field="family_name")
    assert raised.value.reason is reason
    assert raised.value.field == "family_name"
