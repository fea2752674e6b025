"""Statistics that identify nobody (M35): counts only, small cells suppressed.

A table is counts per (row, column). A count below ``min_cell`` (but not zero) is withheld
(primary suppression). A row or column total is shown, so a row or column with exactly one
withheld cell would give it away by subtraction: there the next smallest non-zero cell is
withheld too (secondary suppression), until no withheld cell can be derived from one line.
Totals that are themselves small are withheld as well. No person-level row ever leaves.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def suppressed_table(counts: Mapping[tuple[str, str], int], rows, columns, min_cell: int) -> Table:
    """Counts per (row, column), with primary and secondary suppression."""
    rows, columns = tuple(rows), tuple(columns)
    full = {(r, c): int(counts.get((r, c), 0)) for r in rows for c in columns}
    hidden = {key for key, count in full.items() if _small(count, min_cell)}
    row_totals = {r: sum(full[(r, c)] for c in columns) for r in rows}
    column_totals = {c: sum(full[(r, c)] for r in rows) for c in columns}
    hidden_rows = {r for r, t in row_totals.items() if _small(t, min_cell)}
    hidden_columns = {c for c, t in column_totals.items() if _small(t, min_cell)}
    changed = True
    while changed:  # a line with a published total and one withheld cell gives that cell away
        changed = False
        lines = [[(r, c) for c in columns] for r in rows if r not in hidden_rows]
        lines += [[(r, c) for r in rows] for c in columns if c not in hidden_columns]
        for line in lines:
            withheld = [key for key in line if key in hidden]
            if len(withheld) == 1:
                candidates = sorted((full[key], key) for key in line if key not in hidden and full[key] > 0)
                if candidates:
                    hidden.add(candidates[0][1])
                    changed = True
    total = sum(row_totals.values())
    return Table(
        rows=rows,
        columns=columns,
        cells={key: (None if key in hidden else count) for key, count in full.items()},
        row_totals={r: None if r in hidden_rows else t for r, t in row_totals.items()},
        column_totals={c: None if c in hidden_columns else t for c, t in column_totals.items()},
        total=None if _small(total, min_cell) else total,
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
