"""Printed documents as PDF: the reminder notice (勧奨通知, flow [07]) and the certificate of
vaccination (接種済証, flow [09]).

Text is Japanese and dates are 和暦. The font is IPA Gothic from the Debian package
``fonts-ipafont-gothic`` (or the file named by ``RENKEI_JP_FONT``), embedded as a subset
of the glyphs each document uses, so that the printer need not have it.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from services.health_mgmt.wareki import wareki
from shared.errors import Unavailable

FONT = "IPAGothic"
FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
    "/usr/share/fonts/truetype/fonts-japanese-gothic.ttf",
    "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf",
)
CITY_NAMES = {"112224": "越谷市", "112216": "草加市"}
CONTACT = "保健医療部 市民健康課 予防接種担当"


@lru_cache(maxsize=1)
def japanese_font() -> str:
    """Register the Japanese font once per process; a clear error when none is installed."""
    configured = os.environ.get("RENKEI_JP_FONT")
    for candidate in ([configured] if configured else []) + list(FONT_CANDIDATES):
        if Path(candidate).is_file():
            pdfmetrics.registerFont(TTFont(FONT, candidate))
            return FONT
    raise Unavailable("no Japanese font to print with: install fonts-ipafont-gothic (or set RENKEI_JP_FONT)")


@dataclass(frozen=True)
class Addressee:
    name: str
    address: str
    birth_date: date
    voucher_number: str


@dataclass(frozen=True)
class DueLine:
    vaccine: str  # the series' name, e.g. MR 第1期
    dose: str  # the dose of the series, e.g. 1回目
    earliest: date
    recommended: date
    latest: date


@dataclass(frozen=True)
class CertifiedDose:
    vaccine: str
    dose_date: date
    place: str
    lot_number: str
    target: str


class _Page:
    """A4 page with a running line position, in millimetres from the top."""

    def __init__(self, title: str) -> None:
        self.buffer = io.BytesIO()
        self.canvas = canvas.Canvas(self.buffer, pagesize=A4, pageCompression=1)
        self.canvas.setTitle(title)
        self.font = japanese_font()
        self.y = 20.0

    def text(self, x: float, text: str, size: float = 10.5, advance: float = 6.5) -> None:
        self.canvas.setFont(self.font, size)
        self.canvas.drawString(x * mm, A4[1] - self.y * mm, text)
        self.y += advance

    def right(self, x: float, text: str, size: float = 10.5) -> None:
        self.canvas.setFont(self.font, size)
        self.canvas.drawRightString(x * mm, A4[1] - self.y * mm, text)

    def centred(self, text: str, size: float, advance: float) -> None:
        self.canvas.setFont(self.font, size)
        self.canvas.drawCentredString(A4[0] / 2, A4[1] - self.y * mm, text)
        self.y += advance

    def rule(self, below: float = 2, x1: float = 20, x2: float = 190) -> None:
        """A line ``below`` mm under the current baseline."""
        level = A4[1] - (self.y + below) * mm
        self.canvas.line(x1 * mm, level, x2 * mm, level)

    def table(self, columns: Sequence[tuple[str, float]], rows: Sequence[Sequence[str]], size: float = 9.5) -> None:
        """Columns: (header, x in mm); a line under the header."""
        for header, x in columns:
            self.canvas.setFont(self.font, size)
            self.canvas.drawString(x * mm, A4[1] - self.y * mm, header)
        self.rule()
        self.y += 7.5
        for row in rows:
            for (_, x), cell in zip(columns, row):
                self.canvas.setFont(self.font, size)
                self.canvas.drawString(x * mm, A4[1] - self.y * mm, cell)
            self.y += 6.5

    def done(self) -> bytes:
        self.canvas.showPage()
        self.canvas.save()
        return self.buffer.getvalue()


def reminder_notice(city: str, person: Addressee, lines: Sequence[DueLine], issued: date) -> bytes:
    """One person's combined notice: every dose due in the period, on one page."""
    city_name = CITY_NAMES.get(city, city)
    page = _Page("予防接種のお知らせ")
    page.right(190, f"{wareki(issued)}発行")
    page.y += 10
    page.text(25, person.address, 11)
    page.text(25, f"{person.name}　様", 14, 14)
    page.centred("予防接種のお知らせ（定期接種）", 16, 12)
    for sentence in (
        "下記の定期予防接種を受ける時期になりました。接種できる期間内に、",
        f"{city_name}の委託医療機関で接種を受けてください（公費負担のため自己負担はありません）。",
        "接種の際は、この通知と母子健康手帳（お持ちの方）、本人確認書類をお持ちください。",
    ):
        page.text(20, sentence, 10.5)
    page.y += 6
    page.table(
        (("予防接種", 20), ("回", 82), ("接種できる期間", 104), ("標準的な接種時期", 158)),
        [(line.vaccine, line.dose, f"{wareki(line.earliest)}〜{wareki(line.latest)}", f"{wareki(line.recommended)}頃") for line in lines],
    )
    page.y += 6
    page.text(20, f"生年月日　{wareki(person.birth_date)}", 10)
    page.text(20, f"接種券番号　{person.voucher_number}", 10)
    page.y += 10
    page.text(20, "※ 既に接種を受けた方、転出された方には行き違いでお送りしている場合があります。", 9)
    page.text(20, "※ 体調のすぐれないときは無理をせず、医師とご相談ください。", 9, 12)
    page.text(20, f"問い合わせ先　{city_name} {CONTACT}", 10)
    return page.done()


def vaccination_certificate(city: str, person: Addressee, doses: Sequence[CertifiedDose], number: str, issued: date) -> bytes:
    """接種済証: the doses recorded in the register, certified by the mayor."""
    city_name = CITY_NAMES.get(city, city)
    page = _Page("予防接種済証")
    page.right(190, f"証明番号　{number}")
    page.y += 12
    page.centred("予防接種済証", 20, 16)
    page.text(25, f"氏名　　　{person.name}", 12, 8)
    page.text(25, f"生年月日　{wareki(person.birth_date)}", 12, 8)
    page.text(25, f"住所　　　{person.address}", 12, 14)
    page.table(
        (("予防接種", 20), ("接種日", 62), ("接種場所", 100), ("ロット番号", 150), ("区分", 175)),
        [(d.vaccine, wareki(d.dose_date), d.place, d.lot_number, d.target) for d in doses],
    )
    page.y += 10
    page.text(25, "上記のとおり予防接種を行ったことを証明します。", 11, 12)
    page.text(25, wareki(issued), 11, 10)
    page.right(190, f"{city_name}長")
    return page.done()
