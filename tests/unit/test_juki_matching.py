"""4-item search (基本4情報検索) with Japanese-aware matching (M03)."""

from __future__ import annotations

import json
import unicodedata
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.juki_cs.matching import (
    DATA_DIR,
    AddressKey,
    FourItemIndex,
    FourItemQuery,
    InvalidQuery,
    Item,
    Person,
    QueryTooBroad,
    fold_kana,
    fold_name,
    is_kana,
    normalize_address,
    normalize_kana,
    normalize_name,
    normalize_sex,
    parse_birth_date,
)

KOSHIGAYA = ("越谷市",)


# --- the variant table ----------------------------------------------------------------------


def _groups() -> list[list[str]]:
    return json.loads((DATA_DIR / "character_variants.json").read_text(encoding="utf-8"))["groups"]


def test_variant_table_is_large_and_unambiguous():
    groups = _groups()
    assert len(groups) >= 80
    members = [char for group in groups for char in group]
    assert len(members) == len(set(members)), "a character in two groups would fold two ways"
    for group in groups:
        assert len(group) >= 2
        for char in group:
            assert unicodedata.category(char) == "Lo"
            # A literal compatibility ideograph would be rewritten by NFKC before the table applies.
            assert unicodedata.normalize("NFKC", char) == char


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("髙", "高"), ("﨑", "崎"), ("邊", "辺"), ("邉", "辺"), ("齋", "斎"), ("齊", "斎"), ("斉", "斎"),
        ("澤", "沢"), ("濱", "浜"), ("廣", "広"), ("國", "国"), ("德", "徳"), ("櫻", "桜"), ("瀨", "瀬"),
        ("嶋", "島"), ("冨", "富"), ("籠", "篭"), ("藏", "蔵"), ("實", "実"), ("壽", "寿"), ("惠", "恵"),
    ],
)
def test_old_and_variant_forms_fold_to_one(old, new):
    assert fold_name(old) == fold_name(new) == new


def test_whole_names_fold():
    assert fold_name("髙橋\u3000惠子") == fold_name("高橋 恵子")
    assert fold_name("渡邊") == fold_name("渡邉") == fold_name("渡辺")
    assert fold_name("山﨑") == fold_name("山崎")
    assert fold_name("佐々木") == fold_name("佐佐木")
    assert fold_name("葛\U000e0100城") == "葛城"  # ideographic variation selector dropped
    assert fold_name("\ufa10本") == "塚本"  # compatibility ideograph, folded by NFKC


def test_standard_forms_are_left_alone():
    assert fold_name("高橋太郎") == "高橋太郎"
    assert fold_name("埼玉") == "埼玉"  # 埼 is not a form of 崎


@pytest.mark.parametrize("typed", ["高＊\u3000太郎", "高?太郎", "高〓 太郎", "高*太郎"])
def test_wildcard_forms(typed):
    assert normalize_name(typed) == "高*太郎"


# --- kana -------------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["サトウ　タロウ", "さとう たろう", "ｻﾄｳ ﾀﾛｳ", "サトウ・タロウ", "ｻﾄｳﾀﾛｳ"])
def test_kana_width_script_and_spaces(typed):
    assert normalize_kana(typed) == "サトウタロウ"


def test_half_width_voiced_kana_combine():
    assert normalize_kana("ｶﾞﾓｳ ﾊﾟﾝ") == "ガモウパン"


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("サトウ", "サトー"),
        ("オオノ", "オーノ"),
        ("ユウコ", "ゆーこ"),
        ("ショウタ", "ｼｮｰﾀ"),
        ("ヴァイオリン", "バイオリン"),
        ("ヴィヴィ", "ビビ"),
        ("キャシー", "キヤシー"),
        ("ヂュン", "ジュン"),
        ("ツヅキ", "ツズキ"),
        ("ケイコ", "ケーコ"),
        ("ワヲン", "ワオン"),
    ],
)
def test_loose_kana_folding(left, right):
    assert fold_kana(left) == fold_kana(right)


