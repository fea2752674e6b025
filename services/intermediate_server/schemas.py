"""HTTP models of the staff terminal (中間サーバー端末) beyond the contracts'."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.types import IntegratedAddressNumber


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


class SubjectRequestIn(BaseModel):
    """A person's request as taken at the counter (本人からの請求, M34)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["disclosure", "correction", "suspension"]
    integrated_address_number: IntegratedAddressNumber  # its check digit too: a mistyped number names nobody
    details: str = Field(min_length=1, max_length=2000, description="what the person asks, in their words")


class SubjectRequestDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accept: bool
    reason: str = Field(min_length=1, max_length=500)


class SubjectRequestView(BaseModel):
    id: int
    kind: str
    integrated_address_number: str
    details: str
    received_by: str
    received_at: datetime
    state: str
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None
    lifted_by: str | None = None
    lifted_at: datetime | None = None
    suspends_provision: bool = False
