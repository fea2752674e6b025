"""The synthetic population of Koshigaya: deterministic, valid numbers, plausible households."""

from __future__ import annotations

import csv
import itertools
import json
from collections import Counter
from datetime import date

import pytest

from services.resident_registry.population import (
    CHILD,
    DATA_DIR,
    HEAD,
    REFERENCE_DATE,
    RESIDENT,
    SPOUSE,
    Resident,
    generate,
)
from shared.ids import InvalidIdentifier, is_valid_my_number, is_valid_resident_code, validate_birth_date

KOSHIGAYA = "112224"
PEOPLE = 20_000


def _rows(name: str) -> list[dict[str, str]]:
    with open(DATA_DIR / name, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _age(birth: date, on: date = REFERENCE_DATE) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _is_katakana(text: str) -> bool:
    return bool(text) and all("ァ" <= char <= "ヶ" or char == "ー" for char in text)


@pytest.fixture(scope="module")
def residents() -> list[Resident]:
    return list(generate(KOSHIGAYA, PEOPLE, seed=11))


@pytest.fixture(scope="module")
def households(residents) -> dict[str, list[Resident]]:
    return {key: list(group) for key, group in itertools.groupby(residents, key=lambda r: r.household_id)}


# --- determinism ----------------------------------------------------------------------------


def test_same_seed_same_people(residents):
    assert list(generate(KOSHIGAYA, PEOPLE, seed=11)) == residents


def test_different_seeds_differ():
    first, second = list(generate(KOSHIGAYA, 500, seed=1)), list(generate(KOSHIGAYA, 500, seed=2))
    assert {r.resident_code for r in first}.isdisjoint({r.resident_code for r in second})
    assert [r.name_kanji for r in first] != [r.name_kanji for r in second]


def test_the_reference_date_fixes_ages():
    later = date(2030, 4, 1)
    moved = list(generate(KOSHIGAYA, 300, seed=3, as_of=later))
    assert all(r.birth_date <= later for r in moved)
    assert max(r.birth_date for r in moved) > REFERENCE_DATE  # born after 2024 in the later population


def test_sizes_and_arguments():
    assert list(generate(KOSHIGAYA, 0, seed=1)) == []
    assert len(list(generate(KOSHIGAYA, 1, seed=1))) == 1
    with pytest.raises(ValueError):
        list(generate(KOSHIGAYA, -1, seed=1))
    with pytest.raises(InvalidIdentifier):
        list(generate("112225", 10, seed=1))  # check digit wrong
    with pytest.raises(ValueError, match="no town data"):
        list(generate("112216", 10, seed=1))  # 草加市: a valid code without town data


# --- identities --------------------------------------------------------------------------------


def test_exactly_the_people_asked_for_with_valid_unique_numbers(residents):
    assert len(residents) == PEOPLE
    assert all(is_valid_resident_code(r.resident_code) for r in residents)
    assert all(is_valid_my_number(r.my_number) for r in residents)
    assert len({r.resident_code for r in residents}) == PEOPLE
    assert len({r.my_number for r in residents}) == PEOPLE


def test_records_are_complete(residents):
    for r in residents:
        assert r.status == RESIDENT and r.city == KOSHIGAYA and r.key == r.resident_code
        assert r.family_name and r.given_name
        assert _is_katakana(r.family_name_kana) and _is_katakana(r.given_name_kana)
        assert r.name_kanji == f"{r.family_name}\u3000{r.given_name}"
        assert r.name_kana == f"{r.family_name_kana}\u3000{r.given_name_kana}"
        assert r.sex in ("male", "female")
        assert validate_birth_date(r.birth_date, today=REFERENCE_DATE) == r.birth_date
        assert r.address.startswith("埼玉県越谷市" + r.town)


def test_registered_old_character_forms_occur(residents):
    surnames = {r.family_name for r in residents}
    assert surnames & {"髙橋", "渡邊", "渡邉", "齋藤", "齊藤", "山﨑"}


# --- the age pyramid --------------------------------------------------------------------------


def test_ages_follow_the_pyramid_to_one_person(residents):
    bands = _rows("age_pyramid.csv")
    total = sum(int(row["male"]) + int(row["female"]) for row in bands)
    counted = Counter()
    for r in residents:
        counted[(_age(r.birth_date) // 5, r.sex)] += 1
    for row in bands:
        for sex in ("male", "female"):
            expected = PEOPLE * int(row[sex]) / total
            assert abs(counted[(int(row["age_from"]) // 5, sex)] - expected) < 1


# --- households ---------------------------------------------------------------------------------


def test_every_household_has_one_head_first_and_one_address(households):
    for members in households.values():
        assert members[0].relation == HEAD
        assert sum(m.relation == HEAD for m in members) == 1
        assert len({m.address for m in members}) == 1
        assert 1 <= len(members) <= 6


def test_household_sizes_are_plausible(households):
    sizes = Counter(len(members) for members in households.values())
    mean = PEOPLE / len(households)
    assert 2.0 <= mean <= 2.6  # Koshigaya: about 2.2–2.3
    assert 0.25 <= sizes[1] / len(households) <= 0.45
    assert sizes[4] > 0 and sizes[5] > 0


def test_heads_and_spouses_are_adults_of_opposite_sex_and_near_age(households):
    for members in households.values():
        head = members[0]
        assert _age(head.birth_date) >= 18
        for spouse in (m for m in members if m.relation == SPOUSE):
            assert spouse.sex != head.sex
            assert _age(spouse.birth_date) >= 18
            assert abs(_age(spouse.birth_date) - _age(head.birth_date)) <= 13


def test_children_were_born_when_their_parent_was_20_to_48(households):
    checked = 0
    for members in households.values():
        parents = [m for m in members if m.relation in (HEAD, SPOUSE)]
        mother = next((m for m in parents if m.sex == "female"), parents[0])
        for child in (m for m in members if m.relation == CHILD):
            assert 20 <= _age(mother.birth_date) - _age(child.birth_date) <= 48
            checked += 1
    assert checked > PEOPLE // 5


def test_members_mostly_share_the_surname(households):
    one_surname = sum(len({m.family_name for m in members}) == 1 for members in households.values())
    assert 0.95 <= one_surname / len(households) < 1.0  # a spouse's parent keeps their own
    for members in households.values():
        for member in members:
            if member.relation in (SPOUSE, CHILD):
                assert member.family_name == members[0].family_name


def test_no_two_members_of_a_household_share_a_full_name(households):
    for members in households.values():
        assert len({m.name_kanji for m in members}) == len(members)


def test_minors_all_live_with_an_adult(households):
    for members in households.values():
        assert any(_age(m.birth_date) >= 18 for m in members)


# --- addresses ---------------------------------------------------------------------------------


def test_addresses_use_many_real_towns(residents):
    towns = {row["town"] for row in _rows("towns_112224.csv")}
    assert len(towns) >= 60
    seen = Counter(r.town for r in residents)
    assert set(seen) <= towns
    assert len(seen) >= 60
    assert {"越ヶ谷", "南越谷", "北越谷", "大沢", "蒲生", "新越谷", "千間台東", "袋山", "レイクタウン"} <= set(seen)


def test_address_formats(residents):
    block = next(r for r in residents if r.town == "越ヶ谷" and "丁目" in r.address)
    assert block.address.endswith("号") and "番" in block.address
    lot = next(r for r in residents if r.town == "袋山")
    assert "番地" in lot.address and "丁目" not in lot.address


# --- data files --------------------------------------------------------------------------------


def test_name_data():
    surnames = _rows("surnames.csv")
    assert len(surnames) >= 300
    assert len({row["surname"] for row in surnames}) == len(surnames)
    assert all(_is_katakana(row["reading"]) and float(row["weight"]) > 0 for row in surnames)
    given = _rows("given_names.csv")
    eras = {(row["sex"], row["born_from"]) for row in given}
    assert {sex for sex, _ in eras} == {"male", "female"}
    assert len(eras) == 12  # six birth eras for each sex
    assert all(_is_katakana(row["reading"]) for row in given)


def test_town_data():
    rows = _rows("towns_112224.csv")
    assert all(row["numbering"] in ("block", "lot") and int(row["population"]) > 0 for row in rows)
    assert all(int(row["max_number"]) > 0 for row in rows)
    assert sum(int(row["population"]) for row in rows) == pytest.approx(340_000, rel=0.05)
    cities = json.loads((DATA_DIR / "cities.json").read_text(encoding="utf-8"))["cities"]
    assert cities[KOSHIGAYA]["municipality"] == "越谷市"


def test_pyramid_bands_are_contiguous_five_year_bands():
    bands = _rows("age_pyramid.csv")
    assert [int(row["age_from"]) for row in bands] == list(range(0, 105, 5))
    assert all(int(row["age_to"]) == int(row["age_from"]) + 4 for row in bands)
