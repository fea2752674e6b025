"""A deterministic synthetic population of a municipality (模擬住民データ).

The resident records system (住民記録システム) is simulated; its residents come from here.
``generate("112224", 340_000, seed=1)`` yields Koshigaya residents household by household:

- ages and sexes follow 5-year bands shaped like the 2020 census (``data/age_pyramid.csv``),
  apportioned exactly to the number of people asked for;
- people are grouped into households (世帯) whose size depends on the head's age, with a
  spouse of plausible age, children born when the mother was 20–42 and sometimes a parent
  of the head or of the spouse (``data/household_model.json``); members share the address
  and, apart from a spouse's parent, the surname;
- surnames are drawn by frequency from about 300 common ones, old character forms
  included (髙橋, 渡邊, 齋藤 …) (``data/surnames.csv``); given names by sex and birth era
  (``data/given_names.csv``); both with their katakana readings;
- addresses are real town names (町字) of the city with 丁目 and 番・号 (住居表示) or 番地
  (地番), weighted by town population (``data/towns_<code>.csv``);
- every resident has a unique valid resident code and My Number (shared.ids).

The same city, size, seed and reference date give the same people; the reference date
fixes ages, so the output does not drift with the calendar.
"""

from __future__ import annotations

import csv
import json
import random
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from itertools import accumulate
from pathlib import Path

from shared.ids import generate_my_number, generate_resident_code, validate_local_government_code

DATA_DIR = Path(__file__).parent / "data"

REFERENCE_DATE = date(2024, 4, 1)
RESIDENT = "resident"  # status: 住民 (as opposed to moved out or deceased)

# Relation to the head of household (続柄).
HEAD = "head"  # 世帯主
SPOUSE = "spouse"  # 妻 / 夫
CHILD = "child"  # 子
PARENT = "parent"  # 父 / 母
PARENT_IN_LAW = "parent_in_law"  # 妻の父 / 夫の母 …
GRANDCHILD = "grandchild"  # 孫
OTHER_RELATIVE = "other_relative"  # その他の親族

MALE, FEMALE = "male", "female"
_REDRAWS = 10
_IDEOGRAPHIC_SPACE = "\u3000"


@dataclass(frozen=True, slots=True)
class Resident:
    """One person on the resident register (住民票), as the registry system would hold it."""

    resident_code: str  # 住民票コード
    my_number: str  # 個人番号
    family_name: str  # 氏
    given_name: str  # 名
    family_name_kana: str  # 氏カナ
    given_name_kana: str  # 名カナ
    sex: str  # "male" / "female"
    birth_date: date
    address: str  # 住所, prefecture to 号 or 番地
    town: str  # 町字
    household_id: str  # 世帯番号
    relation: str  # 続柄: HEAD, SPOUSE, CHILD …
    city: str  # local-government code of the registering municipality
    status: str = RESIDENT

    @property
    def key(self) -> str:
        return self.resident_code

    @property
    def name_kanji(self) -> str:
        """氏名, surname and given name separated by an ideographic space."""
        return f"{self.family_name}{_IDEOGRAPHIC_SPACE}{self.given_name}"

    @property
    def name_kana(self) -> str:
        """氏名カナ, in katakana."""
        return f"{self.family_name_kana}{_IDEOGRAPHIC_SPACE}{self.given_name_kana}"


# --- data -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Town:
    name: str
    chome: tuple[int, ...]  # empty: the town has no 丁目
    numbering: str  # "block": 番・号 (住居表示); "lot": 番地 (地番)
    max_number: int
    max_sub_number: int


@dataclass(frozen=True, slots=True)
class _NameTable:
    names: tuple[tuple[str, str], ...]  # (kanji, reading)
    cumulative: tuple[float, ...]

    def draw(self, rng: random.Random) -> tuple[str, str]:
        return rng.choices(self.names, cum_weights=self.cumulative)[0]


@dataclass(frozen=True, slots=True)
class _CityData:
    prefecture: str
    municipality: str
    towns: tuple[_Town, ...]
    town_cumulative: tuple[float, ...]
    surnames: _NameTable
    given_names: dict[tuple[str, int], _NameTable]  # (sex, born_from) → table
    given_name_eras: tuple[int, ...]  # sorted born_from years
    pyramid: tuple[tuple[int, int, str, int], ...]  # (age_from, age_to, sex, count)
    model: dict


