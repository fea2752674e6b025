"""Finding a person's identity information here first, then at the prefecture server
(本人確認情報の照会, CS functions 4 and 5; flow [04] for non-residents).

- By My Number or resident code: the record on file here; when the person is not (or no
  longer) a resident here, also the other cities' records the prefecture server holds.
- By the four items: the 4-item index of this city's residents; when no candidate agrees
  on every item given, also the prefecture server's records of people born that day (of
  that sex) in other cities, ranked here by the same rules.

With a number and some of the four items too, each candidate says which items agree: a
person is confirmed by My Number plus a match on the four items (M03).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date

from services.juki_cs import identity
from services.juki_cs.matching import (
    Candidate,
    FourItemIndex,
    FourItemQuery,
    InvalidQuery,
    QueryTooBroad,
    normalize_sex,
    parse_birth_date,
)
from services.juki_cs.runtime import JukiRuntime
from shared.contracts.juki import CityIdentity, IdentityCandidate, IdentityCandidates, IdentityRecord, PrefectureQuery
from shared.errors import InvalidRequest, Unavailable

_STRONGEST = 2.0  # a strong-score threshold no candidate reaches: gather every way the index can


@dataclass(frozen=True)
class Lookup:
    """What is asked, whichever the channel."""

    my_number: str | None = None
    resident_code: str | None = None
    name: str | None = None
    name_kana: str | None = None
    sex: str | None = None
    birth_date: date | str | None = None
    address: str | None = None

    @property
    def by_number(self) -> bool:
        return self.my_number is not None or self.resident_code is not None

    @property
    def four_items(self) -> FourItemQuery:
        return FourItemQuery(
            name=self.name, name_kana=self.name_kana, address=self.address, sex=self.sex, birth_date=self.birth_date
        )

    @property
    def items_given(self) -> list[str]:
        given = {
            "my_number": self.my_number,
            "resident_code": self.resident_code,
            "name": self.name or self.name_kana,
            "birth_date": self.birth_date,
            "sex": self.sex,
            "address": self.address,
        }
        return [item for item, value in given.items() if value not in (None, "")]


async def look_up(runtime: JukiRuntime, query: Lookup, *, limit: int, other_cities: bool) -> IdentityCandidates:
    runtime.require_ready()
    try:
        if query.by_number:
            return await _by_number(runtime, query, limit, other_cities)
        return await _by_four_items(runtime, query, limit, other_cities)
    except InvalidQuery as exc:
        raise InvalidRequest(str(exc)) from None


async def _by_number(runtime: JukiRuntime, query: Lookup, limit: int, other_cities: bool) -> IdentityCandidates:
    def read() -> IdentityRecord | None:
        with runtime.ctx.db.session() as session:
            row = identity.find(session, resident_code=query.resident_code, my_number=query.my_number)
            return None if row is None else identity.record_of(row)

    found = await asyncio.to_thread(read)
    candidates = [] if found is None else [_candidate(runtime, found, runtime.city, query)]
    consulted = False
    if other_cities and (found is None or found.status != identity.RESIDENT):
        key = PrefectureQuery(my_number=query.my_number, resident_code=query.resident_code)
        elsewhere = await _ask_prefecture(runtime, key)
        candidates += [_candidate(runtime, item.record, item.city, query) for item in elsewhere]
        consulted = True
    return IdentityCandidates(candidates=_best(candidates, limit), prefecture_consulted=consulted)


async def _by_four_items(runtime: JukiRuntime, query: Lookup, limit: int, other_cities: bool) -> IdentityCandidates:
    four = query.four_items
    local = runtime.search(four, limit)
    candidates = [_from_index(c, runtime.city, "resident") for c in local]
    consulted = False
    confirmed = any(c.all_items_matched for c in local)
    if other_cities and not confirmed:
        if query.birth_date in (None, ""):
            raise InvalidRequest("other cities are searched by birth date: give one")
        born = parse_birth_date(query.birth_date)
        sex = _sex(query.sex)
        elsewhere = await _ask_prefecture(runtime, PrefectureQuery(birth_date=born, sex=sex))
        candidates += _rank_elsewhere(runtime, elsewhere, four, limit)
        consulted = True
    return IdentityCandidates(candidates=_best(candidates, limit), prefecture_consulted=consulted)


async def _ask_prefecture(runtime: JukiRuntime, key: PrefectureQuery) -> list[CityIdentity]:
    if runtime.prefecture is None:
        raise Unavailable("no prefecture server is configured: other cities cannot be searched")
    return (await runtime.prefecture.search(key)).records


def _rank_elsewhere(runtime: JukiRuntime, records: list[CityIdentity], four: FourItemQuery, limit: int) -> list[IdentityCandidate]:
    """Rank other cities' records by the four items, with the same rules as the index here."""
    if not records:
        return []
    index = FourItemIndex(municipality_prefixes=runtime.all_municipalities)
    by_key: dict[str, CityIdentity] = {}
    for item in records:
        key = f"{item.city}:{item.record.resident_code}"
        by_key[key] = item
        index.add(identity.person_of(item.record, key))
    return [_from_index(c, by_key[c.key].city, by_key[c.key].record.status) for c in index.search(four, limit=limit)]


def _candidate(runtime: JukiRuntime, record: IdentityRecord, city: str, query: Lookup) -> IdentityCandidate:
    """A person found by number; with items given, scored on them too (M03)."""
    four = query.four_items
    given = any(value not in (None, "") for value in (four.name, four.name_kana, four.address, four.birth_date, four.sex))
    score, matched = _score_one(runtime, record, four) if given else (1.0, [])
    return IdentityCandidate(
        resident_code=record.resident_code,
        name=record.name,
        name_kana=record.name_kana,
        sex=record.sex,
        birth_date=record.birth_date,
        address=record.address,
        city=city,
        status=record.status,
        score=round(score, 4),
        matched_items=matched,
    )


def _score_one(runtime: JukiRuntime, record: IdentityRecord, four: FourItemQuery) -> tuple[float, list[str]]:
    """How one person compares with the items given, by the rules of the 4-item search."""
    index = FourItemIndex(municipality_prefixes=runtime.all_municipalities, strong_score=_STRONGEST, min_score=0.0)
    index.add(identity.person_of(record))
    try:
        found = index.search(four, limit=1)
    except QueryTooBroad:  # sex alone: nothing to weigh it with
        same = normalize_sex(four.sex) == record.sex
        return (1.0, ["sex"]) if same else (0.0, [])
    if not found:  # not even gathered: no shared birth date, address block or part of the name
        return 0.0, []
    return found[0].score, sorted(item.value for item in found[0].matched_items)


def _from_index(candidate: Candidate, city: str, status: str) -> IdentityCandidate:
    person = candidate.person
    resident_code = person.key.rpartition(":")[2]
    return IdentityCandidate(
        resident_code=resident_code,
        name=person.name_kanji,
        name_kana=person.name_kana,
        sex=person.sex,
        birth_date=person.birth_date,
        address=person.address,
        city=city,
        status=status,
        score=round(min(1.0, candidate.score), 4),
        matched_items=sorted(item.value for item in candidate.matched_items),
    )


def _best(candidates: list[IdentityCandidate], limit: int) -> list[IdentityCandidate]:
    return sorted(candidates, key=lambda c: (-c.score, c.city, c.resident_code))[:limit]


def _sex(value: str | None) -> str | None:
    return None if value in (None, "") else normalize_sex(value)
