"""Staff roles at the registry's counter and what each may do (M06).

- ``registrar`` (住民記録担当): records changes and reads the register;
- ``viewer`` (照会担当): reads the register and a person's changes, and nothing more.
"""

from __future__ import annotations

READ = "residents.read"
RECORD = "changes.record"

ROLES: dict[str, frozenset[str]] = {
    "registrar": frozenset({READ, RECORD}),
    "viewer": frozenset({READ}),
}
