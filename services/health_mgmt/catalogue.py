"""The register's record types and their items (特定個人情報ファイル記録項目, 別添2).

The assessment lists, per vaccine type, exactly which items the city records. They live in
``data/vaccine_types.json``; this module loads them and checks a dose record against its
type before anything is stored:

* an item that is not in the type's list is refused (measure M04: the system takes only the
  items the affair needs);
* every value is checked for its type, length, format, range and allowed codes, and a few
  items are checked against each other (measure M02: logical checks on entry).

Each refusal names the field and says why, so the terminal can show it beside the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cached_property, lru_cache
from importlib import resources
from typing import Any, Literal

from shared.errors import InvalidRequest, NotFound

ItemType = Literal["date", "year_month", "int", "decimal", "text", "code", "bool"]
ITEM_TYPES: frozenset[str] = frozenset({"date", "year_month", "int", "decimal", "text", "code", "bool"})

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_YEAR_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_INTEGER = re.compile(r"^-?\d+$")
_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ItemDefinition:
    """One record item (記録項目): its code, label and the values it accepts."""

    code: str
    label_ja: str
    type: ItemType
    required: bool = False
    max_length: int | None = None
    pattern: re.Pattern[str] | None = None
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    decimal_places: int | None = None
    allowed: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordType:
    """A vaccine type's record (e.g. 〈ＢＣＧ〉) and its items in the assessment's order."""

    code: str
    name_ja: str
    items: tuple[ItemDefinition, ...]
    inferred_items: frozenset[str] = frozenset()

    @cached_property
    def item_codes(self) -> tuple[str, ...]:
        return tuple(item.code for item in self.items)

    @cached_property
    def item_code_set(self) -> frozenset[str]:
        return frozenset(self.item_codes)

    def item(self, code: str) -> ItemDefinition:
        for item in self.items:
            if item.code == code:
                return item
        raise KeyError(code)


@dataclass(frozen=True)
class FieldError:
    """Why one field of a record was refused."""

    field: str
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class Validation:
    """The outcome of checking one record: parsed values, or the reasons it was refused."""

    record_type: str
    values: Mapping[str, Any]
    errors: tuple[FieldError, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


class UnknownRecordType(NotFound):
    type = "urn:renkei:problem:health-mgmt:unknown-record-type"
    title = "No such vaccination record type"


class RecordRejected(InvalidRequest):
    """A dose record that does not pass the catalogue's checks (422, one error per field)."""

    type = "urn:renkei:problem:health-mgmt:record-rejected"
    title = "The vaccination record was refused"

    def __init__(self, record_type: str, errors: tuple[FieldError, ...]) -> None:
        fields = ", ".join(sorted({e.field for e in errors}))
        super().__init__(
            f"{record_type}: {len(errors)} problem(s) in {fields}",
            record_type=record_type,
            errors=[e.to_dict() for e in errors],
        )
        self.errors = errors


@dataclass(frozen=True)
class _Check:
    """A logical check between two items, applied when the record type has both."""

    id: str
    kind: str
    field: str
    other: str
    message: str
    threshold: Decimal | None = None
    blocked_value: str | None = None


