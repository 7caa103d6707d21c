"""The Python client of mlhook: send ML events, manage webhooks and
deliveries, and verify the signatures of deliveries you receive.

    import mlhook
    client = mlhook.Client()  # MLHOOK_URL, MLHOOK_TOKEN
    client.events.send("fraud-team", "execution_completed", payload, idempotency_key=run_id)
"""

__version__ = "0.1.0"

from . import models
from ._client import AsyncClient, Client
from ._pagination import AsyncPageIterator, Page, PageIterator
from .errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    MlhookError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RequestTimeoutError,
    TransportError,
    UnavailableError,
    UnprocessableError,
    WebhookVerificationError,
)
from .verify import verify

__all__ = [
    "ApiError",
    "AsyncClient",
    "AsyncPageIterator",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConfigurationError",
    "ConflictError",
    "MlhookError",
    "NotFoundError",
    "Page",
    "PageIterator",
    "PermissionDeniedError",
    "RateLimitedError",
    "RequestTimeoutError",
    "TransportError",
    "UnavailableError",
    "UnprocessableError",
    "WebhookVerificationError",
    "models",
    "verify",
]
