"""Search of identity information by the four basic items (基本4情報検索).

The Juki-net community server finds a person from name (氏名), address (住所), sex (性別)
and birth date (生年月日) when no number is at hand (assessment §2 system 5, function 4),
and the same four items confirm a person found by My Number (measure M03).

People type those items in many forms, so every item is normalised before it is compared:

- names: NFKC (full/half width), no spaces, variation selectors (IVS) dropped, 々 expanded;
  old and variant character forms (異体字・旧字体: 髙→高, 﨑→崎, 邊→辺 …) folded with the table
  in ``data/character_variants.json``; ``＊``, ``?`` or ``〓`` stand for one character outside
  the character set (外字), as on Juki-net screens;
- kana readings: hiragana and katakana, full and half width alike; loosely also small kana,
  ヴ, ヂ/ヅ, long vowel marks and vowels that only lengthen a syllable (``data/kana_folding.json``);
- addresses: the prefecture, the municipality and 大字 are dropped, 丁目 numerals become digits,
  and ``1丁目2番3号``, ``1-2-3`` and ``一丁目2番地3`` compare equal;
- sex: 1/2, 男/女, M/F; birth dates: ISO, ``YYYYMMDD`` or the Japanese calendar (昭和50年3月1日, S50.3.1).

:class:`FourItemIndex` holds the people of one municipality in memory, indexed by birth date,
by name and reading bigrams and by address block, and ranks candidates by a weighted score
that says which items matched. docs/identity.md describes the rules and the scores.
"""

from __future__ import annotations

import gc
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Protocol

DATA_DIR = Path(__file__).parent / "data"

WILDCARD = "*"


class Item(str, Enum):
    """One of the four basic items (基本4情報)."""

    NAME = "name"
    ADDRESS = "address"
    SEX = "sex"
    BIRTH_DATE = "birth_date"


# How much each item counts in a candidate's score, and the item score from which the
# item counts as matched. A birth date or sex either matches or not; a name may match
# through folding or a wildcard; an address matches when one is a prefix of the other.
ITEM_WEIGHTS: Mapping[Item, float] = {
    Item.NAME: 0.4,
    Item.BIRTH_DATE: 0.3,
    Item.ADDRESS: 0.2,
    Item.SEX: 0.1,
}
MATCH_THRESHOLDS: Mapping[Item, float] = {
    Item.NAME: 0.9,
    Item.BIRTH_DATE: 1.0,
    Item.ADDRESS: 0.6,
    Item.SEX: 1.0,
}

# Name scores by how the two forms agree.
SAME_TEXT = 1.0
SAME_AFTER_FOLDING = 0.95
SAME_WITH_WILDCARD = 0.9
SURNAME_ONLY = 0.85  # the query gives the registered surname alone: close, but not a match
PARTIAL_CEILING = 0.8  # bigram similarity of names that differ, scaled below any match
NEAR_BIRTH_DATE = 0.5  # two of year, month, day agree, or month and day swapped


class InvalidQuery(ValueError):
    """A query item that cannot be read (unknown sex, unreadable date)."""


class QueryTooBroad(InvalidQuery):
    """A query without name, birth date or address: it would select everyone."""


# --- tables -------------------------------------------------------------------------


def _load(name: str) -> dict:
    with open(DATA_DIR / name, encoding="utf-8") as handle:
        return json.load(handle)


def _variant_fold_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for group in _load("character_variants.json")["groups"]:
        standard = group[0]
        for variant in group[1:]:
            table[ord(variant)] = standard
    return table


_VARIANT_FOLD = _variant_fold_table()
_KANA_RULES = _load("kana_folding.json")
_ERAS = [
    (era["name"], era["letter"], date.fromisoformat(era["start"]))
    for era in _load("japanese_eras.json")["eras"]
]