class Catalogue:
    """The record types of the register, and the checks a record must pass."""

    def __init__(self, record_types: Mapping[str, RecordType], checks: tuple[_Check, ...]) -> None:
        self._types = dict(record_types)
        self._checks = checks

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(self._types)

    def record_type(self, code: str) -> RecordType:
        try:
            return self._types[code]
        except KeyError:
            raise UnknownRecordType(f"unknown vaccination record type {code!r}") from None

    def validate(self, record_type: str, record: Mapping[str, Any]) -> Validation:
        """Check ``record`` (item code → value) against its type; never raises for bad data."""
        rtype = self.record_type(record_type)
        errors: list[FieldError] = []
        values: dict[str, Any] = {}
        for key in record:
            if key not in rtype.item_code_set:
                errors.append(FieldError(str(key), "unknown_item", f"{key!r} is not an item of {rtype.name_ja} (別添2)"))
        for item in rtype.items:
            raw = record.get(item.code)
            if raw is None or raw == "":
                if item.required:
                    errors.append(FieldError(item.code, "missing", f"{item.label_ja} is required"))
                continue
            parsed, error = _parse(item, raw)
            if error is not None:
                errors.append(error)
            else:
                values[item.code] = parsed
        for check in self._checks:
            if check.field in rtype.item_code_set and check.other in rtype.item_code_set:
                error = _apply(check, values)
                if error is not None:
                    errors.append(error)
        return Validation(record_type, values, tuple(errors))

    def parse(self, record_type: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """The parsed values of a valid record; raises :class:`RecordRejected` otherwise."""
        result = self.validate(record_type, record)
        if not result.ok:
            raise RecordRejected(record_type, result.errors)
        return dict(result.values)


def _parse(item: ItemDefinition, raw: Any) -> tuple[Any, FieldError | None]:
    def fail(code: str, message: str) -> tuple[None, FieldError]:
        return None, FieldError(item.code, code, f"{item.label_ja}: {message}")

    if item.type == "date":
        if isinstance(raw, date) and not hasattr(raw, "hour"):
            return raw, None
        if not isinstance(raw, str) or not _ISO_DATE.match(raw):
            return fail("wrong_type", "expected a date as YYYY-MM-DD")
        try:
            return date.fromisoformat(raw), None
        except ValueError:
            return fail("wrong_type", f"{raw!r} is not a calendar date")
    if item.type == "year_month":
        match = _YEAR_MONTH.match(raw) if isinstance(raw, str) else None
        if match is None:
            return fail("wrong_type", "expected a year and month as YYYY-MM")
        if not 1 <= int(match.group(2)) <= 12:
            return fail("wrong_type", f"{raw!r} has no such month")
        return raw, None
    if item.type == "bool":
        if not isinstance(raw, bool):
            return fail("wrong_type", "expected true or false")
        return raw, None
    if item.type == "int":
        if isinstance(raw, bool) or not (isinstance(raw, int) or (isinstance(raw, str) and _INTEGER.match(raw))):
            return fail("wrong_type", "expected a whole number")
        number = int(raw)
        return _in_range(item, Decimal(number), number)
    if item.type == "decimal":
        if isinstance(raw, bool):
            return fail("wrong_type", "expected a number")
        text = repr(raw) if isinstance(raw, float) else str(raw)
        if not isinstance(raw, (int, float, Decimal, str)) or not _DECIMAL.match(text):
            return fail("wrong_type", "expected a number")
        try:
            number = Decimal(text)
        except InvalidOperation:
            return fail("wrong_type", "expected a number")
        exponent = number.as_tuple().exponent
        places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        if item.decimal_places is not None and places > item.decimal_places:
            return fail("too_many_decimals", f"at most {item.decimal_places} decimal place(s)")
        return _in_range(item, number, number)
    if item.type == "code":
        if not isinstance(raw, str) or raw not in item.allowed:
            return fail("not_allowed", f"{raw!r} is not one of {sorted(item.allowed)}")
        return raw, None
    # text
    if not isinstance(raw, str):
        return fail("wrong_type", "expected text")
    if _CONTROL.search(raw):
        return fail("bad_format", "control characters are not allowed")
    if item.max_length is not None and len(raw) > item.max_length:
        return fail("too_long", f"at most {item.max_length} characters (got {len(raw)})")
    if item.pattern is not None and not item.pattern.match(raw):
        return fail("bad_format", f"{raw!r} does not have the expected form")
    return raw, None


def _in_range(item: ItemDefinition, number: Decimal, value: Any) -> tuple[Any, FieldError | None]:
    if item.minimum is not None and number < item.minimum:
        return None, FieldError(item.code, "below_minimum", f"{item.label_ja}: at least {item.minimum}")
    if item.maximum is not None and number > item.maximum:
        return None, FieldError(item.code, "above_maximum", f"{item.label_ja}: at most {item.maximum}")
    return value, None


def _fiscal_year(day: date) -> int:
    """Japanese fiscal year (年度): April to March, named by the year it starts in."""
    return day.year if day.month >= 4 else day.year - 1


def _apply(check: _Check, values: Mapping[str, Any]) -> FieldError | None:
    if check.field not in values:
        return None
    if check.kind == "requires_true":
        broken_flag = values.get(check.other) is not True
        return FieldError(check.field, "inconsistent", check.message) if broken_flag else None
    if check.other not in values:
        return None
    mine, other = values[check.field], values[check.other]
    broken = False
    if check.kind == "date_not_after":
        broken = mine > other
    elif check.kind == "date_before":
        broken = mine >= other
    elif check.kind == "month_not_before_date":
        broken = mine < f"{other.year:04d}-{other.month:02d}"
    elif check.kind == "fiscal_year_of":
        broken = mine != _fiscal_year(other)
    elif check.kind == "fever_blocks_inoculation":
        broken = check.threshold is not None and mine >= check.threshold and other == check.blocked_value
    else:
        raise ValueError(f"unknown check kind {check.kind!r}")
    return FieldError(check.field, "inconsistent", check.message) if broken else None


_CHECK_KINDS = frozenset(
    {"date_not_after", "date_before", "requires_true", "month_not_before_date", "fiscal_year_of", "fever_blocks_inoculation"}
)


def _item_from(code: str, spec: Mapping[str, Any]) -> ItemDefinition:
    kind = spec["type"]
    if kind not in ITEM_TYPES:
        raise ValueError(f"item {code}: unknown type {kind!r}")
    bound = {k: Decimal(str(spec[k])) if k in spec else None for k in ("min", "max")}
    return ItemDefinition(
        code=code,
        label_ja=spec["label_ja"],
        type=kind,
        required=bool(spec.get("required", False)),
        max_length=spec.get("max_length"),
        pattern=re.compile(spec["pattern"]) if "pattern" in spec else None,
        minimum=bound["min"],
        maximum=bound["max"],
        decimal_places=spec.get("decimal_places"),
        allowed=dict(spec.get("allowed", {})),
    )


def _with_override(item: ItemDefinition, override: Mapping[str, Any]) -> ItemDefinition:
    allowed = dict(item.allowed)
    if "allowed" in override:
        allowed = dict(override["allowed"])
    if "allowed_subset" in override:
        missing = set(override["allowed_subset"]) - set(allowed)
        if missing:
            raise ValueError(f"{item.code}: override names unknown codes {sorted(missing)}")
        allowed = {k: v for k, v in allowed.items() if k in override["allowed_subset"]}
    return replace(item, allowed=allowed)


def catalogue_from_dict(data: Mapping[str, Any]) -> Catalogue:
    """Build a catalogue from the JSON structure of ``data/vaccine_types.json``."""
    items = {code: _item_from(code, spec) for code, spec in data["items"].items()}
    sets = data.get("item_sets", {})
    types: dict[str, RecordType] = {}
    for spec in data["record_types"]:
        codes = sets[spec["item_set"]] if "item_set" in spec else spec["items"]
        if len(set(codes)) != len(codes):
            raise ValueError(f"record type {spec['code']}: an item is listed twice")
        overrides = spec.get("overrides", {})
        defs = []
        for code in codes:
            item = items[code]
            if code in overrides:
                item = _with_override(item, overrides[code])
            if item.type == "code" and not item.allowed:
                raise ValueError(f"record type {spec['code']}: item {code} has no allowed values")
            defs.append(item)
        if spec["code"] in types:
            raise ValueError(f"record type {spec['code']} defined twice")
        types[spec["code"]] = RecordType(spec["code"], spec["name_ja"], tuple(defs), frozenset(spec.get("inferred_items", ())))
    checks = []
    for spec in data.get("checks", []):
        if spec["kind"] not in _CHECK_KINDS:
            raise ValueError(f"check {spec['id']}: unknown kind {spec['kind']!r}")
        checks.append(
            _Check(
                id=spec["id"],
                kind=spec["kind"],
                field=spec["field"],
                other=spec["other"],
                message=spec["message"],
                threshold=Decimal(spec["threshold"]) if "threshold" in spec else None,
                blocked_value=spec.get("blocked_value"),
            )
        )
    return Catalogue(types, tuple(checks))


@lru_cache(maxsize=1)
def load_catalogue() -> Catalogue:
    """The catalogue shipped with the package (read once)."""
    text = resources.files("services.health_mgmt").joinpath("data").joinpath("vaccine_types.json").read_text(encoding="utf-8")
    return catalogue_from_dict(json.loads(text))
