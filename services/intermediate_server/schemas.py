"""HTTP models of the staff terminal (中間サーバー端末) beyond the contracts'."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ReviewDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, min_length=1, max_length=500)


class ReviewEntry(BaseModel):
    serial_number: str
    requester: str
    affair_code: str
    procedure_code: str
    item_code: str
    integrated_address_number: str
    state: str
    received_at: datetime


class DecisionReply(BaseModel):
    serial_number: str
    status: str
    refusal_reason: str | None = None


class PersonCopyView(BaseModel):
    integrated_address_number: str
    items: list[dict[str, Any]]


class CopyExport(BaseModel):
    item_code: str
    people: list[dict[str, Any]]
    next_after: str | None
