"""The API's request and response bodies, one TypedDict per OpenAPI schema.

Answers are the service's JSON as it is (no copying into objects), typed for
editors and mypy. A field the schema does not require is `NotRequired`; the
coverage test compares every model here with `/openapi.json`, field by
field, so a field the service gains or changes fails a test until it is here.

No `from __future__ import annotations` in this module: `NotRequired` must be
visible at run time for `__required_keys__`, which that coverage test reads.
"""

from typing import Any, Literal, Optional

from typing_extensions import NotRequired, TypedDict

Format = Literal["json", "slack", "teams", "discord", "github_dispatch", "template"]
Scheme = Literal["hmac_sha256", "ed25519"]
#: Which shape of an MLflow change a webhook hearing both gets.
MlflowShape = Literal["native", "comet", "both"]
Family = Literal[
    "monitoring", "requests", "model_registry", "executions", "test", "operational", "mlflow"
]
SourceKind = Literal["mlflow"]
TokenKind = Literal["write", "read"]

# ---- errors ----


class FieldError(TypedDict):
    field: str
    message: str


class ErrorDetail(TypedDict):
    code: str
    message: str
    field: NotRequired[Optional[str]]
    details: list[FieldError]


class ErrorBody(TypedDict):
    error: ErrorDetail


# ---- projects ----


class ProjectInput(TypedDict):
    id: str
    name: str
    link_base_url: NotRequired[Optional[str]]


class ProjectPatch(TypedDict, total=False):
    name: Optional[str]
    link_base_url: Optional[str]


class ProjectView(TypedDict):
    id: str
    name: str
    link_base_url: NotRequired[Optional[str]]
    created_at: str
    updated_at: str


class ProjectList(TypedDict):
    data: list[ProjectView]


# ---- tokens ----


class TokenInput(TypedDict, total=False):
    name: Optional[str]
    kind: Optional[TokenKind]


class TokenView(TypedDict):
    id: str
    prefix: str
    kind: str
    project_id: NotRequired[Optional[str]]
    name: NotRequired[Optional[str]]
    created_at: str
    revoked_at: NotRequired[Optional[str]]


class CreatedToken(TokenView):
    token: str


class TokenList(TypedDict):
    data: list[TokenView]
    next_cursor: NotRequired[Optional[str]]


# ---- event types ----


class EventType(TypedDict):
    name: str
    family: Family
    description: str
    schema: Any
    example: Any
    test_payload: Any


class EventTypeList(TypedDict):
    data: list[EventType]


class PayloadInput(TypedDict):
    payload: Any
    project: NotRequired[Optional[str]]


class ObjectRef(TypedDict):
    type: str
    name: NotRequired[Optional[str]]
    version: NotRequired[Optional[str]]


class PayloadCheck(TypedDict):
    valid: bool
    violations: list[FieldError]
    payload: NotRequired[Any]
    object: NotRequired[Optional[ObjectRef]]


# ---- events ----


class EventInput(TypedDict):
    type: str
    payload: Any
    object: NotRequired[Optional[ObjectRef]]
    idempotency_key: NotRequired[Optional[str]]


class BatchInput(TypedDict):
    events: list[EventInput]


class AcceptedView(TypedDict):
    id: str
    deliveries: list[str]


class SentEvent(AcceptedView):
    """`AcceptedView` and whether the idempotency key had been seen before
    (the `Idempotent-Replayed` answer header): the event was not stored again."""

    replayed: bool


class BatchAccepted(TypedDict):
    events: list[AcceptedView]


class EventView(TypedDict):
    id: str
    type: str
    object: NotRequired[Optional[ObjectRef]]
    payload: dict[str, Any]
    is_test: bool
    created_at: str


class DeliveryStatusView(TypedDict):
    id: str
    webhook_id: str
    status: str
    attempts: int
    next_attempt_at: NotRequired[Optional[str]]
    last_status_code: NotRequired[Optional[int]]


class EventDetail(EventView):
    deliveries: list[DeliveryStatusView]


class EventPage(TypedDict):
    data: list[EventView]
    next_cursor: NotRequired[Optional[str]]


# ---- deliveries ----


