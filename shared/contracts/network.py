"""The information provision network's contracts (情報提供ネットワークシステム).

Two kinds, both validated by both sides against the same models:

- **On the bus**, in the city: the business systems and the intermediate server (中間サーバー).
  ``intermediate_server.query`` (情報照会, asynchronous: a query id now, the event
  ``intermediate_server.events.answered`` when the answer is in, ``query_result`` to read
  it), ``register_copies`` (the provision database, 副本), ``copy_digests`` (to reconcile
  the copy with the original), ``system_status`` and ``ledger_checkpoint`` for the ops
  console; and the event ``integrated_address.events.number_assigned``, by which the
  intermediate server learns of a new integrated address number and obtains the person's
  symbol (符号).
- **Over HTTPS with mutual TLS**, between each intermediate server and the national hub
  (simulated): registration of the server's network address and answer key, the
  permitted-query list, symbols, provision permits (情報提供許可証), queries relayed to the
  provider and encrypted answers relayed back. Every call also carries the caller's service
  token and request proof (docs/protocols/service-auth.md). See docs/protocols/network.md.

The item layouts (``ITEM_LAYOUTS``) say what a provision of each item holds, field by
field: the provision database is checked against them on import, and the requester checks
every decrypted answer against them.
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Annotated, Any, Generic, Literal, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import AwareDatetime, Field, ValidationError, model_validator

from shared.contracts.base import Event, Message, Operation
from shared.contracts.types import IntegratedAddressNumber, LocalGovernmentCode, ResidentCode
from shared.crypto import canonical_bytes, verify_document
from shared.errors import Problem, problem_from_dict
from shared.ledger.records import AffairCode, ItemCode, ProcedureCode, SerialNumber

# --- identifiers ---------------------------------------------------------------------

#: 機関別符号: 40 letters a–p (160 bits of a keyed hash, four bits a letter). Letters only,
#: so that a symbol can never be mistaken for, or contain, a number of any kind.
Symbol = Annotated[str, Field(pattern=r"^[a-p]{40}$", description="符号 (institution-specific symbol)")]
QueryId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$", description="照会番号: the requester's id of one query")]
Base64 = Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]*={0,2}$", max_length=200_000)]
StaffUserId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")]
#: Institution kinds of the permitted-query list: who may ask and who provides.
InstitutionKind = Literal["municipality", "prefecture"]


def institution_kind(code: str) -> InstitutionKind:
    """A prefecture's local-government code has 000 as its third to fifth digits (110001)."""
    return "prefecture" if code[2:5] == "000" else "municipality"


def intermediate_server(city: str) -> str:
    """The principal of a city's intermediate server."""
    return f"intermediate_server@{city}"


HUB_PRINCIPAL = "provision_network"

# --- item codes and layouts (特定個人情報名コード) ----------------------------------------

VACCINATION_RECORDS = "TM01400000000001"  # 予防接種法による予防接種の実施に関する情報
VACCINATION_BENEFITS = "TM01400000000002"  # 予防接種法による給付の支給に関する情報
LOCAL_TAX = "TM02700000000001"  # 地方税関係情報（住民税の課税情報）
PUBLIC_ASSISTANCE = "TM01500000000001"  # 生活保護関係情報（保護の実施に関する情報）

#: 事務コード and 事務手続コード of the move-in vaccination history query (主務省令第2条の表25の項).
VACCINATION_AFFAIR = "JM01400000000001"  # 予防接種法による予防接種の実施に関する事務
MOVE_IN_HISTORY_PROCEDURE = "JT01400000002501"  # 転入者の予防接種履歴の照会

ShortText = Annotated[str, Field(min_length=1, max_length=60)]


class VaccinationDose(Message):
    """One dose as another city recorded it (別添2's items a receiving city needs)."""

    record_type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,39}$", description="the vaccine type's code")]
    inoculation_date: date
    dose_number: Annotated[int, Field(ge=1, le=9)] | None = None
    examination_type: Literal["inoculated", "screening_only"] = "inoculated"
    lot_number: Annotated[str, Field(max_length=20, pattern=r"^[0-9A-Za-z][0-9A-Za-z-]*$")] | None = None
    manufacturer: Annotated[str, Field(max_length=40)] | None = None
    vaccine_product: Annotated[str, Field(max_length=40)] | None = None
    inoculation_place: ShortText | None = None


