"""Every operation of the API, and which client method covers it.

The resource modules build their requests from these entries (the path a
method calls is the one declared here), and the coverage test compares this
table with the running service's `/openapi.json`: an operation the service
has that is neither covered nor listed in `NOT_COVERED` with a reason, or a
request or answer field a model here lacks, fails that test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import quote

from . import models as m


@dataclass(frozen=True)
class Operation:
    """One route: its method and path template, the client method covering it,
    the TypedDicts of its body and answer, its query and header parameters."""

    method: str
    path: str
    client_method: str
    body: Optional[Any] = None
    response: Optional[Any] = None
    query: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    #: Fields of `response` the client adds itself (from answer headers).
    derived_fields: tuple[str, ...] = ()

    def url(self, **params: str) -> str:
        """The path with each `{name}` filled in, percent-encoded."""
        return self.path.format(**{k: quote(v, safe="") for k, v in params.items()})


@dataclass(frozen=True)
class NotCovered:
    method: str
    path: str
    reason: str


_P = "/v1/projects/{project}"
_PAGE = ("limit", "cursor")

PROJECTS_LIST = Operation("GET", "/v1/projects", "projects.list", response=m.ProjectList)
PROJECTS_CREATE = Operation(
    "POST", "/v1/projects", "projects.create", body=m.ProjectInput, response=m.ProjectView
)
PROJECTS_GET = Operation("GET", _P, "projects.get", response=m.ProjectView)
PROJECTS_UPDATE = Operation(
    "PATCH", _P, "projects.update", body=m.ProjectPatch, response=m.ProjectView
)
PROJECTS_DELETE = Operation("DELETE", _P, "projects.delete")
PROJECTS_AUDIT = Operation(
    "GET", _P + "/audit", "projects.audit", response=m.AuditPage, query=_PAGE
)

TOKENS_LIST = Operation("GET", _P + "/tokens", "tokens.list", response=m.TokenList)
TOKENS_CREATE = Operation(
    "POST", _P + "/tokens", "tokens.create", body=m.TokenInput, response=m.CreatedToken
)
TOKENS_REVOKE = Operation("DELETE", _P + "/tokens/{id}", "tokens.revoke")

EVENT_TYPES_LIST = Operation(
    "GET", "/v1/event-types", "event_types.list", response=m.EventTypeList
)
EVENT_TYPES_GET = Operation(
    "GET", "/v1/event-types/{event_type}", "event_types.get", response=m.EventType
)
EVENT_TYPES_VALIDATE = Operation(
    "POST",
    "/v1/event-types/{event_type}/validate",
    "event_types.validate",
    body=m.PayloadInput,
    response=m.PayloadCheck,
)

EVENTS_SEND = Operation(
    "POST",
    _P + "/events",
    "events.send",
    body=m.EventInput,
    response=m.SentEvent,
    headers=("idempotency-key",),
    derived_fields=("replayed",),
)
EVENTS_SEND_BATCH = Operation(
    "POST", _P + "/events/batch", "events.send_batch", body=m.BatchInput, response=m.BatchAccepted
)
EVENTS_LIST = Operation(
    "GET",
    _P + "/events",
    "events.list",
    response=m.EventPage,
    query=("event_type", "since", "until") + _PAGE,
)
EVENTS_GET = Operation("GET", _P + "/events/{id}", "events.get", response=m.EventDetail)
EVENTS_REPLAY = Operation(
    "POST", _P + "/events/{id}/replay", "events.replay", response=m.AcceptedView
)

DELIVERIES_LIST = Operation(
    "GET",
    _P + "/deliveries",
    "deliveries.list",
    response=m.DeliveryPage,
    query=("webhook_id", "event_id", "event_type", "status", "since", "until") + _PAGE,
)
DELIVERIES_GET = Operation(
    "GET", _P + "/deliveries/{id}", "deliveries.get", response=m.DeliveryDetail
)
DELIVERIES_REDELIVER = Operation(
    "POST", _P + "/deliveries/{id}/redeliver", "deliveries.redeliver", response=m.SendOutcome
)

_W = _P + "/webhooks/{id}"
WEBHOOKS_LIST = Operation("GET", _P + "/webhooks", "webhooks.list", response=m.WebhookList)
WEBHOOKS_CREATE = Operation(
    "POST", _P + "/webhooks", "webhooks.create", body=m.WebhookInput, response=m.CreatedWebhook
)
WEBHOOKS_GET = Operation("GET", _W, "webhooks.get", response=m.WebhookView)
WEBHOOKS_UPDATE = Operation(
    "PATCH", _W, "webhooks.update", body=m.WebhookPatch, response=m.WebhookView
)
WEBHOOKS_DELETE = Operation("DELETE", _W, "webhooks.delete")
WEBHOOKS_TEST = Operation(
    "POST", _W + "/test", "webhooks.test", body=m.TestInput, response=m.SendOutcome
)
WEBHOOKS_VALIDATE = Operation(
    "POST",
    _P + "/webhooks/validate",
    "webhooks.validate",
    body=m.WebhookInput,
    response=m.SendOutcome,
)
WEBHOOKS_VALIDATE_CHANGES = Operation(
    "POST",
    _W + "/validate",
    "webhooks.validate_changes",
    body=m.WebhookPatch,
    response=m.SendOutcome,
)
WEBHOOKS_SIGNING_SECRET = Operation(
    "GET", _W + "/signing-secret", "webhooks.signing_secret", response=m.SigningKey
)
WEBHOOKS_ROTATE = Operation(
    "POST",
    _W + "/signing-secret/rotate",
    "webhooks.rotate",
    body=m.RotateInput,
    response=m.SigningKey,
)
WEBHOOKS_STATS = Operation("GET", _W + "/stats", "webhooks.stats", response=m.StatsView)
WEBHOOKS_RECOVER = Operation(
    "POST", _W + "/recover", "webhooks.recover", body=m.RecoverInput, response=m.Recovered
)

SOURCES_LIST = Operation("GET", _P + "/sources", "sources.list", response=m.SourceList)
SOURCES_CREATE = Operation(
    "POST", _P + "/sources", "sources.create", body=m.SourceInput, response=m.SourceAnswer
)
SOURCES_GET = Operation("GET", _P + "/sources/{id}", "sources.get", response=m.SourceAnswer)
SOURCES_UPDATE = Operation(
    "PATCH", _P + "/sources/{id}", "sources.update", body=m.SourcePatch, response=m.SourceAnswer
)
SOURCES_DELETE = Operation("DELETE", _P + "/sources/{id}", "sources.delete")
SOURCES_LOG = Operation(
    "GET", _P + "/sources/{id}/log", "sources.log", response=m.LogPage, query=("limit",)
)

FORMATS_LIST = Operation("GET", "/v1/formats", "formats.list", response=m.FormatList)
FORMATS_PREVIEW = Operation(
    "POST", "/v1/formats/preview", "formats.preview", body=m.PreviewInput, response=m.Preview
)

#: Every `Operation` above, so that none declared can be left out of the check.
COVERED: tuple[Operation, ...] = tuple(
    value for value in list(globals().values()) if isinstance(value, Operation)
)

NOT_COVERED: tuple[NotCovered, ...] = (
    NotCovered("GET", "/healthz", "a probe for load balancers and orchestrators, not for ML code"),
    NotCovered("GET", "/readyz", "a probe for load balancers and orchestrators, not for ML code"),
    NotCovered("GET", "/metrics", "Prometheus scrapes it, in its own text format"),
    NotCovered(
        "POST",
        _P + "/sources/{id}/mlflow",
        "MLflow itself posts there, signed with the source's secret, not with a token",
    ),
)
