"""HTTP models of the tax and welfare systems' staff terminal."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel


class LocalTaxLine(BaseModel):
    fiscal_year: int
    birth_date: date
    status: str  # taxed (課税) | tax_exempt (非課税)
    origin: str  # seeded | loaded


class AssistanceLine(BaseModel):
    fiscal_year: int
    birth_date: date
    origin: str  # seeded | loaded


class LocalTaxView(BaseModel):
    integrated_address_number: str
    records: list[LocalTaxLine]


class AssistanceView(BaseModel):
    integrated_address_number: str
    records: list[AssistanceLine]
