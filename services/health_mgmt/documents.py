"""Printed documents as PDF: the reminder notice (勧奨通知, flow [07]) and the certificate of
vaccination (接種済証, flow [09]).

Text is Japanese and dates are 和暦. The font is IPA Gothic from the Debian package
``fonts-ipafont-gothic`` (or the file named by ``RENKEI_JP_FONT``), embedded as a subset
of the glyphs each document uses, so that the printer need not have it.
"""

from __future__ import annotations

import io
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfdoc, pdfmetrics
from reportlab.pdfbase.ttfonts import FF_NONSYMBOLIC, FF_SYMBOLIC, SUBSETN, TTFont, TTFontFace, makeToUnicodeCMap
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


#: Characters every document is likely to print, most likely first: the fixed wording of
#: the notice and the certificate, 和暦 dates, the schedule's names, then common characters of
#: the city's addresses and names. The first subset of the font is filled from this list in
#: every document, as far as it goes beside the ASCII slots reportlab keeps in it (about 164
#: characters), so that it is the same subset each time: it is made and compressed once per
#: process (``_TemplateSubsetFace``). Characters beyond it (the rest of an address, a name's
#: kanji) go to a second subset, made for that document as before.
TEMPLATE_CHARACTERS = (
    "予防接種のお知らせ（定期接種）下記の定期予防接種を受ける時期になりました。接種できる期間内に、"
    "の委託医療機関で接種を受けてください（公費負担のため自己負担はありません）。"
    "接種の際は、この通知と母子健康手帳（お持ちの方）、本人確認書類をお持ちください。"
    "予防接種回接種できる期間標準的な接種時期〜頃生年月日接種券番号発行様"
    "※既に接種を受けた方、転出された方には行き違いでお送りしている場合があります。"
    "※体調のすぐれないときは無理をせず、医師とご相談ください。問い合わせ先"
    "保健医療部市民健康課予防接種担当越谷市草加市"
    "予防接種済証証明番号氏名住所接種日接種場所ロット番号区分上記のとおり予防接種を行ったことを証明します。長"
    "令和平成昭和大正明治元年月日　"
    "五種混合第1期四種混合Hib小児用肺炎球菌B型肝炎ロタウイルスBCGMR第2期水痘日本脳炎二種混合HPV(子宮頸がん予防)"
    "高齢者インフルエンザ帯状疱疹回目初回追加当該年度任意"
    "埼玉県丁目番地号一二三四五六七八九十東西南北本町新田谷ヶ大袋蒲生大沢千間台桜井増林出羽荻島"
    "藤塚瓦曽根大相模川柳花田七左弥栄宮赤山恩間平方北越谷南越谷レイクタウン"
    "佐藤鈴木高橋田中伊渡辺山中村小林加吉口松井上林斎清水崎森池石川下島前岡長谷福原野三浦竹内"
    "子美太郎健翔大輔陽菜結衣蓮悠真湊樹咲良葵凛香奈恵由紀和彦正幸博明雄治隆浩之"
)


class _TemplateSubsetFace(TTFontFace):
    """The font's face, whose template subset (the first subset of every document, filled
    from ``TEMPLATE_CHARACTERS``) is made and compressed once per process rather than per
    document; any other subset is made as reportlab makes it."""

    template_subset: tuple[int, ...] | None = None
    _template_files: dict[tuple[bool, tuple[int, ...]], tuple[bytes, int]]

    def get_table(self, tag):
        """A table of the font file, copied out of it once per process: reportlab copies the
        whole glyph table (5 MB for IPA Gothic) for every subset it makes."""
        tables = self.__dict__.setdefault("_tables", {})
        found = tables.get(tag)
        if found is None:
            found = tables[tag] = super().get_table(tag)
        return found

    def addSubsetObjects(self, doc, fontname, subset):
        key = tuple(subset)
        compressed = bool(doc.compression)
        cache = self.__dict__.setdefault("_template_files", {})
        found = cache.get((compressed, key)) if key == self.template_subset else None
        if found is None:
            content = self.makeSubset(subset)
            found = (zlib.compress(content) if compressed else content, len(content))
            if key == self.template_subset:
                cache[(compressed, key)] = found
        fontFile = pdfdoc.PDFStream()
        fontFile.content = found[0]
        fontFile.dictionary["Length1"] = found[1]
        if compressed:  # already applied: the stream is written as it is
            fontFile.dictionary["Filter"] = pdfdoc.PDFArray([pdfdoc.PDFName(pdfdoc.PDFZCompress.pdfname)])
        fontFileRef = doc.Reference(fontFile, f"fontFile:{self.filename}({fontname})")
        flags = (self.flags & ~FF_NONSYMBOLIC) | FF_SYMBOLIC
        descriptor = pdfdoc.PDFDictionary({
            "Type": "/FontDescriptor",
            "Ascent": self.ascent,
            "CapHeight": self.capHeight,
            "Descent": self.descent,
            "Flags": flags,
            "FontBBox": pdfdoc.PDFArray(self.bbox),
            "FontName": pdfdoc.PDFName(fontname),
            "ItalicAngle": self.italicAngle,
            "StemV": self.stemV,
            "FontFile2": fontFileRef,
            "MissingWidth": self.defaultWidth,
        })
        return doc.Reference(descriptor, "fontDescriptor:" + fontname)