class VaccinationBenefit(Message):
    """A benefit paid under the Immunization Act (予防接種法による給付, health-damage relief)."""

    benefit_kind: Literal[
        "medical_expenses", "medical_allowance", "child_disability_pension", "disability_pension", "death_lump_sum", "funeral_expenses"
    ]
    decided_on: date
    amount_yen: Annotated[int, Field(ge=0, le=100_000_000)]


class LocalTaxInfo(Message):
    """Municipal tax assessment of one fiscal year (for the exemption from vaccination fees)."""

    fiscal_year: Annotated[int, Field(ge=2000, le=2100)]
    taxable: bool
    per_capita_levy_yen: Annotated[int, Field(ge=0, le=10_000_000)]
    income_levy_yen: Annotated[int, Field(ge=0, le=1_000_000_000)]


class PublicAssistanceInfo(Message):
    """Whether public assistance (生活保護) is being received, and since when."""

    receiving: bool
    started_on: date | None = None
    ended_on: date | None = None


ITEM_LAYOUTS: dict[str, type[Message]] = {
    VACCINATION_RECORDS: VaccinationDose,
    VACCINATION_BENEFITS: VaccinationBenefit,
    LOCAL_TAX: LocalTaxInfo,
    PUBLIC_ASSISTANCE: PublicAssistanceInfo,
}
MAX_RECORDS_PER_PERSON = 200


def check_records(item_code: str, records: list[Any], location: tuple = ()) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The records in their normal JSON form, and every error found (``loc``, ``msg``, ``type``).

    An item without a layout, too many records, or any record off its layout is an error;
    callers store nothing unless the error list is empty.
    """
    layout = ITEM_LAYOUTS.get(item_code)
    if layout is None:
        return [], [{"loc": [*location, "item_code"], "msg": f"no layout for item {item_code}", "type": "unknown_item"}]
    if len(records) > MAX_RECORDS_PER_PERSON:
        return [], [{"loc": list(location), "msg": f"at most {MAX_RECORDS_PER_PERSON} records a person", "type": "too_long"}]
    normal, errors = [], []
    for index, record in enumerate(records):
        try:
            normal.append(layout.model_validate(record).model_dump(mode="json"))
        except ValidationError as exc:
            for error in exc.errors(include_url=False, include_context=False):
                errors.append({"loc": [*location, index, *error["loc"]], "msg": error["msg"], "type": error["type"]})
    return normal, errors


def copy_digest(records: list[dict[str, Any]]) -> str:
    """SHA-256 of a person's records (in the item's normal form, as ``check_records`` gives
    them) in canonical JSON: equal records, equal digests, on either side of the bus."""
    return hashlib.sha256(canonical_bytes(records)).hexdigest()


# --- on the bus: the business systems and the intermediate server ----------------------


class Consent(Message):
    """The person's consent to the query, as the asking office recorded it (本人同意)."""

    obtained_at: AwareDatetime
    method: Literal["written", "at_counter", "online"]
    recorded_by: StaffUserId
    reference: Annotated[str, Field(max_length=64)] | None = None


class QueryRequest(Message):
    """情報照会: ask another institution for one item about a person of this city."""

    integrated_address_number: IntegratedAddressNumber
    provider: LocalGovernmentCode
    affair_code: AffairCode
    procedure_code: ProcedureCode
    item_code: ItemCode
    consent: Consent


QueryStatus = Literal["pending", "sent", "held", "answered", "refused", "failed", "abandoned"]
FINAL_STATUSES: frozenset[str] = frozenset({"answered", "refused", "failed", "abandoned"})


class QueryAccepted(Message):
    query_id: QueryId
    status: QueryStatus


class QueryResultRequest(Message):
    query_id: QueryId


