"""The ledger over HTTP: checkpoints and proofs for auditors, and the disclosure of the
records about one person for the counter (開示請求).

Permissions (granted through each service's roles): ``ledger.audit`` to read checkpoints
and proofs and to make a checkpoint on demand; ``disclosure.read`` to answer a person's
disclosure request. Every disclosure read goes to the operation log like any other read.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from shared.errors import InvalidRequest, NotFound
from shared.http import Audited
from shared.ledger.reader import LedgerError, LedgerReader
from shared.ledger.store import Ledger
from shared.staff import StaffMember


def inclusion_document(reader: LedgerReader, index: int) -> dict[str, Any]:
    """The inclusion proof of one record against the latest signed head that covers it.

    The head is the latest checkpoint when it covers the record, else the seal of the
    record's batch; any RFC 9162 verifier can check the proof against the head's root.
    """
    head = reader.latest_checkpoint()
    if head is None or head.tree_size <= index:
        head = reader.seal_covering(index)
    inclusion = reader.inclusion_proof(index, head.tree_size)
    if inclusion.root_hash != head.root_hash:
        raise LedgerError(f"the stored tree does not match the signed head at size {head.tree_size}")
    return {"tenant": reader.tenant, **inclusion.to_json(), "checkpoint": head.to_json()}


def _ledger(request: Request) -> Ledger:
    ledger = request.app.state.context.ledger
    if ledger is None:
        raise NotFound("this service keeps no ledger")
    return ledger


def _checked(call):
    try:
        return call()
    except (LedgerError, ValueError) as error:
        raise InvalidRequest(str(error)) from None


def ledger_router() -> APIRouter:
    router = APIRouter(tags=["provision records"])
    audit = [Depends(StaffMember("ledger.audit"))]

    @router.get("/ledger/checkpoints/latest", dependencies=[*audit, Depends(Audited("ledger.checkpoint.read"))])
    def latest_checkpoint(request: Request) -> dict:
        checkpoint = _ledger(request).latest_checkpoint()
        if checkpoint is None:
            raise NotFound("no checkpoint yet")
        return checkpoint.to_json()

    @router.get("/ledger/checkpoints", dependencies=[*audit, Depends(Audited("ledger.checkpoint.read"))])
    def all_checkpoints(request: Request) -> list[dict]:
        return [c.to_json() for c in _ledger(request).checkpoints()]

    @router.post("/ledger/checkpoints", status_code=201, dependencies=[*audit, Depends(Audited("ledger.checkpoint.make"))])
    def make_checkpoint(request: Request) -> dict:
        return _ledger(request).checkpoint().to_json()

    @router.get("/ledger/proofs/inclusion", dependencies=[*audit, Depends(Audited("ledger.proof.read"))])
    def inclusion(request: Request, index: int = Query(ge=0)) -> dict:
        ledger = _ledger(request)
        return _checked(lambda: inclusion_document(ledger, index))

    @router.get("/ledger/proofs/consistency", dependencies=[*audit, Depends(Audited("ledger.proof.read"))])
    def consistency(request: Request, old_size: int = Query(ge=1), new_size: int | None = Query(default=None, ge=1)) -> dict:
        ledger = _ledger(request)
        return _checked(lambda: ledger.consistency_proof(old_size, new_size).to_json())

    @router.get("/ledger/records/{index}", dependencies=[*audit, Depends(Audited("ledger.record.read"))])
    def record_evidence(request: Request, index: int) -> dict:
        ledger = _ledger(request)
        return _checked(lambda: ledger.record_proof(index).to_json())

    @router.get(
        "/disclosure/{person_key}",
        dependencies=[Depends(StaffMember("disclosure.read")), Depends(Audited("disclosure.read", person_param="person_key"))],
        summary="The provision records about one person that may be disclosed to them (開示請求)",
    )
    def disclosure(request: Request, person_key: str) -> dict:
        ledger = _ledger(request)
        records = _checked(lambda: ledger.records_about(person_key))
        return {
            "person_key": person_key,
            "records": [
                {"index": r.index, **r.record.model_dump(mode="json", exclude={"type", "person_key", "non_disclosure"})}
                for r in records
            ],
        }

    return router