class DeliveryView(TypedDict):
    id: str
    event_id: str
    webhook_id: str
    event_type: str
    status: str
    is_test: bool
    attempts: int
    next_attempt_at: NotRequired[Optional[str]]
    last_status_code: NotRequired[Optional[int]]
    created_at: str
    updated_at: str


class DeliveryPage(TypedDict):
    data: list[DeliveryView]
    next_cursor: NotRequired[Optional[str]]


class RequestView(TypedDict):
    """A request as sent: secrets and protected header values read `********`."""

    method: str
    url: str
    headers: dict[str, str]
    body: str


class ResponseView(TypedDict):
    status: int
    headers: dict[str, str]
    body: str
    truncated: bool


class ErrorView(TypedDict):
    kind: str
    message: str


class AttemptView(TypedDict):
    attempt: int
    manual: bool
    started_at: str
    duration_ms: int
    request: RequestView
    response: NotRequired[Optional[ResponseView]]
    error: NotRequired[Optional[ErrorView]]
    next_attempt_at: NotRequired[Optional[str]]


class DeliveryDetail(DeliveryView):
    history: list[AttemptView]


class SendOutcome(TypedDict):
    """What a synchronous send (test, validate, redeliver) answers."""

    valid: bool
    delivery_id: NotRequired[Optional[str]]
    request: RequestView
    response: NotRequired[Optional[ResponseView]]
    error: NotRequired[Optional[ErrorView]]
    duration_ms: int


# ---- webhooks ----


class Scope(TypedDict, total=False):
    object_type: Optional[str]
    object_name: Optional[str]
    version: Optional[str]


class HeaderInput(TypedDict):
    key: str
    value: NotRequired[Optional[str]]
    protected: NotRequired[bool]


class HeaderView(TypedDict):
    key: str
    value: NotRequired[Optional[str]]
    protected: bool


class GithubInput(TypedDict):
    repository: str
    token: NotRequired[Optional[str]]
    api_url: NotRequired[Optional[str]]


class GithubView(TypedDict):
    repository: str
    api_url: str
    has_token: bool


class RateLimit(TypedDict, total=False):
    """Exactly one of the two."""

    per_second: int
    per_minute: int


class WebhookInput(TypedDict):
    #: Event types, or patterns: `*` within a name spans any characters.
    events: list[str]
    #: Accept names and patterns no known event type matches yet.
    allow_unknown: NotRequired[bool]
    name: NotRequired[Optional[str]]
    description: NotRequired[Optional[str]]
    url: NotRequired[Optional[str]]
    scope: NotRequired[Optional[Scope]]
    headers: NotRequired[list[HeaderInput]]
    secret: NotRequired[Optional[str]]
    include_result: NotRequired[bool]
    enabled: NotRequired[bool]
    format: NotRequired[Format]
    github: NotRequired[Optional[GithubInput]]
    template: NotRequired[Any]
    rate_limit: NotRequired[Optional[RateLimit]]
    signing_scheme: NotRequired[Scheme]
    #: For MLflow's changes, when the webhook hears both: native (default), comet or both.
    mlflow_shape: NotRequired[MlflowShape]


class WebhookPatch(TypedDict, total=False):
    """Absent fields stay as they are; `secret=None` removes the secret."""

    name: Optional[str]
    description: Optional[str]
    url: Optional[str]
    events: Optional[list[str]]
    #: With `events`: accept names and patterns no known event type matches yet.
    allow_unknown: bool
    scope: Optional[Scope]
    headers: Optional[list[HeaderInput]]
    secret: Optional[str]
    include_result: Optional[bool]
    enabled: Optional[bool]
    format: Optional[Format]
    github: Optional[GithubInput]
    template: Any
    rate_limit: Optional[RateLimit]
    mlflow_shape: Optional[MlflowShape]


class WebhookView(TypedDict):
    id: str
    project_id: str
    name: str
    description: str
    url: str
    format: Format
    events: list[str]
    scope: Scope
    headers: list[HeaderView]
    has_secret: bool
    github: NotRequired[Optional[GithubView]]
    template: NotRequired[Any]
    rate_limit: NotRequired[Optional[RateLimit]]
    effective_rate_limit: NotRequired[Optional[RateLimit]]
    signing_scheme: Scheme
    signing_public_key: NotRequired[Optional[str]]
    previous_signing_key_expires_at: NotRequired[Optional[str]]
    include_result: bool
    mlflow_shape: MlflowShape
    enabled: bool
    disabled_reason: NotRequired[Optional[str]]
    disabled_at: NotRequired[Optional[str]]
    created_at: str
    updated_at: str