@pytest.mark.parametrize(("left", "right"), [("サトウ", "サイトウ"), ("カトウ", "ガトウ"), ("オノ", "オガノ")])
def test_loose_folding_keeps_different_readings_apart(left, right):
    assert fold_kana(left) != fold_kana(right)


def test_is_kana():
    assert is_kana("さとう たろう") and is_kana("ｻﾄｳ") and is_kana("サト＊")
    assert not is_kana("佐藤") and not is_kana("一ノ瀬") and not is_kana("＊") and not is_kana("")


KANA_TEXT = st.text(alphabet="アイウエオカガキャュョッヴーサシスセソタチツテトナハバパマヤユヨラワヲンゃっぁ高﨑々 ", max_size=12)


@given(KANA_TEXT)
def test_folding_is_idempotent(text):
    assert fold_kana(fold_kana(text)) == fold_kana(text)
    assert fold_name(fold_name(text)) == fold_name(text)


def _half_width_table() -> dict[str, str]:
    table = {}
    for code in range(0xFF61, 0xFFA0):
        for mark in ("", "\uff9e", "\uff9f"):
            full = unicodedata.normalize("NFKC", chr(code) + mark)
            if len(full) == 1:
                table.setdefault(full, chr(code) + mark)
    return table


HALF_WIDTH = _half_width_table()
READINGS = st.text(alphabet="アイウエオカガキクケコサザシスセソタダチツテトナニヌネノハバパヒビピマミムメモヤユヨラリルレロワンーッャュョヴ", max_size=12)


@given(READINGS)
def test_hiragana_and_half_width_readings_normalise_to_the_katakana(katakana):
    hiragana = "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヴ" else c for c in katakana)
    half_width = "".join(HALF_WIDTH[c] for c in katakana)
    assert half_width != katakana or not katakana
    assert normalize_kana(hiragana) == normalize_kana(half_width) == katakana


# --- addresses, sex, birth dates ------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "埼玉県越谷市越ヶ谷四丁目2番1号",
        "越谷市越ケ谷4丁目2番1号",
        "越ヶ谷４－２－１",
        "越が谷4-2-1",
        "越ヶ谷 四丁目 2番 1号",
    ],
)
def test_address_forms_compare_equal(typed):
    assert normalize_address(typed, KOSHIGAYA) == AddressKey("越ケ谷", ("4", "2", "1"))


def test_address_lots_oaza_and_numerals():
    assert normalize_address("越谷市大字袋山1234番地5", KOSHIGAYA) == AddressKey("袋山", ("1234", "5"))
    assert normalize_address("袋山１２３４の５", KOSHIGAYA) == AddressKey("袋山", ("1234", "5"))
    assert normalize_address("東越谷十丁目3番4号", KOSHIGAYA) == AddressKey("東越谷", ("10", "3", "4"))
    assert normalize_address("某町二十一丁目1番", ()) == AddressKey("某町", ("21", "1"))
    # Kanji numerals that belong to the town name stay in it.
    assert normalize_address("越谷市四丁野123", KOSHIGAYA) == AddressKey("四丁野", ("123",))
    assert normalize_address("越谷市七左町一丁目5番6号", KOSHIGAYA) == AddressKey("七左町", ("1", "5", "6"))
    assert normalize_address("埼玉県越谷市レイクタウン", KOSHIGAYA) == AddressKey("レイクタウン", ())


def test_address_keeps_another_municipality():
    assert normalize_address("埼玉県草加市高砂1丁目1番1号", KOSHIGAYA).town == "草加市高砂"


@pytest.mark.parametrize(("typed", "sex"), [("1", "male"), ("男", "male"), ("Ｍ", "male"), (1, "male"), ("2", "female"), ("女性", "female"), ("f", "female")])
def test_sex_forms(typed, sex):
    assert normalize_sex(typed) == sex


@pytest.mark.parametrize("typed", ["3", "", "x", True, None, 0])
def test_unknown_sex_is_refused(typed):
    with pytest.raises(InvalidQuery):
        normalize_sex(typed)