def _read_csv(name: str) -> list[dict[str, str]]:
    with open(DATA_DIR / name, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _parse_chome(text: str) -> tuple[int, ...]:
    numbers: list[int] = []
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        low, _, high = part.partition("-")
        numbers.extend(range(int(low), int(high or low) + 1))
    return tuple(numbers)


@cache
def _city_data(city: str) -> _CityData:
    cities = json.loads((DATA_DIR / "cities.json").read_text(encoding="utf-8"))["cities"]
    if city not in cities:
        raise ValueError(f"no town data for local-government code {city}")
    towns, town_weights = [], []
    for row in _read_csv(f"towns_{city}.csv"):
        towns.append(
            _Town(
                name=row["town"],
                chome=_parse_chome(row["chome"]),
                numbering=row["numbering"],
                max_number=int(row["max_number"]),
                max_sub_number=int(row["max_sub_number"]),
            )
        )
        town_weights.append(float(row["population"]))
    surname_rows = _read_csv("surnames.csv")
    surnames = _NameTable(
        tuple((row["surname"], row["reading"]) for row in surname_rows),
        tuple(accumulate(float(row["weight"]) for row in surname_rows)),
    )
    grouped: dict[tuple[str, int], list[dict[str, str]]] = {}
    for row in _read_csv("given_names.csv"):
        grouped.setdefault((row["sex"], int(row["born_from"])), []).append(row)
    given_names = {
        key: _NameTable(
            tuple((row["given_name"], row["reading"]) for row in rows),
            tuple(accumulate(float(row["weight"]) for row in rows)),
        )
        for key, rows in grouped.items()
    }
    pyramid = tuple(
        (int(row["age_from"]), int(row["age_to"]), sex, int(row[sex]))
        for row in _read_csv("age_pyramid.csv")
        for sex in (MALE, FEMALE)
    )
    return _CityData(
        prefecture=cities[city]["prefecture"],
        municipality=cities[city]["municipality"],
        towns=tuple(towns),
        town_cumulative=tuple(accumulate(town_weights)),
        surnames=surnames,
        given_names=given_names,
        given_name_eras=tuple(sorted({born_from for _, born_from in given_names})),
        pyramid=pyramid,
        model=json.loads((DATA_DIR / "household_model.json").read_text(encoding="utf-8")),
    )


# --- people ---------------------------------------------------------------------------


def _apportion(total: int, weights: Sequence[int]) -> list[int]:
    """Largest-remainder apportionment: counts that sum to ``total`` exactly."""
    whole = sum(weights)
    exact = [total * weight / whole for weight in weights]
    counts = [int(value) for value in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year - years, day=28)


def _age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _draw_people(data: _CityData, people: int, rng: random.Random, as_of: date) -> list[tuple[str, date]]:
    counts = _apportion(people, [count for *_, count in data.pyramid])
    drawn: list[tuple[str, date]] = []
    for (age_from, age_to, sex, _), count in zip(data.pyramid, counts):
        # Aged age_from..age_to on as_of: born after as_of − (age_to + 1) years, up to as_of − age_from years.
        earliest = _years_before(as_of, age_to + 1).toordinal() + 1
        latest = _years_before(as_of, age_from).toordinal()
        drawn.extend((sex, date.fromordinal(rng.randint(earliest, latest))) for _ in range(count))
    rng.shuffle(drawn)
    return drawn


class _AgePools:
    """Unplaced people by sex and age, taken nearest to a wanted age."""

    def __init__(self, sexes: Sequence[str], ages: Sequence[int], placed: bytearray) -> None:
        self._pools: dict[tuple[str, int], list[int]] = {}
        for person in range(len(ages) - 1, -1, -1):  # popped from the end: the shuffled order
            self._pools.setdefault((sexes[person], ages[person]), []).append(person)
        self._placed = placed

    def take(self, sexes: Sequence[str], age: int, spread: int, low: int, high: int) -> int | None:
        for distance in range(spread + 1):
            for candidate_age in (age - distance, age + distance) if distance else (age,):
                if not low <= candidate_age <= high:
                    continue
                for sex in sexes:
                    pool = self._pools.get((sex, candidate_age))
                    while pool:
                        person = pool.pop()
                        if not self._placed[person]:
                            self._placed[person] = 1
                            return person
        return None


@dataclass(slots=True)
class _Household:
    members: list[tuple[int, str]]  # (person, relation)
    parent_age: int  # the mother's age, else the head's: what a child's age is measured from
    in_law_surname: bool = False


def _form_households(
    data: _CityData, sexes: Sequence[str], ages: Sequence[int], rng: random.Random
) -> list[_Household]:
    model = data.model
    adult = model["adult_age"]
    size_tables = [
        (band["age_from"], band["age_to"], [int(size) for size in band["sizes"]],
         list(accumulate(float(weight) for weight in band["sizes"].values())))
        for band in model["household_sizes_by_head_age"]
    ]
    spouse_share = {int(size): share for size, share in model["spouse_share_by_size"].items()}
    gap_low, gap_high = model["husband_minus_wife_years"]
    birth_low, birth_high = model["mother_age_at_birth"]
    parent_from_size = model["parent_share_from_size"]["size"]
    parent_share = model["parent_share_from_size"]["share"]
    parent_low, parent_high = model["parent_minus_head_years"]
    spread = model["age_search_years"]
    oldest = max(ages, default=0)

    placed = bytearray(len(ages))
    pools = _AgePools(sexes, ages, placed)
    households: list[_Household] = []
    for head in range(len(ages)):  # people are already in random order
        if placed[head] or ages[head] < adult:
            continue
        placed[head] = 1
        head_age = ages[head]
        sizes, cumulative = next((s, c) for low, high, s, c in size_tables if low <= head_age <= high)
        size = rng.choices(sizes, cum_weights=cumulative)[0]
        household = _Household([(head, HEAD)], head_age)
        mother_age = head_age if sexes[head] == FEMALE else None
        if size >= 2 and rng.random() < spouse_share.get(size, 0.0):
            gap = rng.randint(gap_low, gap_high)
            if sexes[head] == MALE:
                spouse = pools.take((FEMALE,), head_age - gap, spread, adult, oldest)
            else:
                spouse = pools.take((MALE,), head_age + gap, spread, adult, oldest)
            if spouse is not None:
                household.members.append((spouse, SPOUSE))
                if sexes[spouse] == FEMALE:
                    mother_age = ages[spouse]
                if sexes[head] == FEMALE and rng.random() < model["husband_as_head_share"]:
                    household.members = [(spouse, HEAD), (head, SPOUSE)]
        if size >= parent_from_size and rng.random() < parent_share:
            parent = pools.take(
                (FEMALE, MALE) if rng.random() < 0.6 else (MALE, FEMALE),  # widowed mothers outnumber fathers
                head_age + rng.randint(parent_low, parent_high), spread, head_age + parent_low, oldest,
            )
            if parent is not None:
                # The parent is of the person drawn first; if she became the spouse, an in-law.
                swapped = household.members[0][0] != head
                in_law = swapped or (
                    len(household.members) > 1 and rng.random() < model["parent_is_spouse_parent_share"]
                )
                household.members.append((parent, PARENT_IN_LAW if in_law else PARENT))
                household.in_law_surname = in_law
        parent_age = household.parent_age = mother_age if mother_age is not None else head_age
        while len(household.members) < size:
            child_age = parent_age - rng.randint(birth_low, birth_high)
            if child_age < 0:
                break
            child = pools.take(
                (MALE, FEMALE) if rng.random() < 0.5 else (FEMALE, MALE),
                child_age, spread, 0, parent_age - birth_low,
            )
            if child is None:
                break
            household.members.append((child, CHILD))
        households.append(household)

    _place_leftovers(households, ages, placed, rng, model)
    return households


def _place_leftovers(
    households: list[_Household], ages: Sequence[int], placed: bytearray, rng: random.Random, model: dict
) -> None:
    """People never drawn as anyone's child (they are minors) join a family of fitting age.

    Drawing heads at random leaves more children than families drawn for them, so each
    is given to a couple (or, one time in ten, a lone parent) whose mother could have had
    them at 20–42; failing that, to a household whose head could be a grandparent.
    """
    if not households:
        return
    birth_low, birth_high = model["mother_age_at_birth"]
    spread = model["age_search_years"]
    largest = max(int(size) for band in model["household_sizes_by_head_age"] for size in band["sizes"])
    families: dict[int, list[int]] = {}
    for index, household in enumerate(households):
        if len(household.members) >= 2 or rng.random() < 0.1:
            families.setdefault(household.parent_age, []).append(index)
    for person, is_placed in enumerate(placed):
        if is_placed:
            continue
        placed[person] = 1
        youngest, oldest = ages[person] + birth_low, ages[person] + birth_high
        wanted = rng.randint(youngest, oldest)
        household = _take_family(families, households, wanted, (youngest, oldest), spread, largest, rng)
        if household is not None:
            household.members.append((person, CHILD))
            continue
        for _ in range(50):
            household = households[rng.randrange(len(households))]
            if 46 <= ages[household.members[0][0]] - ages[person] <= 85:
                household.members.append((person, GRANDCHILD))
                break
        else:
            households[rng.randrange(len(households))].members.append((person, OTHER_RELATIVE))


def _take_family(
    families: dict[int, list[int]], households: list[_Household], age: int, bounds: tuple[int, int],
    spread: int, largest: int, rng: random.Random,
) -> _Household | None:
    for distance in range(spread + 1):
        for parent_age in (age - distance, age + distance) if distance else (age,):
            if not bounds[0] <= parent_age <= bounds[1]:
                continue
            indexes = families.get(parent_age)
            while indexes:
                position = rng.randrange(len(indexes))
                household = households[indexes[position]]
                if len(household.members) < largest:
                    return household
                indexes[position] = indexes[-1]
                indexes.pop()
    return None


# --- names and addresses ---------------------------------------------------------------

_KANJI_NUMERALS = "〇一二三四五六七八九"


def _kanji_numeral(number: int) -> str:
    """1–99 as written before 丁目 (四丁目, 十二丁目)."""
    tens, ones = divmod(number, 10)
    if tens == 0:
        return _KANJI_NUMERALS[ones]
    return ("" if tens == 1 else _KANJI_NUMERALS[tens]) + "十" + ("" if ones == 0 else _KANJI_NUMERALS[ones])


def _draw_address(data: _CityData, rng: random.Random) -> tuple[str, str]:
    town = rng.choices(data.towns, cum_weights=data.town_cumulative)[0]
    text = town.name
    if town.chome:
        text += f"{_kanji_numeral(rng.choice(town.chome))}丁目"
    number = rng.randint(1, town.max_number)
    sub_number = rng.randint(0, town.max_sub_number) if town.max_sub_number else 0
    if town.numbering == "block":
        text += f"{number}番{max(sub_number, 1)}号"
    else:
        text += f"{number}番地" + (str(sub_number) if sub_number else "")
    return f"{data.prefecture}{data.municipality}{text}", town.name


def _given_name(data: _CityData, sex: str, birth: date, rng: random.Random) -> tuple[str, str]:
    era = data.given_name_eras[max(0, bisect_right(data.given_name_eras, birth.year) - 1)]
    return data.given_names[(sex, era)].draw(rng)


# --- the generator ----------------------------------------------------------------------


def generate(city: str, people: int, seed: int, *, as_of: date = REFERENCE_DATE) -> Iterator[Resident]:
    """``people`` residents of ``city`` (a local-government code such as ``"112224"``).

    Deterministic for a given city, size, seed and reference date; households are yielded
    whole, head first.
    """
    city = validate_local_government_code(city, field="city")
    if people < 0:
        raise ValueError("people must be zero or more")
    data = _city_data(city)
    rng = random.Random(seed)
    drawn = _draw_people(data, people, rng, as_of)
    sexes = [sex for sex, _ in drawn]
    births = [birth for _, birth in drawn]
    ages = [_age_on(birth, as_of) for birth in births]
    households = _form_households(data, sexes, ages, rng)

    resident_codes: set[str] = set()
    my_numbers: set[str] = set()

    def unique(generator, used: set[str]) -> str:
        while True:
            number = generator(rng)
            if number not in used:
                used.add(number)
                return number

    for index, household in enumerate(households, start=1):
        household_id = f"{city}-{index:07d}"
        address, town = _draw_address(data, rng)
        surname = data.surnames.draw(rng)
        in_law_surname = data.surnames.draw(rng) if household.in_law_surname else surname
        names_taken: set[str] = set()
        for person, relation in household.members:
            if relation == PARENT_IN_LAW:
                family = in_law_surname
            elif relation == OTHER_RELATIVE:
                family = data.surnames.draw(rng)
            else:
                family = surname
            given = _given_name(data, sexes[person], births[person], rng)
            for _ in range(_REDRAWS):  # a family rarely gives one member another's name
                if family[0] + given[0] not in names_taken:
                    break
                given = _given_name(data, sexes[person], births[person], rng)
            names_taken.add(family[0] + given[0])
            yield Resident(
                resident_code=unique(generate_resident_code, resident_codes),
                my_number=unique(generate_my_number, my_numbers),
                family_name=family[0],
                given_name=given[0],
                family_name_kana=family[1],
                given_name_kana=given[1],
                sex=sexes[person],
                birth_date=births[person],
                address=address,
                town=town,
                household_id=household_id,
                relation=relation,
                city=city,
            )
