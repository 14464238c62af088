"""What a failed fal call means, decided from the answer's structure (status, `detail`, `error_type`), never its words.

`classify_http(status, body, headers)` is the one place an HTTP answer becomes a `GenerationError`; the gateway
feeds it fal_client's exceptions, its own submit answers and completed-with-error statuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class FailureKind(StrEnum):
    """What a failed fal call means for the job (values equal the old string kinds where they existed)."""

    # definite: the job will not produce anything (fal does not bill these)
    REJECTED = "rejected"
    CONTENT_POLICY = "content_policy"
    AUTH = "auth"
    GONE = "gone"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    # transient: try again later with backoff
    SERVER = "server"
    RATE_LIMITED = "rate_limited"
    NETWORK = "network"
    # a submit was sent but never answered: fal may have accepted (and may bill) it
    UNKNOWN_OUTCOME = "unknown_outcome"
    # completed, but the output is missing or not what the model promises
    BAD_OUTPUT = "bad_output"


RETRYABLE_KINDS = frozenset({FailureKind.SERVER, FailureKind.RATE_LIMITED, FailureKind.NETWORK})


class GenerationError(Exception):
    """A generation step failed.

    `message` is plain, polite words for the channel (never a key, token or signed URL); `kind` drives what
    happens next. `status` is the HTTP status fal answered with, `field` the offending input (last element of a
    422 detail's `loc`), `error_type` fal's `error_type` / `X-Fal-Error-Type`. Whether the call may be repeated
    follows from `kind` alone (`retryable`). `kind` must be a FailureKind: a plain string raises TypeError.
    """

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        status: int | None = None,
        field: str | None = None,
        error_type: str | None = None,
    ) -> None:
        if not isinstance(kind, FailureKind):
            raise TypeError(f"GenerationError needs a FailureKind, not {kind!r}")
        self.kind = kind
        self.message = message
        self.status = status
        self.field = field
        self.error_type = error_type
        super().__init__(f"{self.kind}: {message}")

    @property
    def retryable(self) -> bool:
        """True for SERVER, RATE_LIMITED and NETWORK: the same call may succeed later."""
        return self.kind in RETRYABLE_KINDS

    def __repr__(self) -> str:
        return (
            f"GenerationError({self.kind.value!r}, {self.message!r}, status={self.status!r}, "
            f"field={self.field!r}, error_type={self.error_type!r})"
        )


_TIMEOUT_TYPES = frozenset({"request_timeout", "startup_timeout"})
_CANCELLED_TYPES = frozenset({"client_cancelled", "client_disconnected"})


def _field_of(item: Mapping[str, Any]) -> str | None:
    loc = item.get("loc")
    if isinstance(loc, list | tuple) and loc:
        last = loc[-1]
        if last != "body":
            return str(last)
    return None


def _detail_items(detail: object) -> list[Mapping[str, Any]]:
    if isinstance(detail, list):
        return [d for d in detail if isinstance(d, Mapping)]
    return []


def _detail_words(detail: object) -> str:
    """fal's own words, short, for logs and a REJECTED message (422 msgs name a field and a reason)."""
    items = _detail_items(detail)
    if items:
        parts = []
        for item in items:
            field = _field_of(item)
            msg = " ".join(str(item.get("msg", "")).split())
            parts.append(f"{field}: {msg}" if field else msg)
        text = "; ".join(p for p in parts if p)
    elif isinstance(detail, str):
        text = " ".join(detail.split())
    else:
        text = ""
    return _scrub(text)[:300]


def _scrub(text: str) -> str:
    """Drop anything that looks like a URL (signed storage URLs carry tokens) from text shown in a channel."""
    return " ".join("<url>" if "://" in word else word for word in text.split())


def _error_type_of(body: object, headers: Mapping[str, str] | None) -> str | None:
    """fal's `error_type` from the body, else from the `X-Fal-Error-Type` header."""
    error_type = body.get("error_type") if isinstance(body, Mapping) else None
    if isinstance(error_type, str):
        return error_type
    if headers:
        lowered = {str(k).lower(): v for k, v in headers.items()}
        return lowered.get("x-fal-error-type") or None
    return None


def _is_policy_item(item: Mapping[str, Any]) -> bool:
    """True for a 422 detail item of type `content_policy_violation`."""
    return str(item.get("type", "")) == "content_policy_violation"


def _policy_error(items: list[Mapping[str, Any]], common: dict[str, Any]) -> GenerationError:
    """CONTENT_POLICY, naming the field of the first policy item (else the first field named)."""
    policy_field = next((_field_of(i) for i in items if _is_policy_item(i)), common["field"])
    return GenerationError(
        FailureKind.CONTENT_POLICY,
        "fal refused this prompt or image under its content policy. Try a different prompt.",
        **{**common, "field": policy_field},
    )


def _is_server_fault(status: int, error_type: str | None) -> bool:
    """A 5xx, or an error type fal uses for its own infrastructure (runner_*, internal_error)."""
    return status >= 500 or (error_type or "").startswith("runner_") or error_type == "internal_error"


def _kind_and_message(status: int, error_type: str | None, words: str) -> tuple[FailureKind, str]:
    """The kind and channel message of an answer that is not a policy refusal: error type first, then status."""
    if error_type in _CANCELLED_TYPES:
        return FailureKind.CANCELLED, "The job was cancelled at fal."
    if error_type in _TIMEOUT_TYPES:
        return FailureKind.TIMEOUT, "fal timed out on this job. Try again."
    if status in (401, 403):
        return FailureKind.AUTH, "fal refused the bot's key; an admin should check FAL_KEY."
    if status in (404, 410):
        return (
            FailureKind.GONE,
            "fal no longer holds this job or its result (results are kept about an hour).",
        )
    if status in (408, 409, 429):
        return FailureKind.RATE_LIMITED, f"fal asked the bot to slow down ({status})."
    if _is_server_fault(status, error_type):
        return FailureKind.SERVER, f"fal had a server error ({status})."
    return FailureKind.REJECTED, f"fal rejected the request: {words or 'no details given'}."


def classify_http(
    status: int,
    body: object,
    headers: Mapping[str, str] | None = None,
) -> GenerationError:
    """Turn one HTTP error answer from fal into a GenerationError, by structure only."""
    detail = body.get("detail") if isinstance(body, Mapping) else body
    error_type = _error_type_of(body, headers)
    items = _detail_items(detail)
    field = next((f for f in (_field_of(i) for i in items) if f), None)
    common: dict[str, Any] = {"status": status, "field": field, "error_type": error_type}
    if error_type == "content_policy_violation" or any(_is_policy_item(i) for i in items):
        return _policy_error(items, common)
    kind, message = _kind_and_message(status, error_type, _detail_words(detail))
    return GenerationError(kind, message, **common)


def classify_completed(error: object, error_type: object) -> GenerationError:
    """A status of COMPLETED that carries `error`/`error_type`: the job ended without an output.

    Without a structured answer only `error_type` decides: the infrastructure types map as on an HTTP error;
    an unknown or missing type means the model itself refused the input (REJECTED, definite).
    """
    etype = error_type if isinstance(error_type, str) and error_type else None
    words = _scrub(" ".join(str(error or "").split()))[:200]
    if etype == "content_policy_violation":
        return classify_http(422, {"detail": "", "error_type": etype})
    if etype in _CANCELLED_TYPES or etype in _TIMEOUT_TYPES:
        return classify_http(400, {"detail": words, "error_type": etype})
    if etype is not None and (etype.startswith("runner_") or etype == "internal_error"):
        return GenerationError(
            FailureKind.SERVER,
            f"fal had a server error running this job ({words or etype}).",
            error_type=etype,
        )
    return GenerationError(
        FailureKind.REJECTED,
        f"fal could not run this job ({words or etype or 'no details'}).",
        error_type=etype,
    )


def from_exception(exc: BaseException) -> GenerationError:
    """A fal_client / httpx exception from a call that is safe to repeat (status, result, cancel, upload)."""
    import fal_client
    import httpx

    if isinstance(exc, GenerationError):
        return exc
    if isinstance(exc, fal_client.FalClientHTTPError):
        body: object
        try:
            body = exc.response.json()
        except Exception:
            body = {"detail": exc.message, "error_type": exc.error_type}
        if isinstance(body, Mapping) and "error_type" not in body and exc.error_type:
            body = {**body, "error_type": exc.error_type}
        return classify_http(exc.status_code, body, exc.response_headers)
    if isinstance(exc, httpx.HTTPStatusError):
        try:
            body = exc.response.json()
        except Exception:
            body = {}
        return classify_http(exc.response.status_code, body, dict(exc.response.headers))
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return GenerationError(FailureKind.NETWORK, "fal did not answer in time.")
    if isinstance(exc, httpx.HTTPError | OSError):
        return GenerationError(FailureKind.NETWORK, f"Could not reach fal ({type(exc).__name__}).")
    if isinstance(exc, ValueError | KeyError | TypeError):  # an answer fal_client could not parse
        return GenerationError(FailureKind.SERVER, "fal sent an answer the bot could not read.")
    return GenerationError(FailureKind.NETWORK, f"Could not reach fal ({type(exc).__name__}).")


__all__ = [
    "RETRYABLE_KINDS",
    "FailureKind",
    "GenerationError",
    "classify_completed",
    "classify_http",
    "from_exception",
]