@pytest.mark.parametrize(
    ("typed", "day"),
    [
        ("1975-03-01", date(1975, 3, 1)),
        ("19750301", date(1975, 3, 1)),
        ("1975/3/1", date(1975, 3, 1)),
        ("昭和50年3月1日", date(1975, 3, 1)),
        ("S50.3.1", date(1975, 3, 1)),
        ("ｓ５０．３．１", date(1975, 3, 1)),
        ("平成元年1月8日", date(1989, 1, 8)),
        ("H7.3.1", date(1995, 3, 1)),
        ("令和元年5月1日", date(2019, 5, 1)),
        ("大正15年12月1日", date(1926, 12, 1)),
        ("明治45年7月1日", date(1912, 7, 1)),
    ],
)
def test_birth_date_forms(typed, day):
    assert parse_birth_date(typed) == day


@pytest.mark.parametrize("typed", ["1975-02-30", "昭和50年13月1日", "X50.3.1", "yesterday", 19750301])
def test_unreadable_birth_dates(typed):
    with pytest.raises(InvalidQuery):
        parse_birth_date(typed)


# --- the index ----------------------------------------------------------------------------------

TAKAHASHI = Person("10000000001", "髙橋\u3000惠子", "タカハシ\u3000ケイコ", "female", date(1958, 6, 14), "埼玉県越谷市越ヶ谷四丁目2番1号")
TAKAHASHI_SON = Person("10000000002", "髙橋\u3000翔太", "タカハシ\u3000ショウタ", "male", date(1988, 11, 3), "埼玉県越谷市越ヶ谷四丁目2番1号")
SATO = Person("10000000003", "佐藤\u3000太郎", "サトウ\u3000タロウ", "male", date(1975, 3, 1), "埼玉県越谷市袋山1234番地5")
SATO_HOMOPHONE = Person("10000000004", "佐東\u3000太郎", "サトウ\u3000タロウ", "male", date(1975, 3, 1), "埼玉県越谷市袋山1234番地5")
SAITO_TWIN_SISTER = Person("10000000005", "齋藤\u3000優", "サイトウ\u3000ユウ", "female", date(2001, 4, 5), "埼玉県越谷市レイクタウン八丁目1番2号")
SAITO_TWIN_BROTHER = Person("10000000006", "齋藤\u3000優", "サイトウ\u3000ユウ", "male", date(2001, 4, 5), "埼玉県越谷市レイクタウン八丁目1番2号")
SAME_BIRTHDAY = Person("10000000007", "田中\u3000花子", "タナカ\u3000ハナコ", "female", date(1958, 6, 14), "埼玉県越谷市大沢3丁目1番1号")
PEOPLE = [TAKAHASHI, TAKAHASHI_SON, SATO, SATO_HOMOPHONE, SAITO_TWIN_SISTER, SAITO_TWIN_BROTHER, SAME_BIRTHDAY]


@pytest.fixture
def index() -> FourItemIndex:
    built = FourItemIndex(municipality_prefixes=KOSHIGAYA)
    for person in PEOPLE:
        built.add(person)
    return built


def _top(index: FourItemIndex, **items):
    found = index.search(FourItemQuery(**items))
    assert found, f"nothing found for {items}"
    return found[0]


def test_exact_query_matches_every_item(index):
    top = _top(index, name="髙橋　惠子", address="埼玉県越谷市越ヶ谷四丁目2番1号", sex="2", birth_date="1958-06-14")
    assert top.key == TAKAHASHI.key
    assert top.score == 1.0
    assert top.matched_items == {Item.NAME, Item.ADDRESS, Item.SEX, Item.BIRTH_DATE}
    assert top.all_items_matched


def test_new_character_forms_find_the_registered_old_forms(index):
    top = _top(index, name="高橋 恵子", address="越ヶ谷4-2-1", sex="女", birth_date="S33.6.14")
    assert top.key == TAKAHASHI.key
    assert top.item_scores[Item.NAME] == pytest.approx(0.95)
    assert top.all_items_matched
    assert _top(index, name="斉藤 優", sex="F", birth_date="2001-04-05").key == SAITO_TWIN_SISTER.key