class QueryResult(Message):
    """Where a query stands; ``records`` (in the item's layout) once answered."""

    query_id: QueryId
    integrated_address_number: IntegratedAddressNumber
    provider: LocalGovernmentCode
    affair_code: AffairCode
    procedure_code: ProcedureCode
    item_code: ItemCode
    status: QueryStatus
    serial_number: SerialNumber | None = None
    records: list[dict[str, Any]] | None = None
    refusal_reason: str | None = None
    requested_at: AwareDatetime
    answered_at: AwareDatetime | None = None


class QueryAnswered(Message):
    """The event: a query reached its end (answered, refused or failed). No personal data:
    the asking system reads the result with ``query_result``."""

    query_id: QueryId
    status: QueryStatus
    item_code: ItemCode
    provider: LocalGovernmentCode


class PersonCopy(Message):
    """One person's records of one item, replacing what the copy held for them."""

    integrated_address_number: IntegratedAddressNumber
    records: Annotated[list[dict[str, Any]], Field(max_length=MAX_RECORDS_PER_PERSON)]


class CopyImport(Message):
    """副本の登録: the business system's copy of the data it provides, by item and person."""

    item_code: ItemCode
    people: Annotated[list[PersonCopy], Field(min_length=1, max_length=1000)]


class CopyImportReply(Message):
    item_code: ItemCode
    people: int
    records: int


class CopyDigestRequest(Message):
    """A page of per-person digests of the copy of one item, after ``after``."""

    item_code: ItemCode
    after: IntegratedAddressNumber | None = None
    limit: Annotated[int, Field(ge=1, le=5000)] = 1000


class CopyDigest(Message):
    integrated_address_number: IntegratedAddressNumber
    records: int
    digest: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class CopyDigestReply(Message):
    """SHA-256 of each person's records in canonical JSON, as ``copy_digest`` computes it."""

    item_code: ItemCode
    digests: list[CopyDigest]
    next_after: IntegratedAddressNumber | None = None


class SystemStatusRequest(Message):
    days: Annotated[int, Field(ge=1, le=366)] = 7


class BatchStatus(Message):
    name: str
    last_run_at: AwareDatetime | None = None
    last_success_at: AwareDatetime | None = None
    last_error: str | None = None
    pending: int = 0


class DailyFigure(Message):
    """Counts of one day and item; never a person."""

    day: date
    item_code: ItemCode | None
    figure: str
    count: int


class SystemStatus(Message):
    tenant: str
    batches: list[BatchStatus]
    figures: list[DailyFigure]
    review_waiting: int = 0


class NumberAssigned(Message):
    """The integrated address system gave a person a number, or learned their resident code.

    The intermediate server obtains the person's symbol with the resident code and keeps
    only the symbol and the number; a person without a resident code gets no symbol.
    """

    integrated_address_number: IntegratedAddressNumber
    resident_code: ResidentCode | None = None


def _operation(name: str, request, reply, callers: set[str], summary: str, person_field: str | None = None, audited: bool = True) -> Operation:
    return Operation(
        owner="intermediate_server",
        name=name,
        request=request,
        reply=reply,
        callers=frozenset(callers),
        person_field=person_field,
        audited=audited,
        summary=summary,
    )


OPERATIONS = [
    _operation(
        "query",
        QueryRequest,
        QueryAccepted,
        {"health_mgmt"},
        "情報照会: ask another institution for an item; answers with a query id, the event follows (flow [14]).",
        person_field="integrated_address_number",
    ),
    _operation(
        "query_result",
        QueryResultRequest,
        QueryResult,
        {"health_mgmt"},
        "Where a query stands, with the decrypted records once answered.",
        person_field="reply.integrated_address_number",
    ),
    _operation(
        "register_copies",
        CopyImport,
        CopyImportReply,
        {"health_mgmt"},
        "副本: register the copy of the data this city provides, checked against the item's layout (flow [15]).",
    ),
    _operation(
        "copy_digests",
        CopyDigestRequest,
        CopyDigestReply,
        {"health_mgmt"},
        "Per-person digests of the copy, to reconcile it with the original.",
    ),
    _operation("system_status", SystemStatusRequest, SystemStatus, {"ops_console"}, "Batch status and business statistics (no person).", audited=False),
    Operation(
        owner="provision_network",
        name="system_status",
        request=SystemStatusRequest,
        reply=SystemStatus,
        callers=frozenset({"ops_console"}),
        audited=False,
        summary="The hub's permits and refusals per day and item (no person).",
    ),
]

