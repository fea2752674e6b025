"""The register's tables: residents (住民票) and every change made to them (異動の記録).

A person stays on file whatever becomes of them: moving out or dying changes the status,
never removes the row (deceased residents' numbers are handled like the living's, M31).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, DateTime, ForeignKey, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.models import NAMING, BigId, one_of

STATUSES = ("resident", "moved_out", "deceased")
KINDS = ("birth", "move_in", "special_move_in", "move_out", "address_change", "death", "correction")



class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ResidentEntry(Base):
    """住民票: one person on the register, with the 4 items (基本4情報) and their numbers."""

    __tablename__ = "residents"

    resident_code: Mapped[str] = mapped_column(String(11), primary_key=True)  # 住民票コード
    my_number: Mapped[str] = mapped_column(String(12), unique=True)  # 個人番号
    family_name: Mapped[str] = mapped_column(String(100))
    given_name: Mapped[str] = mapped_column(String(100))
    family_name_kana: Mapped[str] = mapped_column(String(100))
    given_name_kana: Mapped[str] = mapped_column(String(100))
    sex: Mapped[str] = mapped_column(String(6))
    birth_date: Mapped[date] = mapped_column(Date)
    address: Mapped[str] = mapped_column(String(200))
    town: Mapped[str] = mapped_column(String(100))
    household_id: Mapped[str] = mapped_column(String(32))  # 世帯番号
    relation: Mapped[str] = mapped_column(String(16))  # 続柄
    status: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        CheckConstraint(one_of("status", STATUSES), name="status"),
        CheckConstraint(one_of("sex", ("male", "female")), name="sex"),
    )


class ResidentChange(Base):
    """異動: one accepted change, with the person's record as it stood after it."""

    __tablename__ = "resident_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    change_id: Mapped[str] = mapped_column(String(64), unique=True)
    resident_code: Mapped[str] = mapped_column(ForeignKey("residents.resident_code"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    effective_date: Mapped[date] = mapped_column(Date)  # 異動日
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # 処理日時
    recorded_by: Mapped[str] = mapped_column(String(128))  # staff user id, or "seed"
    record: Mapped[str] = mapped_column(Text)  # ResidentRecord JSON after the change

    __table_args__ = (CheckConstraint(one_of("kind", KINDS), name="kind"),)
