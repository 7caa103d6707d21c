"""When to send a request again: 429 and 503 answers, a bounded number of
times, after the answer's `Retry-After` or else an exponential backoff with
jitter (so many clients turned away together do not come back together)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Optional
import time

RETRIED_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    #: Retries after the first attempt; 0 disables them.
    max_retries: int = 3
    #: The first backoff without `Retry-After`, doubled per retry.
    backoff: float = 0.5
    max_backoff: float = 8.0
    #: A `Retry-After` longer than this is not waited for: the error is raised.
    max_retry_after: float = 60.0

    def delay(self, status: int, retry_after: Optional[str], retries_done: int) -> Optional[float]:
        """Seconds to wait before the next attempt, or None to give up."""
        if status not in RETRIED_STATUSES or retries_done >= self.max_retries:
            return None
        asked = parse_retry_after(retry_after)
        if asked is not None:
            return asked if asked <= self.max_retry_after else None
        ceiling = min(self.backoff * (2**retries_done), self.max_backoff)
        return random.uniform(ceiling / 2, ceiling)


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """`Retry-After` in seconds: delta-seconds or an HTTP date (RFC 9110)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
