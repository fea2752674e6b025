"""Field types that carry their own logical checks (M02), for every contract that uses them."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from shared.ids import (
    validate_birth_date,
    validate_integrated_address_number,
    validate_local_government_code,
    validate_my_number,
    validate_name,
    validate_resident_code,
    validate_welfare_address_number,
)

MyNumber = Annotated[str, AfterValidator(validate_my_number), Field(description="個人番号: 12 digits with its check digit")]
ResidentCode = Annotated[
    str, AfterValidator(validate_resident_code), Field(description="住民票コード: 10 digits and a check digit")
]
LocalGovernmentCode = Annotated[
    str, AfterValidator(validate_local_government_code), Field(description="全国地方公共団体コード")
]
BirthDate = Annotated[date, AfterValidator(lambda d: validate_birth_date(d)), Field(description="生年月日")]
PersonName = Annotated[str, AfterValidator(lambda v: validate_name(v)), Field(max_length=100)]
KanaName = Annotated[str, AfterValidator(lambda v: validate_name(v, field="name_kana")), Field(max_length=100)]
Sex = Literal["male", "female"]

IntegratedAddressNumber = Annotated[
    str,
    AfterValidator(validate_integrated_address_number),
    Field(description="統合宛名番号: city (5 digits), serial (9), Damm check digit (1)"),
]
WelfareAddressNumber = Annotated[
    str, AfterValidator(validate_welfare_address_number), Field(description="福祉宛名番号: serial (9), Damm check digit (1)")
]
