"""The exceptions the client raises.

`ApiError` carries the service's one error shape (`code`, `message`,
`field`, `details`); a subclass per status lets callers catch what they
expect (`except mlhook.NotFoundError`).
"""

from __future__ import annotations

from typing import Any, Optional

import httpx

from ._retry import parse_retry_after
from .models import FieldError


class MlhookError(Exception):
    """Every error this package raises."""


class ConfigurationError(MlhookError):
    """The client lacks its URL or token (arguments or MLHOOK_URL / MLHOOK_TOKEN)."""


class TransportError(MlhookError):
    """No answer: the service could not be reached or the connection broke."""


class RequestTimeoutError(TransportError):
    """No answer within the client's timeout."""


class WebhookVerificationError(MlhookError):
    """A received delivery's signature or timestamp does not check out."""


class ApiError(MlhookError):
    """The service answered with an error status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: Optional[str] = None,
        details: Optional[list[FieldError]] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details: list[FieldError] = details or []
        self.retry_after = retry_after

    @staticmethod
    def from_response(response: httpx.Response) -> ApiError:
        """The error an answer carries; a body that is not the service's shape
        (a proxy's error page) still gives the status and the start of its text."""
        kind = _BY_STATUS.get(response.status_code, ApiError)
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        error = _error_object(response)
        if error is None:
            text = response.text.strip()[:200] or response.reason_phrase
            return kind(response.status_code, f"http_{response.status_code}", text,
                        retry_after=retry_after)
        return kind(
            response.status_code,
            str(error.get("code", f"http_{response.status_code}")),
            str(error.get("message", "")),
            field=error.get("field"),
            details=list(error.get("details") or []),
            retry_after=retry_after,
        )


def _error_object(response: httpx.Response) -> Optional[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


class BadRequestError(ApiError):
    """400: invalid input; `field` names the JSON pointer at fault."""


class AuthenticationError(ApiError):
    """401: no token or an unknown one."""


class PermissionDeniedError(ApiError):
    """403: the token may not do this (a read token writing, a project token on admin routes)."""


class NotFoundError(ApiError):
    """404: no such resource, or one the token may not see."""


class ConflictError(ApiError):
    """409: the resource exists already or is in a state that refuses the request."""


class UnprocessableError(ApiError):
    """422: the request is well formed but cannot be honoured (an idempotency key
    used before with a different body)."""


class RateLimitedError(ApiError):
    """429: too many requests (or failed authentications); retried before raised."""


class UnavailableError(ApiError):
    """503: the store cannot take the request now; retried before raised."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableError,
    429: RateLimitedError,
    503: UnavailableError,
}
