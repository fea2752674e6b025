"""Staff roles of the tax and welfare systems (simulated) and what each may do (M06).

- a tax clerk (税務担当) reads a person's local-tax records;
- a caseworker (生活保護担当) reads a person's public-assistance records;
- a supervisor (係長) reads both.
"""

READ_TAX = "records.read_tax"
READ_ASSISTANCE = "records.read_assistance"

ROLES: dict[str, frozenset[str]] = {
    "tax_clerk": frozenset({READ_TAX}),
    "caseworker": frozenset({READ_ASSISTANCE}),
    "supervisor": frozenset({READ_TAX, READ_ASSISTANCE}),
}
