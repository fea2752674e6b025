"""The staff terminal's HTTP API: one person's records, local tax to the tax clerks and public
assistance to the caseworkers (M06), every read in the operation log with the person's
integrated address number (M08)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from services.tax_welfare import records
from services.tax_welfare.roles import READ_ASSISTANCE, READ_TAX
from services.tax_welfare.schemas import AssistanceView, LocalTaxView
from shared.contracts.types import IntegratedAddressNumber
from shared.http import Audited
from shared.staff import SignedIn, StaffMember

READ_TAX_OPERATION = "tax_welfare.local_tax.read"
READ_ASSISTANCE_OPERATION = "tax_welfare.public_assistance.read"


def router() -> APIRouter:
    api = APIRouter(tags=["records"])

    @api.get(
        "/people/{number}/local-tax",
        dependencies=[Depends(Audited(READ_TAX_OPERATION, person_param="number"))],
        response_model=LocalTaxView,
        summary="A person's local-tax records (住民税 課税 / 非課税), per fiscal year",
    )
    def local_tax(number: IntegratedAddressNumber, request: Request, member: SignedIn = Depends(StaffMember(READ_TAX))) -> LocalTaxView:
        with request.app.state.context.db.session() as session:
            lines = records.local_tax_records(session, number)
        return LocalTaxView(integrated_address_number=number, records=lines)

    @api.get(
        "/people/{number}/public-assistance",
        dependencies=[Depends(Audited(READ_ASSISTANCE_OPERATION, person_param="number"))],
        response_model=AssistanceView,
        summary="The fiscal years in which a person receives public assistance (生活保護)",
    )
    def public_assistance(
        number: IntegratedAddressNumber, request: Request, member: SignedIn = Depends(StaffMember(READ_ASSISTANCE))
    ) -> AssistanceView:
        with request.app.state.context.db.session() as session:
            lines = records.assistance_records(session, number)
        return AssistanceView(integrated_address_number=number, records=lines)

    return api
