"""The vaccination register's tables (予防接種台帳).

- ``subjects`` (接種対象者): one row per person, keyed by the integrated address number
  (統合宛名番号) the integrated address system assigned; the resident code (住民票コード)
  and the voucher number (接種券番号) the city printed on the person's vouchers. The My
  Number is not kept: the integrated address number is all the register needs to link.
- ``doses`` (接種記録): one row per record of any type of the catalogue (別添2). The type's
  own items live in one JSON column, checked against the catalogue before they are stored;
  the few values the register searches or sums on (date, clinic, billing month, fee) are
  copied into columns. ``(subject, record type, date)`` is the natural key: the same dose
  never lands twice, whichever way it came.
- ``clinics`` (医療機関マスタ) and ``clinic_report_imports`` (原票取込): the monthly reports
  of flow [12], each import known by the SHA-256 of its file.
- ``reminder_runs`` and ``reminder_notices`` (勧奨通知): each batch run, and each notice it
  produced, unique per person, series and due dose.
- ``certificates`` (接種済証): each certificate issued, with the doses it shows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.models import NAMING, BigId, one_of, utcnow

SUBJECT_STATUSES = ("resident", "moved_out", "deceased", "non_resident")
DOSE_SOURCES = ("counter", "clinic_report", "transfer")
EXAMINATION_TYPES = ("inoculated", "screening_only", "test")

#: JSON on SQLite, JSONB on PostgreSQL.
Items = JSON().with_variant(JSONB(), "postgresql")



class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Subject(Base):
    """接種対象者: a person the register keeps vaccination records for."""

    __tablename__ = "subjects"

    integrated_address_number: Mapped[str] = mapped_column(String(15), primary_key=True)  # 統合宛名番号
    resident_code: Mapped[str | None] = mapped_column(String(11), unique=True, default=None)  # 住民票コード
    voucher_number: Mapped[str] = mapped_column(String(10), unique=True)  # 接種券番号
    name: Mapped[str] = mapped_column(String(100))
    name_kana: Mapped[str] = mapped_column(String(100))
    sex: Mapped[str] = mapped_column(String(6))
    birth_date: Mapped[date] = mapped_column(Date, index=True)
    address: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    # Conditions that make a person a routine target (予防接種法施行令 第1条の3 第2項 etc.).
    heart_kidney_respiratory_disability: Mapped[bool] = mapped_column(Boolean, default=False)
    hiv_immune_disability: Mapped[bool] = mapped_column(Boolean, default=False)
    hbv_perinatal_prophylaxis: Mapped[bool] = mapped_column(Boolean, default=False)
    enrolled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # When the newest resident change applied was recorded (異動の処理日時): an older one never undoes it.
    last_change_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    __table_args__ = (
        CheckConstraint(one_of("status", SUBJECT_STATUSES), name="status"),
        CheckConstraint("sex IN ('male', 'female')", name="sex"),
    )


class Clinic(Base):
    """医療機関: a clinic the city has commissioned, by its 10-digit medical institution code."""

    __tablename__ = "clinics"

    code: Mapped[str] = mapped_column(String(10), primary_key=True)  # 医療機関コード
    name: Mapped[str] = mapped_column(String(60))
    in_city: Mapped[bool] = mapped_column(Boolean, default=True)  # 市内 / 市外 (相互乗り入れ)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ClinicReportImport(Base):
    """原票取込: one committed clinic-report file, known by the SHA-256 of its bytes."""

    __tablename__ = "clinic_report_imports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    file_name: Mapped[str] = mapped_column(String(255))
    encoding: Mapped[str] = mapped_column(String(16))
    rows: Mapped[int] = mapped_column(Integer)
    stored: Mapped[int] = mapped_column(Integer)
    refused: Mapped[int] = mapped_column(Integer)
    problems: Mapped[list[dict[str, Any]]] = mapped_column(Items)  # every refused row: line, reason, detail
    committed_by: Mapped[str] = mapped_column(String(128))
    committed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Dose(Base):
    """接種記録: one record of the catalogue's type, with that type's items."""

    __tablename__ = "doses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subject_number: Mapped[str] = mapped_column(ForeignKey("subjects.integrated_address_number"), index=True)
    record_type: Mapped[str] = mapped_column(String(32))
    dose_date: Mapped[date] = mapped_column(Date)  # 接種日 (検査日 for an antibody test)
    examination_type: Mapped[str] = mapped_column(String(16))  # 接種 / 予診のみ / 検査
    product: Mapped[str | None] = mapped_column(String(32), default=None)
    clinic_code: Mapped[str | None] = mapped_column(ForeignKey("clinics.code"), default=None)
    billing_month: Mapped[str | None] = mapped_column(String(7), default=None)  # YYYY-MM
    commission_fee_yen: Mapped[int | None] = mapped_column(Integer, default=None)
    source: Mapped[str] = mapped_column(String(16))
    import_id: Mapped[int | None] = mapped_column(ForeignKey("clinic_report_imports.id"), default=None, index=True)
    items: Mapped[dict[str, Any]] = mapped_column(Items)
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        UniqueConstraint("subject_number", "record_type", "dose_date", name="uq_doses_natural_key"),
        CheckConstraint(one_of("source", DOSE_SOURCES), name="source"),
        CheckConstraint(one_of("examination_type", EXAMINATION_TYPES), name="examination_type"),
        Index("ix_doses_clinic_month", "clinic_code", "billing_month"),
    )


class ReminderRun(Base):
    """勧奨通知の作成: one run of the reminder batch for a period."""

    __tablename__ = "reminder_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    as_of: Mapped[date] = mapped_column(Date)
    people_evaluated: Mapped[int] = mapped_column(Integer, default=0)
    notices: Mapped[int] = mapped_column(Integer, default=0)  # people who get a notice in this run
    items: Mapped[int] = mapped_column(Integer, default=0)  # due doses those notices list
    already_sent: Mapped[int] = mapped_column(Integer, default=0)  # due doses left out: noticed before
    output: Mapped[str | None] = mapped_column(Text, default=None)
    started_by: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class ReminderNotice(Base):
    """One due dose listed on a person's notice; a due dose is noticed once, whatever the run."""

    __tablename__ = "reminder_notices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("reminder_runs.id"), index=True)
    subject_number: Mapped[str] = mapped_column(ForeignKey("subjects.integrated_address_number"))
    series: Mapped[str] = mapped_column(String(32))
    next_dose: Mapped[str] = mapped_column(String(32))
    earliest: Mapped[date | None] = mapped_column(Date, default=None)
    recommended: Mapped[date | None] = mapped_column(Date, default=None)
    latest: Mapped[date | None] = mapped_column(Date, default=None)

    __table_args__ = (UniqueConstraint("subject_number", "series", "next_dose", name="uq_reminder_notices_due_dose"),)