_HIRAGANA_TO_KATAKANA = {code: chr(code + 0x60) for code in range(0x3041, 0x3097)}
_HIRAGANA_TO_KATAKANA.update({0x309D: "ヽ", 0x309E: "ヾ"})
_VARIATION_SELECTORS = {code: None for code in (*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0))}
_WILDCARDS = {ord("*"): WILDCARD, ord("?"): WILDCARD, ord("〓"): WILDCARD}
_KE_FORMS = {ord(char): "ケ" for char in "ヶヵがケ"}  # 越ヶ谷, 越ケ谷, 越が谷
_LONG_MARKS = _KANA_RULES["long_vowel_marks"]
_KANA_DIGRAPHS = sorted(_KANA_RULES["digraphs"].items(), key=lambda pair: -len(pair[0]))
_VOWEL_OF = {kana: vowel for vowel, row in _KANA_RULES["vowels"].items() for kana in row}
_ELIDED_AFTER = {vowel: frozenset(kanas) for vowel, kanas in _KANA_RULES["vowel_elisions"].items()}

# Each normalisation step is one str.translate over a merged table (later entries win).
_NAME_TABLE = {**_VARIATION_SELECTORS, **_WILDCARDS}
_NAME_FOLD_TABLE = {**_HIRAGANA_TO_KATAKANA, **_VARIANT_FOLD, **_KE_FORMS}
_KANA_TABLE = {
    **_HIRAGANA_TO_KATAKANA,
    **{ord(char): None for char in "・=･"},
    **{ord(char): "ー" for char in _LONG_MARKS},
    **_WILDCARDS,
}
_KANA_FOLD_TABLE = str.maketrans(
    {**_KANA_RULES["small_to_large"], **_KANA_RULES["sound_alike"], "ー": None}
)


# --- normalisation ------------------------------------------------------------------


def _without_spaces(text: str) -> str:
    return "".join(text.split())


def to_katakana(text: str) -> str:
    """Hiragana turned into katakana (ゔ → ヴ included); everything else unchanged."""
    return text.translate(_HIRAGANA_TO_KATAKANA)


def normalize_name(text: str) -> str:
    """A name as written (氏名), without the differences that are only encoding.

    NFKC (full/half width, compatibility ideographs), no whitespace, no variation
    selectors, and every wildcard form (``＊``, ``?``, ``〓``) as ``*``.
    """
    return _without_spaces(unicodedata.normalize("NFKC", text)).translate(_NAME_TABLE)


def fold_name(text: str) -> str:
    """A name with character forms folded: 々 expanded, 異体字 to standard forms, kana to katakana."""
    return _fold_normalized_name(normalize_name(text))


def _fold_normalized_name(text: str) -> str:
    if "々" in text:
        chars: list[str] = []
        for char in text:
            chars.append(chars[-1] if char == "々" and chars else char)
        text = "".join(chars)
    return text.translate(_NAME_FOLD_TABLE)


def normalize_kana(text: str) -> str:
    """A kana reading (フリガナ) in full-width katakana without spaces or middle dots."""
    return _without_spaces(unicodedata.normalize("NFKC", text)).translate(_KANA_TABLE)


def fold_kana(text: str) -> str:
    """A reading folded for loose matching: サトウ, さとー, ｻﾄｰ and サトオ all give サト."""
    return _fold_normalized_kana(normalize_kana(text))


def _fold_normalized_kana(text: str) -> str:
    if "ヴ" in text or "ヷ" in text or "ヸ" in text or "ヹ" in text or "ヺ" in text:
        for digraph, plain in _KANA_DIGRAPHS:
            text = text.replace(digraph, plain)
    kept: list[str] = []
    previous_vowel = None
    for char in text.translate(_KANA_FOLD_TABLE):
        if previous_vowel is not None and char in _ELIDED_AFTER.get(previous_vowel, ()):
            continue  # only lengthens the previous syllable: オオノ ≈ オーノ ≈ オノ
        kept.append(char)
        previous_vowel = _VOWEL_OF.get(char)
    return "".join(kept)


def is_kana(text: str) -> bool:
    """True when the text is a reading only (kana, long marks, wildcards), with some kana."""
    normalized = normalize_kana(text)
    has_kana = False
    for char in normalized:
        if "\u30a1" <= char <= "\u30fa" or char in "ヽヾ":
            has_kana = True
        elif char not in ("ー", WILDCARD):
            return False
    return has_kana


