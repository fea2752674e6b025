"""Valid example messages for any contract model, built from its fields.

Each field gets the first value from a pool that the field's own type (with its validators:
check digits, name rules, patterns, lengths) accepts; optional fields are left out in some
variants and filled in others, so that models with rules across fields (exactly one key,
a name and a birth date...) get examples of each shape. Only examples the model itself
accepts are returned; a model for which none can be built makes the contract tests fail
rather than pass on nothing.
"""

from __future__ import annotations

import types
import typing
from datetime import UTC, date, datetime
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo


def _with_check_digits(body: str) -> tuple[str, ...]:
    """``body`` followed by each possible check digit: the field's own validator picks the
    right one, whatever scheme the number uses (My Number, resident code, address numbers)."""
    return tuple(f"{body}{digit}" for digit in range(10))


STRINGS: tuple[str, ...] = (
    "越谷　太郎",
    "コシガヤ　タロウ",
    "埼玉県越谷市越ヶ谷一丁目1番1号",
    *_with_check_digits("12345678901"),  # 12 digits: a My Number
    *_with_check_digits("0877841937"),  # 11 digits: a resident code (住民票コード)
    "112224",  # Koshigaya's local-government code
    *_with_check_digits("11222123456789"),  # 15 digits: an integrated address number
    *_with_check_digits("123456789"),  # 10 digits: a welfare address number
    "JM01400000000001",  # an affair code (事務コード)
    "JT01400000002501",  # a procedure code (事務手続コード)
    "TM01400000000001",  # an item code (特定個人情報名コード)
    "0123456789abcdef0123456789abcdef",  # a query id
    "0" * 64,  # a SHA-256 digest in hex
    "H-0001",
    "1234",
    "routine vaccination (定期接種)",
    "x",
)
DATES = (date(1990, 4, 1), date(2024, 4, 1))
DATETIMES = (datetime(2024, 4, 1, 9, 30, tzinfo=UTC),)


class NoExample(Exception):
    """No value of the pools fits a field: add one to the pools."""


def _adapter(annotation: Any, metadata: list[Any]) -> TypeAdapter:
    return TypeAdapter(Annotated[annotation, *metadata]) if metadata else TypeAdapter(annotation)


def _first_accepted(adapter: TypeAdapter, candidates) -> Any:
    for candidate in candidates:
        try:
            return adapter.validate_python(candidate)
        except (ValidationError, ValueError, TypeError):
            continue
    raise NoExample


def value_for(annotation: Any, metadata: list[Any] | None = None) -> Any:
    """A value of ``annotation`` (plus constraints and validators) in its Python form."""
    metadata = list(metadata or [])
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return value_for(args[0], [*args[1:], *metadata])
    adapter = _adapter(annotation, metadata)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return examples(annotation)[0]
    if origin is Literal:
        return _first_accepted(adapter, args)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        for option in options:
            try:
                return value_for(option, metadata)
            except NoExample:
                continue
        raise NoExample
    if origin in (list, set, frozenset, tuple):
        item = args[0] if args else str
        if typing.get_origin(item) is Literal:
            return _first_accepted(adapter, [list(typing.get_args(item))])
        return _first_accepted(adapter, [[value_for(item)]])
    if origin is dict:
        return _first_accepted(adapter, [{"key": "value"}, {}])
    if annotation is str:
        return _first_accepted(adapter, STRINGS)
    if annotation is bool:
        return _first_accepted(adapter, (True, False))
    if annotation is int:
        return _first_accepted(adapter, (1, 0, 11, 100, 2024))  # 2024: a fiscal year (年度)
    if annotation is float:
        return _first_accepted(adapter, (0.5, 1.0, 0.0))
    if isinstance(annotation, type) and issubclass(annotation, datetime):  # AwareDatetime too
        return _first_accepted(adapter, DATETIMES)
    if isinstance(annotation, type) and issubclass(annotation, date):
        return _first_accepted(adapter, DATES)
    return _first_accepted(adapter, (*DATETIMES, *DATES, *STRINGS, 1, True))


def _field_value(info: FieldInfo) -> Any:
    return value_for(info.annotation, list(info.metadata))


def _optional(info: FieldInfo) -> bool:
    return not info.is_required()


@cache
def examples(model: type[BaseModel]) -> list[BaseModel]:
    """Valid instances of ``model``: with only its required fields, with all of them, and
    with each optional field alone and each left out."""
    fields = model.model_fields
    values: dict[str, Any] = {}
    for name, info in fields.items():
        try:
            values[name] = _field_value(info)
        except NoExample:
            if info.is_required():
                return []
    required = {n: v for n, v in values.items() if fields[n].is_required()}
    optional = {n: v for n, v in values.items() if _optional(fields[n])}
    shapes = [required, {**required, **optional}]
    shapes += [{**required, name: value} for name, value in optional.items()]
    shapes += [{**required, **{n: v for n, v in optional.items() if n != name}} for name in optional]
    found: list[BaseModel] = []
    seen: set[str] = set()
    for shape in shapes:
        try:
            instance = model.model_validate(shape)
        except ValidationError:
            continue
        key = instance.model_dump_json()
        if key not in seen:
            seen.add(key)
            found.append(instance)
    return found