class CreatedWebhook(WebhookView):
    """The creation answer: the webhook and, for HMAC, its `whsec_` secret."""

    signing_secret: NotRequired[Optional[str]]


class WebhookList(TypedDict):
    data: list[WebhookView]


class SigningKey(TypedDict):
    signing_scheme: Scheme
    signing_secret: NotRequired[Optional[str]]
    signing_public_key: NotRequired[Optional[str]]
    previous_key_expires_at: NotRequired[Optional[str]]


class RotateInput(TypedDict, total=False):
    signing_scheme: Optional[Scheme]
    grace_period: Optional[str]


class TestInput(TypedDict, total=False):
    event_type: Optional[str]


class RecoverInput(TypedDict):
    since: str
    until: NotRequired[Optional[str]]


class Recovered(TypedDict):
    recovered: int


class WindowStats(TypedDict):
    pending: int
    succeeded: int
    failed: int
    exhausted: int
    paused: int
    success_rate: NotRequired[Optional[float]]


class StatsView(TypedDict):
    webhook_id: str
    last_hour: WindowStats
    last_day: WindowStats
    last_success_at: NotRequired[Optional[str]]
    last_failure_at: NotRequired[Optional[str]]


# ---- sources (events from other platforms: MLflow) ----


class SourceInput(TypedDict):
    name: str
    kind: NotRequired[SourceKind]
    secret: NotRequired[Optional[str]]
    unsigned: NotRequired[bool]
    timestamp_tolerance_secs: NotRequired[Optional[int]]
    workspace_name: NotRequired[Optional[str]]


class SourcePatch(TypedDict, total=False):
    """Absent fields stay. A new `secret` replaces the old one, which keeps
    verifying for `secret_grace_period` (default "10m", at most "7d")."""

    name: Optional[str]
    secret: Optional[str]
    secret_grace_period: Optional[str]
    timestamp_tolerance_secs: Optional[int]
    workspace_name: Optional[str]


class SourceView(TypedDict):
    id: str
    project_id: str
    kind: SourceKind
    name: str
    secret_set: bool
    timestamp_tolerance_secs: int
    workspace_name: NotRequired[Optional[str]]
    #: After a change of secret: until when the replaced one still verifies.
    previous_secret_expires_at: NotRequired[Optional[str]]
    path: str
    created_at: str
    updated_at: str


class ActivityView(TypedDict):
    accepted_last_7d: int
    last_accepted_at: NotRequired[Optional[str]]
    rejections_logged: int
    last_rejected_at: NotRequired[Optional[str]]


class SourceAnswer(SourceView):
    url: str
    activity: NotRequired[Optional[ActivityView]]


class SourceList(TypedDict):
    data: list[SourceView]


class SourceRejection(TypedDict):
    at: str
    status: int
    code: str
    reason: str
    delivery_id: NotRequired[Optional[str]]
    event_type: NotRequired[Optional[str]]
    #: The body as sent (at most 64 KiB of UTF-8), when the request got that far.
    body: NotRequired[Optional[str]]


class LogPage(TypedDict):
    data: list[SourceRejection]


# ---- formats ----


class FormatList(TypedDict):
    data: list[dict[str, Any]]


class PreviewInput(TypedDict, total=False):
    format: str
    template: Any
    github_repository: Optional[str]
    events: list[str]
    event_type: Optional[str]
    include_result: bool
    name: Optional[str]


class Preview(TypedDict):
    event_type: str
    content_type: str
    url: NotRequired[Optional[str]]
    body: str


# ---- audit ----


class AuditView(TypedDict):
    id: str
    at: str
    actor: str
    action: str
    target_id: str
    changes: Any


class AuditPage(TypedDict):
    data: list[AuditView]
    next_cursor: NotRequired[Optional[str]]