def normalize_sex(value: object) -> str:
    """``"male"`` or ``"female"`` from 1/2, 男/女, 男性/女性, M/F or the English words."""
    if isinstance(value, str):
        word = unicodedata.normalize("NFKC", value).strip().lower()
        for sex, words in _SEX_WORDS.items():
            if word in words:
                return sex
    elif isinstance(value, int) and not isinstance(value, bool) and value in (1, 2):
        return "male" if value == 1 else "female"
    raise InvalidQuery("sex must be 1/2, 男/女, M/F or male/female")


# Juki-net codes sex 1 (male) and 2 (female).
_SEX_WORDS = {
    "male": frozenset({"1", "男", "男性", "m", "male", "man"}),
    "female": frozenset({"2", "女", "女性", "f", "female", "woman"}),
}

_ISO_DATE = re.compile(r"(\d{4})[-/.]?(\d{1,2})[-/.]?(\d{1,2})")
_JAPANESE_DATE = re.compile(
    r"(?P<era>[^\d\s元]+?)\s*(?P<year>元|\d{1,2})\s*[年./-]\s*(?P<month>\d{1,2})\s*[月./-]\s*"
    r"(?P<day>\d{1,2})\s*日?"
)


def parse_birth_date(value: object) -> date:
    """A birth date from a date, ISO or compact text, or the Japanese calendar.

    ``1975-03-01``, ``19750301``, ``1975/3/1``, ``昭和50年3月1日``, ``S50.3.1`` and
    ``令和元年5月1日`` are all read; full-width digits too.
    """
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise InvalidQuery("birth date must be a date or date text")
    text = unicodedata.normalize("NFKC", value).strip()
    try:
        match = _ISO_DATE.fullmatch(text)
        if match:
            return date(int(match[1]), int(match[2]), int(match[3]))
        match = _JAPANESE_DATE.fullmatch(text)
        if match:
            start_year = _era_start_year(match["era"])
            year = 1 if match["year"] == "元" else int(match["year"])
            return date(start_year + year - 1, int(match["month"]), int(match["day"]))
    except ValueError:
        raise InvalidQuery("birth date is not a calendar date") from None
    raise InvalidQuery("birth date must be YYYY-MM-DD or a Japanese-calendar date")


def _era_start_year(era: str) -> int:
    for name, letter, start in _ERAS:
        if era == name or era.upper() == letter:
            return start.year
    raise ValueError(era)


@dataclass(frozen=True, slots=True)
class AddressKey:
    """An address reduced to its town (町字) and its numbers (丁目, 番, 号 or 番地)."""

    town: str
    numbers: tuple[str, ...]


_PREFECTURE = re.compile(r"^(?:北海道|東京都|京都府|大阪府|[^\d\-]{2,3}県)")
_CHOME_NUMERAL = re.compile(r"([〇一二三四五六七八九十]+)丁目")
_NO_BETWEEN_DIGITS = re.compile(r"(?<=\d)[のノ之](?=\d)")
_DIGITS = re.compile(r"\d+")
_KANJI_DIGITS = {char: value for value, char in enumerate("〇一二三四五六七八九")}


def _kanji_number(text: str) -> int:
    """一 … 九十九 (丁目 numbers), as written in addresses."""
    if "十" not in text:
        value = 0
        for char in text:
            value = value * 10 + _KANJI_DIGITS[char]
        return value
    tens, _, ones = text.partition("十")
    return (_KANJI_DIGITS[tens] if tens else 1) * 10 + (_KANJI_DIGITS[ones] if ones else 0)


def _fold_address_text(text: str) -> str:
    text = _without_spaces(unicodedata.normalize("NFKC", text)).translate(_VARIATION_SELECTORS)
    text = _CHOME_NUMERAL.sub(lambda match: f"{_kanji_number(match[1])}丁目", text)
    text = _NO_BETWEEN_DIGITS.sub("-", text)
    return text.translate(_NAME_FOLD_TABLE)


