"""Statistics that identify nobody (M35): counts only, small cells suppressed.

A table is counts per (row, column) with row, column and grand totals. A count below
``min_cell`` (but not zero) is withheld (primary suppression), and so is a small total.
What is published then ties the withheld values together by linear equations: each row's
cells add up to its total, each column's to its total, the row totals and the column totals
to the grand total. A withheld value is *derivable* when those equations fix it, e.g. a
row with one withheld cell and a published total, or a withheld row total when the grand
total and every other row total are published. Secondary suppression withholds more
(the smallest published non-zero cell that helps, else the smallest total that helps)
until no withheld cell or total is derivable from anything published. No person-level row
ever leaves.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.health_mgmt.catalogue import load_catalogue
from services.health_mgmt.models import Dose, Subject
from services.health_mgmt.schedule import Period, attained_on


@dataclass(frozen=True)
class Table:
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cells: dict[tuple[str, str], int | None]  # None: withheld
    row_totals: dict[str, int | None]
    column_totals: dict[str, int | None]
    total: int | None
    min_cell: int

    def to_dict(self) -> dict:
        return {
            "min_cell": self.min_cell,
            "columns": list(self.columns),
            "rows": [
                {
                    "row": row,
                    "cells": {column: self.cells[(row, column)] for column in self.columns},
                    "total": self.row_totals[row],
                }
                for row in self.rows
            ],
            "column_totals": dict(self.column_totals),
            "total": self.total,
        }


def _small(count: int, min_cell: int) -> bool:
    return 0 < count < min_cell


#: The values of a table: ("cell", row, column), ("row", row), ("column", column), ("total",).
Value = tuple[Hashable, ...]
_MARGIN = ("margin",)


def _ends(value: Value) -> tuple[tuple, tuple]:
    """The value as an edge between a row node and a column node of the table with its margins.

    Border the table with its totals: the row totals are one more column, the column totals
    one more row, the grand total their corner. Every line of that bordered table says "the
    cells add up to the total", so each withheld value is an unknown in two lines (a row and
    a column of the bordered table): an edge between the two.
    """
    kind = value[0]
    if kind == "cell":
        return ("row", value[1]), ("column", value[2])
    if kind == "row":
        return ("row", value[1]), ("column", _MARGIN)
    if kind == "column":
        return ("row", _MARGIN), ("column", value[1])
    return ("row", _MARGIN), ("column", _MARGIN)


def derivable(withheld: set[Value]) -> set[Value]:
    """The withheld values that what is published fixes.

    The unknowns of the bordered table's lines are fixed exactly up to its cycles: a set of
    withheld values forming a cycle (row, column, row, ...) can move together by +1/−1 and
    keep every line's sum, and nothing else can move. So a withheld value is derivable
    exactly when its edge lies on no cycle: when it is a bridge of the graph of withheld
    values (found in linear time, Tarjan's low-link).
    """
    edges = [(value, *_ends(value)) for value in withheld]
    neighbours: dict[tuple, list[tuple[tuple, int]]] = {}
    for index, (_, u, v) in enumerate(edges):
        neighbours.setdefault(u, []).append((v, index))
        neighbours.setdefault(v, []).append((u, index))
    order: dict[tuple, int] = {}
    low: dict[tuple, int] = {}
    bridges: set[Value] = set()
    for root in neighbours:
        if root in order:
            continue
        order[root] = low[root] = len(order)
        stack = [(root, -1, iter(neighbours[root]))]
        while stack:
            node, via, pending = stack[-1]
            step = next(pending, None)
            if step is None:
                stack.pop()
                if stack:
                    parent = stack[-1][0]
                    low[parent] = min(low[parent], low[node])
                    if low[node] > order[parent]:
                        bridges.add(edges[via][0])
                continue
            other, index = step
            if index == via:
                continue
            if other in order:
                low[node] = min(low[node], order[other])
            else:
                order[other] = low[other] = len(order)
                stack.append((other, index, iter(neighbours[other])))
    return bridges


def _by_preference(candidates: list[Value], values: Mapping[Value, int]) -> list[Value]:
    """Cells before totals, the smallest first (the least information withheld)."""
    return sorted(candidates, key=lambda value: (value[0] != "cell", values[value], repr(value)))


def suppressed_table(counts: Mapping[tuple[str, str], int], rows, columns, min_cell: int) -> Table:
    """Counts per (row, column), with primary and secondary suppression of cells and totals."""
    rows, columns = tuple(rows), tuple(columns)
    full = {(r, c): int(counts.get((r, c), 0)) for r in rows for c in columns}
    row_totals = {r: sum(full[(r, c)] for c in columns) for r in rows}
    column_totals = {c: sum(full[(r, c)] for r in rows) for c in columns}
    total = sum(row_totals.values())
    values: dict[Value, int] = {("cell", r, c): n for (r, c), n in full.items()}
    values.update({("row", r): t for r, t in row_totals.items()})
    values.update({("column", c): t for c, t in column_totals.items()})
    values[("total",)] = total
    hidden = {value for value, count in values.items() if _small(count, min_cell)}
    exposed = derivable(hidden)
    while exposed:
        # Withhold what the equations that expose a value also use: the smallest non-zero cell
        # first (totals last), preferring one that leaves fewer values derivable.
        lines = {end for value in exposed for end in _ends(value)}
        related = {value for value in values if lines & set(_ends(value))}
        published = [value for value in values if value not in hidden]
        candidates = _by_preference([v for v in published if v in related and values[v] > 0], values)
        candidates = candidates or _by_preference([v for v in published if values[v] > 0], values) or _by_preference(published, values)
        for candidate in candidates:
            after = derivable(hidden | {candidate})
            if len(after) < len(exposed):
                break
        else:
            candidate = candidates[0]
            after = derivable(hidden | {candidate})
        hidden.add(candidate)
        exposed = after
    return Table(
        rows=rows,
        columns=columns,
        cells={key: (None if ("cell", *key) in hidden else count) for key, count in full.items()},
        row_totals={r: None if ("row", r) in hidden else t for r, t in row_totals.items()},
        column_totals={c: None if ("column", c) in hidden else t for c, t in column_totals.items()},
        total=None if ("total",) in hidden else total,
        min_cell=min_cell,
    )


# --- the register's statistics ------------------------------------------------------------

AGE_BANDS = ("0歳", "1歳", "2–6歳", "7–12歳", "13–17歳", "18–64歳", "65歳以上")


def age_band(years: int) -> str:
    if years <= 1:
        return AGE_BANDS[years]
    for limit, band in ((6, AGE_BANDS[2]), (12, AGE_BANDS[3]), (17, AGE_BANDS[4]), (64, AGE_BANDS[5])):
        if years <= limit:
            return band
    return AGE_BANDS[6]


def age_in_years(birth: date, on: date) -> int:
    """Whole years attained on ``on`` (an age is attained the day before the birthday)."""
    years = max(on.year - birth.year, 0)
    while years > 0 and attained_on(birth, Period(years=years)) > on:
        years -= 1
    return years


def doses_by_type_and_age(session: Session, fiscal_year: int, min_cell: int) -> Table:
    """Doses given in a fiscal year, per vaccine type and age band at the dose."""
    start, end = date(fiscal_year, 4, 1), date(fiscal_year + 1, 3, 31)
    query = (
        select(Dose.record_type, Dose.dose_date, Subject.birth_date)
        .join(Subject, Subject.integrated_address_number == Dose.subject_number)
        .where(Dose.dose_date >= start, Dose.dose_date <= end, Dose.examination_type == "inoculated")
    )
    catalogue = load_catalogue()
    counts: dict[tuple[str, str], int] = {}
    for record_type, day, birth in session.execute(query):
        key = (catalogue.record_type(record_type).name_ja, age_band(age_in_years(birth, day)))
        counts[key] = counts.get(key, 0) + 1
    rows = [catalogue.record_type(code).name_ja for code in catalogue.codes]
    return suppressed_table(counts, rows, AGE_BANDS, min_cell)