@pytest.mark.parametrize("reading", ["ﾀｶﾊｼ ｹｲｺ", "たかはし けいこ", "タカハシ　ケーコ"])
def test_kana_queries(index, reading):
    top = _top(index, name=reading, birth_date="1958-06-14")
    assert top.key == TAKAHASHI.key
    assert Item.NAME in top.matched_items


def test_wildcard_for_a_character_outside_the_set(index):
    top = _top(index, name="＊橋 惠子", birth_date="1958-06-14", sex="female")
    assert top.key == TAKAHASHI.key
    assert top.item_scores[Item.NAME] == pytest.approx(0.9)
    assert top.all_items_matched


def test_kanji_and_reading_together_tell_homophones_apart(index):
    found = index.search(FourItemQuery(name="佐藤 太郎", name_kana="サトウ タロウ", birth_date="1975-03-01"))
    assert [candidate.key for candidate in found[:2]] == [SATO.key, SATO_HOMOPHONE.key]
    assert found[0].score > found[1].score
    assert Item.NAME not in found[1].matched_items


def test_reading_alone_cannot_tell_homophones_apart(index):
    found = index.search(FourItemQuery(name="サトウ タロウ", birth_date="1975-03-01"))
    assert {candidate.key for candidate in found[:2]} == {SATO.key, SATO_HOMOPHONE.key}
    assert found[0].score == found[1].score == 1.0


def test_sex_ranks_twins(index):
    found = index.search(FourItemQuery(name="齋藤 優", birth_date="2001-04-05", sex="1"))
    assert [candidate.key for candidate in found] == [SAITO_TWIN_BROTHER.key, SAITO_TWIN_SISTER.key]
    assert Item.SEX not in found[1].matched_items


def test_mistyped_birth_date_still_finds_the_person_ranked_lower(index):
    top = _top(index, name="髙橋 惠子", address="越ヶ谷4-2-1", sex="2", birth_date="1958-06-15")
    assert top.key == TAKAHASHI.key
    assert top.matched_items == {Item.NAME, Item.ADDRESS, Item.SEX}
    assert not top.all_items_matched
    assert top.item_scores[Item.BIRTH_DATE] == pytest.approx(0.5)
    assert top.score < 1.0


@pytest.mark.parametrize("surname", ["高橋", "タカハシ"])
def test_surname_alone_is_close_but_not_a_match(index, surname):
    top = _top(index, name=surname, birth_date="1958-06-14")
    assert top.key == TAKAHASHI.key
    assert top.item_scores[Item.NAME] == pytest.approx(0.85)
    assert Item.NAME not in top.matched_items


def test_a_mistyped_name_is_still_found_through_shared_bigrams(index):
    top = _top(index, name="髙橋 恵美", address="越ヶ谷4-2-1", sex="2")
    assert top.key == TAKAHASHI.key
    assert Item.NAME not in top.matched_items
    assert 0 < top.item_scores[Item.NAME] < 0.8


def test_people_sharing_only_the_birth_date_are_not_candidates(index):
    found = index.search(FourItemQuery(name="髙橋 惠子", birth_date="1958-06-14"))
    assert SAME_BIRTHDAY.key not in {candidate.key for candidate in found}


def test_search_without_birth_date(index):
    top = _top(index, name="佐藤 太郎", address="袋山1234-5")
    assert top.key == SATO.key
    assert top.matched_items == {Item.NAME, Item.ADDRESS}


def test_partial_address_matches_as_a_prefix(index):
    top = _top(index, name="髙橋 翔太", address="越谷市越ヶ谷四丁目")
    assert top.key == TAKAHASHI_SON.key
    assert Item.ADDRESS in top.matched_items
    assert 0.6 <= top.item_scores[Item.ADDRESS] < 1.0


