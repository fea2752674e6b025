"""The register kept current from the resident change feed (住基異動連携, M30, M31).

The register copies a person's items from the integrated address system at enrolment
(flow [03]); after that, each change on the resident register (``resident_registry``'s
``changed`` event) brings them up to date: a new address, a corrected name, a move-out or a
death. A person who moved out or died stays on the register with their doses (M31); only
residents are reminded. People the register does not hold are not its business here: they
come in by enrolment. The My Number the event carries is not kept.

A redelivered or duplicated change applies the same values again and changes nothing; an
older change arriving after a newer one (``recorded_at`` before the subject's last) is
left alone, so it never undoes the newer.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.health_mgmt.addressing import REGISTER_ITEMS
from services.health_mgmt.models import Subject
from shared.contracts.residents import ResidentChanged
from shared.models import as_utc, utcnow

#: The register's columns a change may set; the resident code is how the person is found.
FOLLOWED_ITEMS = REGISTER_ITEMS - {"resident_code"}


def apply_resident_change(session: Session, change: ResidentChanged) -> str:
    """Apply one change; returns ``updated``, ``unchanged``, ``stale`` or ``not_enrolled``."""
    subject = session.scalar(select(Subject).where(Subject.resident_code == change.resident.resident_code).with_for_update())
    if subject is None:
        return "not_enrolled"
    recorded_at = as_utc(change.recorded_at)
    last = as_utc(subject.last_change_at)
    if last is not None and recorded_at < last:
        return "stale"
    items = change.resident.address_items(change.status_after())
    changed = False
    for key in FOLLOWED_ITEMS:
        if getattr(subject, key) != items[key]:
            setattr(subject, key, items[key])
            changed = True
    subject.last_change_at = recorded_at
    if changed:
        subject.updated_at = utcnow()
    return "updated" if changed else "unchanged"
