"""Checking a received delivery: Standard Webhooks signatures, both kinds.

- `whsec_<base64 key>`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`;
- `whpk_<base64 ed25519 public key>`: `v1a,<base64 ed25519 signature>` of the
  same string (the service keeps the secret half; receivers hold only this).

`webhook-signature` may carry several signatures, space-separated: during a
key rotation the old key signs too, so a receiver holding either key accepts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import Callable, Mapping, Optional, Sequence, Union

from .errors import WebhookVerificationError

#: Standard Webhooks' tolerance for `webhook-timestamp`, either side of now.
DEFAULT_TOLERANCE_SECS = 300

_Matcher = Callable[[str, bytes, bytes], bool]


def verify(
    headers: Mapping[str, str],
    body: Union[bytes, str],
    secret_or_public_key: Union[str, Sequence[str]],
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECS,
    now: Optional[float] = None,
) -> None:
    """Raises `WebhookVerificationError` unless a signature in `headers`
    matches `body` (the raw bytes as received, before any JSON parsing) for
    one of the keys, with a timestamp within `tolerance` seconds of now.

    `headers`: any mapping (a dict, `request.headers` of Flask, Django,
    Starlette); names are matched case-insensitively. The keys: a `whsec_`
    secret or a `whpk_` public key, or several (each is tried). A key that is
    neither raises `ValueError`: that is a configuration mistake, not a bad
    delivery.
    """
    matchers = [_matcher(key) for key in _keys(secret_or_public_key)]
    named = {name.lower(): value for name, value in headers.items()}
    msg_id = _header(named, "webhook-id")
    timestamp = _header(named, "webhook-timestamp")
    signatures = _header(named, "webhook-signature")
    _check_timestamp(timestamp, tolerance, time.time() if now is None else now)
    raw = body.encode() if isinstance(body, str) else bytes(body)
    content = f"{msg_id}.{timestamp}.".encode() + raw
    for entry in signatures.split():
        version, _, encoded = entry.partition(",")
        try:
            signature = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if any(match(version, signature, content) for match in matchers):
            return
    raise WebhookVerificationError("no signature matches the body and the key")


def _keys(keys: Union[str, Sequence[str]]) -> list[str]:
    listed = [keys] if isinstance(keys, str) else list(keys)
    if not listed:
        raise ValueError("no key to verify with")
    return listed


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise WebhookVerificationError(f"the {name} header is missing")
    return value.strip()


def _check_timestamp(value: str, tolerance: float, now: float) -> None:
    try:
        sent = int(value)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a number of seconds") from None
    if now - sent > tolerance:
        raise WebhookVerificationError("webhook-timestamp is too old")
    if sent - now > tolerance:
        raise WebhookVerificationError("webhook-timestamp is in the future")


def _decode_key(key: str, prefix: str) -> bytes:
    try:
        return base64.b64decode(key[len(prefix):], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the {prefix} key is not valid base64") from None


def _matcher(key: str) -> _Matcher:
    """A check of one signature entry against one key."""
    if key.startswith("whsec_"):
        secret = _decode_key(key, "whsec_")

        def hmac_matches(version: str, signature: bytes, content: bytes) -> bool:
            expected = hmac.new(secret, content, hashlib.sha256).digest()
            return version == "v1" and hmac.compare_digest(expected, signature)

        return hmac_matches
    if key.startswith("whpk_"):
        return _ed25519_matcher(_decode_key(key, "whpk_"))
    raise ValueError("a verification key is a whsec_ secret or a whpk_ public key")


def _ed25519_matcher(raw: bytes) -> _Matcher:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if len(raw) != 32:
        raise ValueError("a whpk_ key holds 32 bytes")
    public = Ed25519PublicKey.from_public_bytes(raw)

    def ed25519_matches(version: str, signature: bytes, content: bytes) -> bool:
        if version != "v1a":
            return False
        try:
            public.verify(signature, content)
        except InvalidSignature:
            return False
        return True

    return ed25519_matches