class Certificate(Base):
    """接種済証: a certificate of vaccination issued to a person (flow [09])."""

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    certificate_number: Mapped[str] = mapped_column(String(20), unique=True)
    subject_number: Mapped[str] = mapped_column(ForeignKey("subjects.integrated_address_number"), index=True)
    dose_ids: Mapped[list[int]] = mapped_column(Items)
    issued_by: Mapped[str] = mapped_column(String(128))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


FEE_SOURCES = ("tax", "welfare")
#: How a row came: a file imported by staff, or an answer of the tax and welfare systems on the bus.
FEE_CHANNELS = ("file", "bus")
FEE_CATEGORIES = ("public_assistance", "tax_exempt", "taxed", "unknown")


class IncomeMatch(Base):
    """突合: one row of tax or public-assistance information matched against the register.

    Every row is kept with its outcome, matched or not, so that a determination can be
    traced to the rows it rests on and an unmatched row to the reason it was set aside.
    A row is a line of an imported file (``channel`` ``file``, ``file_digest`` the file's
    SHA-256) or one answer of the tax and welfare systems (``bus``, ``file_digest`` the
    SHA-256 of the reply as received, ``line`` the answer's place in it);
    ``person_number`` is the integrated address number the row named, matched or not.
    """

    __tablename__ = "income_matches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, index=True)
    source: Mapped[str] = mapped_column(String(8))  # tax (住民税) | welfare (生活保護)
    file_digest: Mapped[str] = mapped_column(String(64))
    line: Mapped[int] = mapped_column(Integer)
    subject_number: Mapped[str | None] = mapped_column(ForeignKey("subjects.integrated_address_number"), default=None, index=True)
    status: Mapped[str | None] = mapped_column(String(24), default=None)  # taxed | tax_exempt | public_assistance
    outcome: Mapped[str] = mapped_column(String(24))  # matched | unknown_person | birth_date_mismatch | not_held | invalid
    detail: Mapped[str | None] = mapped_column(Text, default=None)
    matched_by: Mapped[str] = mapped_column(String(128))
    matched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    channel: Mapped[str] = mapped_column(String(8), default="file", server_default="file")
    person_number: Mapped[str | None] = mapped_column(String(15), default=None, index=True)

    __table_args__ = (
        UniqueConstraint("file_digest", "line", name="uq_income_matches_file_line"),
        CheckConstraint(one_of("source", FEE_SOURCES), name="source"),
        CheckConstraint(one_of("channel", FEE_CHANNELS), name="channel"),
    )