@lru_cache(maxsize=1 << 17)
def normalize_address(text: str, municipality_prefixes: tuple[str, ...] = ()) -> AddressKey:
    """The town and numbers of an address, the prefecture and given municipalities dropped.

    ``埼玉県越谷市越ヶ谷四丁目2番1号`` and ``越ケ谷４－２－１`` give the same key when
    ``越谷市`` is among ``municipality_prefixes``.
    """
    text = _PREFECTURE.sub("", _fold_address_text(text), count=1)
    for prefix in municipality_prefixes:
        folded = _fold_address_text(prefix)
        if folded and text.startswith(folded):
            text = text[len(folded) :]
            break
    for oaza in ("大字", "字"):
        if text.startswith(oaza) and len(text) > len(oaza):
            text = text[len(oaza) :]
            break
    digit = _DIGITS.search(text)
    town = (text[: digit.start()] if digit else text).rstrip("-")
    numbers = tuple(str(int(number)) for number in _DIGITS.findall(text[digit.start() :])) if digit else ()
    return AddressKey(town, numbers)


# --- people and queries ---------------------------------------------------------------


class PersonRecord(Protocol):
    """What the index needs of a person; :class:`Person` is the plain form."""

    @property
    def key(self) -> str: ...
    @property
    def name_kanji(self) -> str: ...
    @property
    def name_kana(self) -> str: ...
    @property
    def sex(self) -> str: ...
    @property
    def birth_date(self) -> date: ...
    @property
    def address(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Person:
    """A person's four items as registered, under a key (usually the resident code)."""

    key: str
    name_kanji: str
    name_kana: str
    sex: str
    birth_date: date
    address: str


@dataclass(frozen=True, slots=True)
class FourItemQuery:
    """What is known of the person sought; any item may be missing.

    ``name`` may be written in kanji or in kana (a kana-only name is compared with the
    reading); ``name_kana`` gives the reading explicitly.
    """

    name: str | None = None
    name_kana: str | None = None
    address: str | None = None
    sex: str | None = None
    birth_date: date | str | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A person found, the overall score (0–1) and how each queried item compared."""

    person: PersonRecord
    score: float
    item_scores: Mapping[Item, float]
    matched_items: frozenset[Item]

    @property
    def key(self) -> str:
        return self.person.key

    @property
    def all_items_matched(self) -> bool:
        """Every item the query gave matched: the M03 confirmation of a person."""
        return len(self.matched_items) == len(self.item_scores)


# --- comparison -----------------------------------------------------------------------


def _grams(text: str) -> set[str]:
    """Character bigrams without wildcards; a one-character text is its own gram."""
    if len(text) < 2:
        return {text} if text and text != WILDCARD else set()
    return {text[i : i + 2] for i in range(len(text) - 1) if WILDCARD not in text[i : i + 2]}


def _equal_with_wildcards(left: str, right: str) -> bool:
    return len(left) == len(right) and all(
        a in (b, WILDCARD) or b == WILDCARD for a, b in zip(left, right)
    )


def _text_similarity(q_exact: str, q_folded: str, exact: str, folded: str, surname: str) -> float:
    if q_exact == exact:
        return SAME_TEXT
    if q_folded == folded:
        return SAME_AFTER_FOLDING
    if (WILDCARD in q_folded or WILDCARD in folded) and _equal_with_wildcards(q_folded, folded):
        return SAME_WITH_WILDCARD
    if q_folded == surname:
        return SURNAME_ONLY
    left, right = _grams(q_folded), _grams(folded)
    if not left or not right:
        return 0.0
    return PARTIAL_CEILING * 2 * len(left & right) / (len(left) + len(right))


def _address_similarity(query: AddressKey, stored: AddressKey) -> float:
    if query.town != stored.town:
        return 0.0
    shorter, longer = sorted((query.numbers, stored.numbers), key=len)
    if longer[: len(shorter)] == shorter:
        # One is a prefix of the other (a town alone, down to 丁目, down to 号 …).
        return 0.6 + 0.4 * (len(shorter) / len(longer) if longer else 1.0)
    common = 0
    for a, b in zip(query.numbers, stored.numbers):
        if a != b:
            break
        common += 1
    return 0.5 * common / len(shorter)


def _birth_date_similarity(query: date, stored: date) -> float:
    if query == stored:
        return 1.0
    same = (query.year == stored.year) + (query.month == stored.month) + (query.day == stored.day)
    swapped = query.year == stored.year and query.month == stored.day and query.day == stored.month
    return NEAR_BIRTH_DATE if same == 2 or swapped else 0.0


@dataclass(slots=True)
class _Entry:
    person: PersonRecord
    name_exact: str
    name_folded: str
    kana_exact: str
    kana_folded: str
    surname_folded: str  # the part of the registered name before the first space (氏)
    kana_surname_folded: str
    sex: str
    birth_date: date
    address: AddressKey
    name_grams: tuple[str, ...]
    kana_grams: tuple[str, ...]
    address_keys: tuple[tuple[str, ...], ...]


@dataclass(slots=True)
class _PreparedQuery:
    name_exact: str | None = None
    name_folded: str | None = None
    kana_exact: str | None = None
    kana_folded: str | None = None
    sex: str | None = None
    birth_date: date | None = None
    address: AddressKey | None = None
    total_weight: float = 0.0


# --- the index ------------------------------------------------------------------------

_ADDRESS_KEY_DEPTH = 3  # town, town+丁目 (or 番地), town+丁目+番


class FourItemIndex:
    """People of one municipality, searchable by the four items (基本4情報).

    Candidates are gathered in widening steps, each taken only while no candidate scores
    as a strong match: the birth-date bucket (about ten people per date), a small address
    block (one 番 or 番地), people whose name or reading has every bigram of the queried
    one, people sharing half of them (a mistyped name), and last a whole 丁目 or town.
    So a mistyped birth date or address still finds the person, ranked lower.

    Adding a person under an existing key replaces the entry (a registry update, 異動).
    One writer at a time; searches do not modify the index.
    """

    def __init__(
        self,
        *,
        municipality_prefixes: Iterable[str] = (),
        name_candidate_limit: int = 300,
        address_candidate_limit: int = 2000,
        small_block: int = 200,
        strong_score: float = 0.9,
        min_score: float = 0.5,
    ) -> None:
        self._municipality_prefixes = tuple(municipality_prefixes)
        self._name_candidate_limit = name_candidate_limit
        self._address_candidate_limit = address_candidate_limit
        self._small_block = small_block
        self._strong_score = strong_score
        self._min_score = min_score
        self._entries: list[_Entry | None] = []
        self._free_slots: list[int] = []
        self._slot_of: dict[str, int] = {}
        self._by_birth_date: dict[date, list[int]] = {}
        self._by_name_gram: dict[str, list[int]] = {}
        self._by_kana_gram: dict[str, list[int]] = {}
        self._by_address: dict[tuple[str, ...], list[int]] = {}

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, key: object) -> bool:
        return key in self._slot_of

    def __iter__(self) -> Iterator[PersonRecord]:
        return (entry.person for entry in self._entries if entry is not None)

    def get(self, key: str) -> PersonRecord | None:
        slot = self._slot_of.get(key)
        entry = None if slot is None else self._entries[slot]
        return None if entry is None else entry.person

    def add(self, person: PersonRecord) -> None:
        """Index a person; a person already indexed under the same key is replaced."""
        entry = self._entry_for(person)
        if person.key in self._slot_of:
            self.remove(person.key)
        if self._free_slots:
            slot = self._free_slots.pop()
            self._entries[slot] = entry
        else:
            slot = len(self._entries)
            self._entries.append(entry)
        self._slot_of[person.key] = slot
        self._by_birth_date.setdefault(entry.birth_date, []).append(slot)
        for gram in entry.name_grams:
            self._by_name_gram.setdefault(gram, []).append(slot)
        for gram in entry.kana_grams:
            self._by_kana_gram.setdefault(gram, []).append(slot)
        for address_key in entry.address_keys:
            self._by_address.setdefault(address_key, []).append(slot)

    def remove(self, key: str) -> None:
        """Drop a person from the index (moved out, deceased); KeyError when unknown."""
        slot = self._slot_of.pop(key)
        entry = self._entries[slot]
        assert entry is not None
        _unpost(self._by_birth_date, entry.birth_date, slot)
        for gram in entry.name_grams:
            _unpost(self._by_name_gram, gram, slot)
        for gram in entry.kana_grams:
            _unpost(self._by_kana_gram, gram, slot)
        for address_key in entry.address_keys:
            _unpost(self._by_address, address_key, slot)
        self._entries[slot] = None
        self._free_slots.append(slot)

    def search(self, query: FourItemQuery, limit: int = 10) -> list[Candidate]:
        """Candidates for the query, best first, at most ``limit`` of them.

        Raises :class:`QueryTooBroad` when the query has no name, birth date or address,
        and :class:`InvalidQuery` when an item cannot be read.
        """
        prepared = self._prepare(query)
        scored: dict[int, Candidate] = {}
        if prepared.birth_date is not None:
            self._consider(self._by_birth_date.get(prepared.birth_date, ()), prepared, scored)
        # A small address block (番 or 番地: a few dozen people) is tried before the name, whose
        # commonest bigrams (佐藤, 鈴木) are shared by thousands; a whole town or 丁目 after it.
        block = self._address_candidates(prepared.address) if prepared.address is not None else []
        small_block = len(block) <= self._small_block
        if small_block and not self._has_strong(scored):
            self._consider(block, prepared, scored)
        if prepared.name_folded is not None or prepared.kana_folded is not None:
            if not self._has_strong(scored):
                self._consider(self._name_candidates(prepared, every_gram=True), prepared, scored)
            # Tolerating a mistyped name is needed only when no one's name matched.
            if not self._has_strong(scored) and not _any_matched(scored, Item.NAME):
                self._consider(self._name_candidates(prepared, every_gram=False), prepared, scored)
        if not small_block and not self._has_strong(scored) and not _any_matched(scored, Item.NAME):
            self._consider(block, prepared, scored)
        kept = [c for c in scored.values() if c.score >= self._min_score]
        kept.sort(key=lambda c: (-c.score, c.person.key))
        return kept[:limit]

    # --- internals ----------------------------------------------------------------

    def _entry_for(self, person: PersonRecord) -> _Entry:
        # NFKC once per text: the exact form, the folded form and the surname all start from it.
        name_words = unicodedata.normalize("NFKC", person.name_kanji).split()
        kana_words = unicodedata.normalize("NFKC", person.name_kana).split()
        name_exact = "".join(name_words).translate(_NAME_TABLE)
        kana_exact = "".join(kana_words).translate(_KANA_TABLE)
        name_folded = _fold_normalized_name(name_exact)
        kana_folded = _fold_normalized_kana(kana_exact)
        surname = name_words[0].translate(_NAME_TABLE) if name_words else ""
        kana_surname = kana_words[0].translate(_KANA_TABLE) if kana_words else ""
        address = normalize_address(person.address, self._municipality_prefixes)
        address_keys = tuple(
            (address.town, *address.numbers[:depth])
            for depth in range(min(len(address.numbers), _ADDRESS_KEY_DEPTH - 1) + 1)
        )
        return _Entry(
            person=person,
            name_exact=name_exact,
            name_folded=name_folded,
            kana_exact=kana_exact,
            kana_folded=kana_folded,
            surname_folded=_fold_normalized_name(surname),
            kana_surname_folded=_fold_normalized_kana(kana_surname),
            sex=normalize_sex(person.sex),
            birth_date=parse_birth_date(person.birth_date),
            address=address,
            name_grams=tuple(_grams(name_folded)),
            kana_grams=tuple(_grams(kana_folded)),
            address_keys=address_keys,
        )

    def add_all(self, people: Iterable[PersonRecord]) -> None:
        """Index many people at once (loading a municipality at start-up).

        The cyclic garbage collector is paused meanwhile: the index creates millions of
        objects and no cycles, and repeated full collections would cost a fifth of the load.
        """
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            for person in people:
                self.add(person)
        finally:
            if was_enabled:
                gc.enable()

    def _prepare(self, query: FourItemQuery) -> _PreparedQuery:
        prepared = _PreparedQuery()
        items: list[Item] = []
        name, kana = _present(query.name), _present(query.name_kana)
        if name is not None and kana is None and is_kana(name):
            name, kana = None, name
        if name is not None:
            prepared.name_exact = normalize_name(name)
            prepared.name_folded = _fold_normalized_name(prepared.name_exact)
        if kana is not None:
            prepared.kana_exact = normalize_kana(kana)
            prepared.kana_folded = _fold_normalized_kana(prepared.kana_exact)
        if name is not None or kana is not None:
            items.append(Item.NAME)
        if _present(query.birth_date) is not None:
            prepared.birth_date = parse_birth_date(query.birth_date)
            items.append(Item.BIRTH_DATE)
        address = _present(query.address)
        if address is not None:
            prepared.address = normalize_address(address, self._municipality_prefixes)
            items.append(Item.ADDRESS)
        if _present(query.sex) is not None:
            prepared.sex = normalize_sex(query.sex)
            items.append(Item.SEX)
        if not set(items) & {Item.NAME, Item.BIRTH_DATE, Item.ADDRESS}:
            raise QueryTooBroad("give at least a name, a birth date or an address")
        prepared.total_weight = sum(ITEM_WEIGHTS[item] for item in items)
        return prepared

    def _consider(self, slots: Iterable[int], query: _PreparedQuery, scored: dict[int, Candidate]) -> None:
        entries = self._entries
        for slot in slots:
            if slot not in scored:
                entry = entries[slot]
                if entry is not None:
                    scored[slot] = _score(entry, query)

    def _has_strong(self, scored: Mapping[int, Candidate]) -> bool:
        return any(candidate.score >= self._strong_score for candidate in scored.values())

    def _name_candidates(self, query: _PreparedQuery, *, every_gram: bool) -> list[int]:
        """People whose name (or reading) has every bigram of the queried one, or at least half."""
        if query.name_folded is not None:
            grams, postings = _grams(query.name_folded), self._by_name_gram
        else:
            grams, postings = _grams(query.kana_folded or ""), self._by_kana_gram
        if not grams:
            return []
        lists = sorted((postings.get(gram, ()) for gram in sorted(grams)), key=len)  # stable: same order every run
        if every_gram:
            if not lists[0]:
                return []
            # Set operations run in C: a few milliseconds at worst for the commonest names.
            return sorted(set(lists[0]).intersection(*lists[1:]))[: self._name_candidate_limit]
        shared: Counter[int] = Counter()
        for slots in lists:
            shared.update(slots)
        needed = max(1, (len(grams) + 1) // 2)
        return [slot for slot, count in shared.most_common(self._name_candidate_limit) if count >= needed]

    def _address_candidates(self, address: AddressKey) -> list[int]:
        key = (address.town, *address.numbers[: _ADDRESS_KEY_DEPTH - 1])
        return self._by_address.get(key, [])[: self._address_candidate_limit]


def _any_matched(scored: Mapping[int, Candidate], item: Item) -> bool:
    return any(item in candidate.matched_items for candidate in scored.values())


def _present(value: object) -> object | None:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _unpost(postings: dict, key: object, slot: int) -> None:
    slots = postings[key]
    slots.remove(slot)
    if not slots:
        del postings[key]


def _score(entry: _Entry, query: _PreparedQuery) -> Candidate:
    item_scores: dict[Item, float] = {}
    if query.name_folded is not None or query.kana_folded is not None:
        parts = []
        if query.name_folded is not None:
            parts.append(
                _text_similarity(
                    query.name_exact, query.name_folded, entry.name_exact, entry.name_folded, entry.surname_folded
                )
            )
        if query.kana_folded is not None:
            parts.append(
                _text_similarity(
                    query.kana_exact, query.kana_folded, entry.kana_exact, entry.kana_folded, entry.kana_surname_folded
                )
            )
        item_scores[Item.NAME] = sum(parts) / len(parts)
    if query.birth_date is not None:
        item_scores[Item.BIRTH_DATE] = _birth_date_similarity(query.birth_date, entry.birth_date)
    if query.address is not None:
        item_scores[Item.ADDRESS] = _address_similarity(query.address, entry.address)
    if query.sex is not None:
        item_scores[Item.SEX] = 1.0 if query.sex == entry.sex else 0.0
    total = sum(ITEM_WEIGHTS[item] * value for item, value in item_scores.items())
    matched = frozenset(item for item, value in item_scores.items() if value >= MATCH_THRESHOLDS[item])
    return Candidate(entry.person, total / query.total_weight, item_scores, matched)