class _Formatted(pdfdoc.PDFObject):
    """A PDF object formatted once (it refers to no other object)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def format(self, document) -> bytes:
        return self.data


class _TemplateTTFont(TTFont):
    """IPA Gothic, with the objects of the template subset (its widths and its ToUnicode
    map, besides the font file) made once per process; the rest as reportlab's ``TTFont``."""

    def addObjects(self, doc):
        state = self.state.get(doc) or self.state.setdefault(doc, TTFont.State(self._asciiReadable))
        state.frozen = 1
        face = self.face
        for n, subset in enumerate(state.subsets):
            internal = self.getSubsetInternalName(n, doc)[1:]
            base = b"".join((SUBSETN(n), b"+", face.name, face.subfontNameX)).decode("pdfdoc")
            font = pdfdoc.PDFTrueTypeFont()
            font.__Comment__ = f"Font {self.fontName} subset {n}"
            font.Name = internal
            font.BaseFont = base
            font.FirstChar = 0
            font.LastChar = len(subset) - 1
            key = (bool(doc.compression), base, tuple(subset))
            cache = face.__dict__.setdefault("_template_objects", {})
            made = cache.get(key) if key[2] == face.template_subset else None
            if made is None:
                widths = pdfdoc.PDFArray([face.getCharWidth(code) for code in subset]).format(doc)
                cmap = makeToUnicodeCMap(base, subset).encode("latin-1")
                made = (widths, zlib.compress(cmap) if doc.compression else cmap)
                if key[2] == face.template_subset:
                    cache[key] = made
            font.Widths = _Formatted(made[0])
            stream = pdfdoc.PDFStream(content=made[1])
            if doc.compression:  # already compressed: written as it is
                stream.dictionary["Filter"] = pdfdoc.PDFArray([pdfdoc.PDFName(pdfdoc.PDFZCompress.pdfname)])
            font.ToUnicode = doc.Reference(stream, "toUnicodeCMap:" + base)
            font.FontDescriptor = face.addSubsetObjects(doc, base, subset)
            doc.Reference(font, internal)
            doc.idToObject["BasicFonts"].dict[internal] = font
        del self.state[doc]


class _Probe:
    """A stand-in document, to see how reportlab assigns the template characters."""


@lru_cache(maxsize=1)
def japanese_font() -> str:
    """Register the Japanese font once per process; a clear error when none is installed."""
    configured = os.environ.get("RENKEI_JP_FONT")
    for candidate in ([configured] if configured else []) + list(FONT_CANDIDATES):
        if Path(candidate).is_file():
            font = _TemplateTTFont(FONT, candidate)
            font.face.__class__ = _TemplateSubsetFace  # same data, the subset cache added
            _template_prefix.cache_clear()
            pdfmetrics.registerFont(font)
            return FONT
    raise Unavailable("no Japanese font to print with: install fonts-ipafont-gothic (or set RENKEI_JP_FONT)")


@lru_cache(maxsize=1)
def _template_prefix() -> str:
    """The leading run of ``TEMPLATE_CHARACTERS`` that fills the first subset exactly (or
    all of them, if they do not fill it); records that subset on the face."""
    font = pdfmetrics.getFont(japanese_font())
    probe, prefix = _Probe(), []
    for character in dict.fromkeys(TEMPLATE_CHARACTERS):
        font.splitString(character, probe)
        state = font.state[probe]
        if len(state.subsets) > 1:
            break
        prefix.append(character)
    state = font.state.pop(probe, None) or font.State(font._asciiReadable, font)
    font.face.template_subset = tuple(state.subsets[0])
    if len(state.subsets) > 1:  # the last character opened a second subset: the first is full without it
        probe = _Probe()
        font.splitString("".join(prefix), probe)
        font.face.template_subset = tuple(font.state.pop(probe).subsets[0])
    return "".join(prefix)


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
        # the template characters first, in the same order: the first subset is the same in every document
        pdfmetrics.getFont(self.font).splitString(_template_prefix(), self.canvas._doc)
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