class FeeDetermination(Base):
    """実費徴収の決定: whether a person pays the copayment of B類 vaccinations in a fiscal year."""

    __tablename__ = "fee_determinations"

    subject_number: Mapped[str] = mapped_column(ForeignKey("subjects.integrated_address_number"), primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    category: Mapped[str] = mapped_column(String(24))
    exempt: Mapped[bool] = mapped_column(Boolean)
    basis_match_id: Mapped[int | None] = mapped_column(ForeignKey("income_matches.id"), default=None)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (CheckConstraint(one_of("category", FEE_CATEGORIES), name="category"),)


class CopyOutbox(Base):
    """副本の登録待ち: a person whose doses changed, noted in the change's own transaction.

    ``version`` grows with every change; the copy job sends the person's records as they are
    and marks the row sent only if no change came meanwhile (``version`` still the one it
    read), so a change during a send is sent again. Not a foreign key: reconciliation may
    queue a number the copy holds and the register does not, to clear it there.
    """

    __tablename__ = "copy_outbox"

    subject_number: Mapped[str] = mapped_column(String(15), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    pending: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_version: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)


MOVE_IN_OUTCOMES = ("pending", "registered", "not_answered", "unknown_subject", "other_procedure")


class MoveInReceipt(Base):
    """転入前接種の取込: one answered move-in query, and what the register took from it.

    Noted when the intermediate server announces the query's end (in the event's inbox
    transaction); the doses are registered and the receipt finished in one transaction,
    so each answer lands once, however often the event comes.
    """

    __tablename__ = "move_in_receipts"

    query_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    provider: Mapped[str] = mapped_column(String(6))
    query_status: Mapped[str] = mapped_column(String(16))  # how the query ended: answered, refused, …
    outcome: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    subject_number: Mapped[str | None] = mapped_column(String(15), default=None, index=True)
    received: Mapped[int | None] = mapped_column(Integer, default=None)
    registered: Mapped[int | None] = mapped_column(Integer, default=None)
    skipped: Mapped[list[dict[str, Any]] | None] = mapped_column(Items, default=None)  # each dose not taken, and why
    noted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (CheckConstraint(one_of("outcome", MOVE_IN_OUTCOMES), name="outcome"),)


class IdentityConfirmation(Base):
    """本人確認の記録 (M01): how a person proved who they were when enrolled, and to whom."""

    __tablename__ = "identity_confirmations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subject_number: Mapped[str] = mapped_column(String(15), index=True)
    method: Mapped[str] = mapped_column(String(32))  # my_number_card | notice_card_and_photo_id
    card_check_id: Mapped[int | None] = mapped_column(BigId, default=None)  # the CS's check, for a card
    photo_id: Mapped[str | None] = mapped_column(String(60), default=None)
    confirmed_by: Mapped[str] = mapped_column(String(64))
    confirmed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
