"""Staff roles of the health management and what each may do (M06).

- a nurse (保健師・看護師) enrols people, records doses at the counter and reads records;
- a clerk (事務担当) reads records, issues certificates, runs the reminder batch and asks the
  tax and welfare systems for the fee determination (実費徴収);
- a supervisor (係長) may in addition export the register, read commission fees, keep the
  clinic master and see statistics: exports are for administrators only (M10);
- a system administrator (システム管理者) watches the copy for provision (副本) and reconciles
  it with the register; they read no one's records.
Statistics are counts only, with small cells suppressed (M35), whoever reads them.
"""

READ = "register.read"
ENROL = "register.enrol"
RECORD = "register.record"
CERTIFY = "register.certify"
REMIND = "register.remind"
EXPORT = "register.export"
FEES = "register.fees"
CLINICS = "register.clinics"
STATISTICS = "register.statistics"
COPIES = "register.copies"
DETERMINE_FEES = "register.determine_fees"

ROLES: dict[str, frozenset[str]] = {
    "nurse": frozenset({READ, ENROL, RECORD, CERTIFY}),
    "clerk": frozenset({READ, CERTIFY, REMIND, DETERMINE_FEES}),
    "supervisor": frozenset({READ, CERTIFY, REMIND, DETERMINE_FEES, EXPORT, FEES, CLINICS, STATISTICS}),
    "administrator": frozenset({COPIES}),
}