QUERY_ANSWERED = Event(
    owner="intermediate_server",
    name="answered",
    model=QueryAnswered,
    consumers=frozenset({"health_mgmt"}),
    summary="A query reached its end; read it with intermediate_server.query_result.",
)
NUMBER_ASSIGNED = Event(
    owner="integrated_address",
    name="number_assigned",
    model=NumberAssigned,
    consumers=frozenset({"intermediate_server", "tax_welfare"}),
    summary="A person got an integrated address number (or their resident code became known): the intermediate server obtains their symbol; the tax and welfare systems key their records by it.",
)
EVENTS = [QUERY_ANSWERED, NUMBER_ASSIGNED]


# --- over HTTPS with mutual TLS: the intermediate servers and the hub ------------------

KEY_STATEMENT_LABEL = "renkei.network.answer-key/v1"
PERMIT_LABEL = "renkei.network.permit/v1"
LIST_LABEL = "renkei.network.permitted-list/v1"

#: The hub's paths.
REGISTRATION_PATH = "/v1/institutions/{city}"
PERMITTED_LIST_PATH = "/v1/permitted-queries"
SYMBOLS_PATH = "/v1/symbols"
PERMITS_PATH = "/v1/permits"
QUERIES_PATH = "/v1/queries"
ANSWERS_PATH = "/v1/answers"
#: An intermediate server's network listener's paths.
PROVIDE_PATH = "/network/v1/queries"
#: The same calls, many queries at once: a server sends the queries it has in hand together
#: (``shared.group_commit.GroupCall``); each is still decided, signed, sealed and recorded on
#: its own, and each gets its own result.
PERMITS_BATCH_PATH = "/v1/permits/batch"
QUERIES_BATCH_PATH = "/v1/queries/batch"
PROVIDE_BATCH_PATH = "/network/v1/queries/batch"
MAX_BATCH = 200
DELIVER_PATH = "/network/v1/answers"


class KeyStatement(Message):
    """An intermediate server's answer key, signed by its own Ed25519 key (trust directory)."""

    principal: Annotated[str, Field(pattern=r"^intermediate_server@\d{6}$")]
    suite: Literal["MLKEM768-X25519/HKDF-SHA256/AES-128-GCM"]
    public_key: Base64
    key_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    created_at: AwareDatetime


class SignedKeyStatement(Message):
    statement: KeyStatement
    signature: Base64


class Registration(Message):
    """Where the hub reaches this intermediate server, and the key answers to it are sealed with."""

    network_url: Annotated[str, Field(pattern=r"^https://[^\s/]+(:\d+)?$")]
    answer_key: SignedKeyStatement


class RegistrationReply(Message):
    city: LocalGovernmentCode
    kind: InstitutionKind
    list_version: str


class PermittedQuery(Message):
    """One row of the permitted-query list (照会許可用照合リスト)."""

    affair_code: AffairCode
    affair_name: str
    procedure_code: ProcedureCode
    procedure_name: str
    requester_kind: InstitutionKind
    provider_kind: InstitutionKind
    item_code: ItemCode
    item_name: str
    legal_basis: str
    auto_response: bool


class PermittedList(Message):
    version: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the rows")]
    rows: list[PermittedQuery]


class SignedPermittedList(Message):
    """The list as the hub distributes it, signed with its Ed25519 key."""

    document: PermittedList
    signature: Base64


class SymbolRequest(Message):
    """Symbols for people of the calling institution, asked with their resident codes."""

    resident_codes: Annotated[list[ResidentCode], Field(min_length=1, max_length=1000)]


class SymbolReply(Message):
    symbols: list[Symbol]  # in the order asked