def test_address_alone_finds_the_household(index):
    found = index.search(FourItemQuery(address="越ヶ谷4-2-1"))
    assert {candidate.key for candidate in found} == {TAKAHASHI.key, TAKAHASHI_SON.key}


def test_limit(index):
    assert len(index.search(FourItemQuery(address="越ヶ谷4-2-1"), limit=1)) == 1


@pytest.mark.parametrize("query", [FourItemQuery(), FourItemQuery(sex="1"), FourItemQuery(name="  ", sex="2")])
def test_a_query_without_name_birth_date_or_address_is_too_broad(index, query):
    with pytest.raises(QueryTooBroad):
        index.search(query)


def test_unreadable_items_are_refused(index):
    with pytest.raises(InvalidQuery):
        index.search(FourItemQuery(name="佐藤", sex="unknown"))
    with pytest.raises(InvalidQuery):
        index.search(FourItemQuery(name="佐藤", birth_date="1975-02-30"))


def test_remove_and_replace(index):
    assert len(index) == len(PEOPLE) and SATO.key in index
    index.remove(SATO.key)
    assert SATO.key not in index and index.get(SATO.key) is None
    assert SATO.key not in {c.key for c in index.search(FourItemQuery(name="佐藤 太郎", birth_date="1975-03-01"))}
    with pytest.raises(KeyError):
        index.remove(SATO.key)

    moved = Person(TAKAHASHI.key, TAKAHASHI.name_kanji, TAKAHASHI.name_kana, "2", "1958-06-14", "越谷市南越谷1丁目2番3号")
    index.add(moved)
    assert len(index) == len(PEOPLE) - 1
    assert index.get(TAKAHASHI.key) is moved
    assert _top(index, name="髙橋 惠子", address="南越谷1-2-3", birth_date="1958-06-14").all_items_matched
    old_address = index.search(FourItemQuery(address="越ヶ谷4-2-1"))
    assert [candidate.key for candidate in old_address] == [TAKAHASHI_SON.key]


def test_freed_slots_are_reused_without_confusing_people(index):
    index.remove(SATO_HOMOPHONE.key)
    newcomer = Person("10000000099", "鈴木\u3000一郎", "スズキ\u3000イチロウ", "male", date(1990, 1, 1), "越谷市大沢1丁目1番1号")
    index.add(newcomer)
    assert _top(index, name="鈴木 一郎", birth_date="1990-01-01").key == newcomer.key
    assert _top(index, name="佐東 太郎", birth_date="1975-03-01").key == SATO.key  # the homophone is gone
    assert sorted(person.key for person in index) == sorted(
        [p.key for p in PEOPLE if p is not SATO_HOMOPHONE] + [newcomer.key]
    )


def test_bulk_load_indexes_everyone_and_restores_the_collector():
    import gc

    bulk = FourItemIndex(municipality_prefixes=KOSHIGAYA)
    assert gc.isenabled()
    bulk.add_all(iter(PEOPLE))
    assert gc.isenabled()
    assert sorted(person.key for person in bulk) == sorted(person.key for person in PEOPLE)
    assert _top(bulk, name="佐藤 太郎", birth_date="1975-03-01").key == SATO.key


# --- at the scale of a population -----------------------------------------------------------------


def test_generated_residents_are_found_first_by_their_four_items():
    from services.resident_registry.population import generate

    residents = list(generate("112224", 3000, seed=5))
    index = FourItemIndex(municipality_prefixes=KOSHIGAYA)
    for resident in residents:
        index.add(
            Person(resident.resident_code, resident.name_kanji, resident.name_kana, resident.sex,
                   resident.birth_date, resident.address)
        )
    for resident in residents[::60]:
        found = index.search(
            FourItemQuery(name=resident.name_kanji, address=resident.address, sex=resident.sex,
                          birth_date=resident.birth_date)
        )
        assert found[0].key == resident.resident_code
        assert found[0].all_items_matched
        by_reading = index.search(FourItemQuery(name=resident.name_kana, birth_date=resident.birth_date,
                                                address=resident.address))
        assert by_reading[0].key == resident.resident_code