class PermitRequest(Message):
    query_id: QueryId
    provider: LocalGovernmentCode
    affair_code: AffairCode
    procedure_code: ProcedureCode
    item_code: ItemCode
    requester_symbol: Symbol


class ProvisionPermit(Message):
    """情報提供許可証: what the hub allowed, for which query, along which route, until when.

    It names neither person: the hub gives the provider its own symbol when it relays the
    query, so neither institution learns the other's symbol.
    """

    serial_number: SerialNumber
    query_id: QueryId
    requester: LocalGovernmentCode
    provider: LocalGovernmentCode
    affair_code: AffairCode
    procedure_code: ProcedureCode
    item_code: ItemCode
    route: list[str]  # 経路情報: the principals the query passes, requester first
    requester_key: SignedKeyStatement
    issued_at: AwareDatetime
    expires_at: AwareDatetime


class SignedPermit(Message):
    permit: ProvisionPermit
    signature: Base64

    def verify(self, hub_key: Ed25519PublicKey) -> None:
        """Raise ``SignatureMismatch`` unless ``hub_key`` signed this permit."""
        verify_document(hub_key, PERMIT_LABEL, self.permit.model_dump(mode="json"), self.signature)


class SentQuery(Message):
    """The requester's query, relayed by the hub on the strength of its permit."""

    permit: SignedPermit


class RoutedQuery(Message):
    """What the hub delivers to the provider: the permit and the provider's own symbol."""

    permit: SignedPermit
    provider_symbol: Symbol


class SealedAnswer(Message):
    """The answer, HPKE-sealed to the requester's key; the hub carries it and cannot read it."""

    suite: Literal["MLKEM768-X25519/HKDF-SHA256/AES-128-GCM"]
    key_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    ciphertext: Base64


class ProvisionOutcome(Message):
    """The provider's answer to one routed query: provided (sealed), held for review, or refused."""

    serial_number: SerialNumber
    query_id: QueryId
    status: Literal["provided", "held", "refused"]
    answer: SealedAnswer | None = None
    refusal_reason: Annotated[str, Field(max_length=500)] | None = None


class PermitBatch(Message):
    requests: Annotated[list[PermitRequest], Field(min_length=1, max_length=MAX_BATCH)]


class SentQueryBatch(Message):
    queries: Annotated[list[SentQuery], Field(min_length=1, max_length=MAX_BATCH)]


class RoutedQueryBatch(Message):
    queries: Annotated[list[RoutedQuery], Field(min_length=1, max_length=MAX_BATCH)]


Value = TypeVar("Value")


class BatchResult(Message, Generic[Value]):
    """One item's result: its value, or the problem details (RFC 9457) of why it has none."""

    value: Value | None = None
    problem: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_of_them(self) -> BatchResult[Value]:
        # A result with both or neither says nothing for certain: the reply is refused as a whole.
        if (self.value is None) == (self.problem is None):
            raise ValueError("a batch result holds either a value or a problem")
        return self


class BatchReply(Message, Generic[Value]):
    """One result per item of a batch, in the order sent."""

    results: list[BatchResult[Value]]

    @classmethod
    def of(cls, results: list[Value | Problem]) -> BatchReply[Value]:
        return cls(results=[{"problem": r.to_dict()} if isinstance(r, Problem) else {"value": r} for r in results])

    def unpacked(self) -> list[Value | Problem]:
        return [r.value if r.problem is None else problem_from_dict(r.problem) for r in self.results]


PermitBatchReply = BatchReply[SignedPermit]
OutcomeBatchReply = BatchReply[ProvisionOutcome]


class AnswerPlaintext(Message):
    """What a sealed answer holds: the item asked for and its records, nothing else."""

    serial_number: SerialNumber
    query_id: QueryId
    item_code: ItemCode
    records: list[dict[str, Any]]


def answer_info(serial_number: str, query_id: str, item_code: str) -> bytes:
    """The HPKE ``info`` that binds an answer to its permit, query and item."""
    return f"renkei.network.answer/v1|{serial_number}|{query_id}|{item_code}".encode("ascii")
