"""The fal gateway: one interface for every model, two backends (fal, and a free local dry run in `dryrun.py`).

Nothing here imports discord. Every failure comes out as a `GenerationError` whose `kind` (a `FailureKind`) is decided
from the answer's structure, so the job engine never sees fal_client's exception types or matches message text.

The rules that keep money exact:
* `submit` is sent EXACTLY ONCE. fal_client's `submit()` re-sends after a reset, a timeout or a 429 (up to 10 times),
  which can make fal run and bill one take twice; this gateway posts once itself, with fal_client's auth headers,
  over the shared aiohttp session (which never re-sends a POST; no redirect is followed), and, like fal_client's
  transport, tries a domain's backup once when no connection could be made. Nothing sent (connect refused /
  connect timeout) -> NETWORK; fal answered 408/409/429/5xx -> RATE_LIMITED/SERVER (fal did not enqueue); sent but
  no answer (reset, read timeout) -> UNKNOWN_OUTCOME, which must not be resubmitted blindly.
* `status` and `result` are one aiohttp GET each (cheap at hundreds of takes in flight); `cancel` goes through
  fal_client (it may repeat). Each call is bounded by `call_timeout_s`; the engine retries with backoff.
* a COMPLETED status with `error`/`error_type` is classified here, into `Status.error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Awaitable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import urlencode

import aiohttp
import yarl

from bot.fal.errors import FailureKind, GenerationError, classify_completed, classify_http, from_exception

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_CLIP_BYTES = 2 * 1024 * 1024 * 1024
_CHUNK = 64 * 1024
_MAX_ANSWER_BYTES = 8 * 1024 * 1024  # a status or result answer is JSON of a few KiB


@dataclass(frozen=True)
class Status:
    """Where a submitted job stands; a COMPLETED job that failed carries its classified error."""

    state: Literal["queued", "running", "completed"]
    position: int | None = None
    error: GenerationError | None = None


class CancelOutcome(StrEnum):
    """What fal said to a cancel."""

    CANCELLED = "cancelled"  # fal confirmed CANCELLATION_REQUESTED: the job stops, nothing is billed
    ALREADY_DONE = "already_done"  # ALREADY_COMPLETED: the output will come (and is billed)
    NOT_FOUND = "not_found"  # fal does not know the request (never enqueued, or long gone)
    UNCONFIRMED = "unconfirmed"  # 5xx / timeout / reset: we do not know; the take must carry on


class Gateway(Protocol):
    """What the job engine needs from a backend."""

    name: str
    needs_upload: bool
    dry_run: bool

    async def upload(self, data: bytes, content_type: str, file_name: str) -> str: ...
    async def submit(
        self, endpoint: str, arguments: dict[str, Any], *, webhook_url: str | None = None
    ) -> str: ...
    async def status(self, endpoint: str, request_id: str) -> Status: ...
    async def result(self, endpoint: str, request_id: str) -> dict[str, Any]: ...
    async def cancel(self, endpoint: str, request_id: str) -> CancelOutcome: ...
    async def download(self, url: str, dest: Path, *, max_bytes: int) -> int: ...
    async def close(self) -> None: ...


# Errors after which nothing reached fal: aiohttp raises these before a byte of the request is written (no
# connection: refused, DNS, TLS handshake, proxy, connect timeout; or an address it cannot send to at all).
_NOTHING_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, aiohttp.NonHttpUrlClientError)
_BACKUP_CONNECT_TIMEOUT_S = 5.0  # fal_client's cap on the connect timeout to a domain that has a backup


def _json_body(arguments: dict[str, Any]) -> bytes:
    """The submit's body, byte for byte what httpx's `json=` sent (compact, UTF-8, NaN refused)."""
    return json.dumps(arguments, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _env_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (HTTPS_PROXY, NO_PROXY...), as fal_client's httpx client honoured
    it for the submit."""
    try:
        proxy, _auth = aiohttp.helpers.get_env_proxy_for_url(yarl.URL(url, encoded=True))
    except LookupError:
        return None
    return str(proxy)


_KNOWN_COMPLETED_TYPES = ("request_timeout", "startup_timeout", "client_cancelled", "client_disconnected")


class FalGateway:
    """fal through fal_client 1.0.3 (upload, cancel, auth), one hand-sent submit, aiohttp for polls and downloads."""

    name = "fal"
    needs_upload = True
    dry_run = False

    def __init__(
        self,
        key: str,
        *,
        session: aiohttp.ClientSession,
        max_concurrency: int = 8,
        call_timeout_s: float = 30.0,
        submit_timeout_s: float = 60.0,
        upload_timeout_s: float = 180.0,
        download_read_timeout_s: float = 60.0,
    ) -> None:
        import fal_client

        self._client = fal_client.AsyncClient(key=key or None, default_timeout=call_timeout_s)
        self._session = session
        self._auth_headers: dict[str, str] | None = None
        self._proxies: dict[str, str | None] = {}  # submit URL -> env proxy, read once as httpx's client did
        self._sem = asyncio.Semaphore(max_concurrency)
        self.call_timeout_s = call_timeout_s
        self.submit_timeout_s = submit_timeout_s
        self.upload_timeout_s = upload_timeout_s
        self.download_read_timeout_s = download_read_timeout_s

    async def _http(self) -> Any:
        """fal_client's authenticated httpx client (auth header, user agent, backup-domain transport)."""
        try:
            return await self._client._client
        except Exception as exc:  # MissingCredentialsError and friends
            raise GenerationError(
                FailureKind.AUTH, "The bot has no usable fal key; an admin should check FAL_KEY."
            ) from exc

    async def _bounded(self, call: Awaitable[T], timeout: float | None = None) -> T:
        async with self._sem:
            try:
                return await asyncio.wait_for(call, timeout or self.call_timeout_s)
            except GenerationError:
                raise
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise from_exception(exc) from exc

    def _handle(self, http: Any, endpoint: str, request_id: str) -> Any:
        import fal_client

        return fal_client.AsyncRequestHandle.from_request_id(http, endpoint, request_id)

    async def upload(self, data: bytes, content_type: str, file_name: str) -> str:
        return await self._bounded(self._client.upload(data, content_type, file_name), self.upload_timeout_s)

    async def submit(
        self, endpoint: str, arguments: dict[str, Any], *, webhook_url: str | None = None
    ) -> str:
        """POST once over the shared aiohttp session (it never re-sends a POST and follows no redirect here); as
        fal_client's transport did, a domain with a backup (queue.fal.run) is tried once on its backup when no
        connection could be made. fal_client's httpx client cost about 1.6 ms of CPU a submit, this 0.5 (bench)."""
        import fal_client.client as fc

        headers = {**await self._headers(), "Content-Type": "application/json"}
        body = _json_body(arguments)
        url = fc.QUEUE_URL_FORMAT + endpoint
        if webhook_url is not None:
            url += "?" + urlencode({"fal_webhook": webhook_url})
        async with self._sem:
            try:
                code, answer, answer_headers = await self._post_once(url, body, headers)
            except _NOTHING_SENT as exc:
                backup = _backup_url(url)
                if backup is None:
                    raise _not_sent(exc) from exc
                log.warning(
                    "Connection to %s failed (%s); trying backup domain %s",
                    yarl.URL(url).host,
                    type(exc).__name__,
                    yarl.URL(backup).host,
                )
                try:
                    code, answer, answer_headers = await self._post_once(backup, body, headers)
                except _NOTHING_SENT:
                    raise _not_sent(exc) from exc
                except (aiohttp.ClientError, TimeoutError, OSError) as sent:
                    raise _unanswered(endpoint, sent) from sent
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise _unanswered(endpoint, exc) from exc
        if code >= 400:
            raise classify_http(code, answer, answer_headers)
        request_id = answer.get("request_id") if isinstance(answer, dict) else None
        if not isinstance(request_id, str) or not request_id:
            raise GenerationError(
                FailureKind.UNKNOWN_OUTCOME,
                "fal accepted the submit but its answer had no request id; it is not sent again.",
                status=code,
            )
        return request_id

    async def _post_once(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        """One POST, read to its end: (status, JSON body or None, headers). Connect within 10 s (5 s to a domain
        with a backup), then each read within `submit_timeout_s`, as fal_client's httpx timeouts were."""
        connect = min(10.0, self.submit_timeout_s)
        if _has_backup(url):
            connect = min(connect, _BACKUP_CONNECT_TIMEOUT_S)
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=self.submit_timeout_s + connect,
            sock_connect=connect,
            sock_read=self.submit_timeout_s,
        )
        if url not in self._proxies:
            self._proxies[url] = _env_proxy(url)
        async with self._session.post(
            yarl.URL(url, encoded=True),
            data=body,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
            proxy=self._proxies[url],
        ) as response:
            raw = await response.read()
            code, answer_headers = response.status, dict(response.headers)
        answer: Any = None
        with contextlib.suppress(ValueError):
            answer = json.loads(raw)
        return code, answer, answer_headers

    async def _headers(self) -> dict[str, str]:
        """fal_client's Authorization and User-Agent headers (its key resolution: FAL_KEY, FAL_KEY_ID/SECRET)."""
        if self._auth_headers is None:
            http = await self._http()
            self._auth_headers = {
                k: v for k, v in http.headers.items() if k.lower() in ("authorization", "user-agent")
            }
        return self._auth_headers

    async def _queue_get(self, url: str, **params: str) -> tuple[int, Any, dict[str, str]]:
        """One GET of a queue URL over the shared aiohttp session: (status, JSON body or None, headers).

        Status and result polls are most of the bot's traffic with hundreds of takes in flight; fal_client's httpx
        client spent most of the bot's CPU on them (bench/README.md), aiohttp a fraction. No retry inside a call: the
        job engine retries with persisted backoff. Network faults and timeouts come out as NETWORK."""
        headers = await self._headers()
        async with self._sem:
            try:
                async with asyncio.timeout(self.call_timeout_s):
                    async with self._session.get(url, headers=headers, params=params) as response:
                        code, answer_headers = response.status, dict(response.headers)
                        raw = bytearray()
                        async for chunk in response.content.iter_chunked(_CHUNK):
                            raw += chunk  # to the end: one read() may return only the first chunk
                            if len(raw) > _MAX_ANSWER_BYTES:
                                break
            except asyncio.CancelledError:
                raise
            except TimeoutError as exc:
                raise GenerationError(FailureKind.NETWORK, "fal did not answer in time.") from exc
            except (aiohttp.ClientError, OSError) as exc:
                raise GenerationError(
                    FailureKind.NETWORK, f"Could not reach fal ({type(exc).__name__})."
                ) from exc
        body: Any = None
        if len(raw) <= _MAX_ANSWER_BYTES:
            with contextlib.suppress(ValueError):
                body = json.loads(raw)
        return code, body, answer_headers

    async def status(self, endpoint: str, request_id: str) -> Status:
        url = self._handle(None, endpoint, request_id).status_url
        code, body, headers = await self._queue_get(url, logs="0")
        if code >= 400:
            raise classify_http(code, body, headers)
        said = body.get("status") if isinstance(body, dict) else None
        if said == "IN_QUEUE":
            position = body.get("queue_position")
            return Status("queued", position=position if isinstance(position, int) else None)
        if said == "IN_PROGRESS":
            return Status("running")
        if said != "COMPLETED":
            raise GenerationError(
                FailureKind.SERVER, "fal sent a status the bot could not read.", status=code
            )
        error, error_type = body.get("error"), body.get("error_type")
        if not error and not error_type:
            return Status("completed")
        return Status("completed", error=await self._completed_error(endpoint, request_id, error, error_type))

    async def _completed_error(
        self, endpoint: str, request_id: str, error: object, error_type: object
    ) -> GenerationError:
        """A completed-with-error job: read the structured error (422 detail with `loc`) from ONE result GET."""
        known = isinstance(error_type, str) and (
            error_type in _KNOWN_COMPLETED_TYPES or error_type.startswith("runner_")
        )
        if not known:
            try:
                url = self._handle(None, endpoint, request_id).response_url
                code, body, headers = await self._queue_get(url)
                if code >= 400:
                    found = classify_http(code, body, headers)
                    if not found.retryable:
                        return found
            except GenerationError as exc:
                log.info("could not read the error of %s (%s); using its status", request_id, exc.kind)
        return classify_completed(error, error_type)

    async def result(self, endpoint: str, request_id: str) -> dict[str, Any]:
        url = self._handle(None, endpoint, request_id).response_url
        code, body, headers = await self._queue_get(url)
        if code >= 400:
            raise classify_http(code, body, headers)
        if not isinstance(body, dict):
            # A page from a proxy in front of fal, or a cut-off answer, says nothing about the output: ask again, as
            # for a status (fal keeps a result about an hour; the job's deadline bounds the asking). A readable
            # result without the promised output is the model's business (`ModelSpec.outputs`: BAD_OUTPUT).
            raise GenerationError(
                FailureKind.SERVER, "fal's answer for the result could not be read.", status=code
            )
        return body

    async def cancel(self, endpoint: str, request_id: str) -> CancelOutcome:
        import fal_client
        from fal_client.client import QUEUE_POLL_TIMEOUT, _async_maybe_retry_request

        try:
            http = await self._http()
            handle = self._handle(http, endpoint, request_id)
            async with self._sem:
                response = await asyncio.wait_for(
                    _async_maybe_retry_request(http, "PUT", handle.cancel_url, timeout=QUEUE_POLL_TIMEOUT),
                    self.call_timeout_s,
                )
            answer = _json_or_none(response)
            status_code = response.status_code
        except fal_client.FalClientHTTPError as exc:
            answer = _json_or_none(exc.response)
            status_code = exc.status_code
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("cancel of %s unconfirmed (%s)", request_id, type(exc).__name__)
            return CancelOutcome.UNCONFIRMED
        said = answer.get("status") if isinstance(answer, dict) else None
        if said == "CANCELLATION_REQUESTED" and status_code < 300:
            return CancelOutcome.CANCELLED
        if said == "ALREADY_COMPLETED":
            # A repeated PUT (fal_client re-sends after a reset) hears ALREADY_COMPLETED for a job the first PUT
            # cancelled: ask the status once, it says client_cancelled then.
            try:
                st = await self.status(endpoint, request_id)
            except GenerationError:
                return CancelOutcome.ALREADY_DONE
            if st.error is not None and st.error.kind is FailureKind.CANCELLED:
                return CancelOutcome.CANCELLED
            return CancelOutcome.ALREADY_DONE
        if said == "NOT_FOUND" or status_code == 404:
            return CancelOutcome.NOT_FOUND
        log.info("cancel of %s unconfirmed (HTTP %s, %s)", request_id, status_code, said)
        return CancelOutcome.UNCONFIRMED

    async def download(self, url: str, dest: Path, *, max_bytes: int = MAX_CLIP_BYTES) -> int:
        return await stream_download(
            self._session, url, dest, max_bytes=max_bytes, read_timeout_s=self.download_read_timeout_s
        )

    async def close(self) -> None:
        client = self._client.__dict__.get("_client")
        if client is not None:
            with contextlib.suppress(Exception):
                await (await self._client._client).aclose()


def _has_backup(url: str) -> bool:
    import fal_client.client as fc

    host = yarl.URL(url).host
    return host in fc._BACKUP_DOMAINS or host in fc._BACKUP_DOMAINS.values()


def _backup_url(url: str) -> str | None:
    """The same URL on fal's backup domain (fal_client's table), or None when its domain has none."""
    import fal_client.client as fc

    parsed = yarl.URL(url, encoded=True)
    host = fc._BACKUP_DOMAINS.get(parsed.host or "")
    return str(parsed.with_host(host)) if host else None


def _not_sent(exc: BaseException) -> GenerationError:
    return GenerationError(
        FailureKind.NETWORK, f"Could not reach fal ({type(exc).__name__}); nothing was sent."
    )


def _unanswered(endpoint: str, exc: BaseException) -> GenerationError:
    log.warning("submit to %s sent but not answered (%s): not resending", endpoint, type(exc).__name__)
    return GenerationError(
        FailureKind.UNKNOWN_OUTCOME,
        "fal did not answer the submit; it may have started the job, so it is not sent again.",
    )


def _json_or_none(response: Any) -> Any:
    try:
        return response.json()
    except Exception:
        return None


async def stream_download(
    session: aiohttp.ClientSession,
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    read_timeout_s: float = 60.0,
) -> int:
    """Stream `url` to `dest` (via a `.part` file) with a hard size cap; every failure is a GenerationError.

    404/410 -> GONE; 401/403 -> GONE (a signed URL that no longer works); 408/429 -> RATE_LIMITED; 5xx -> SERVER;
    reset, truncated body, timeout -> NETWORK; over `max_bytes`, empty, or any other status -> BAD_OUTPUT.
    The partial file is always deleted.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    size = 0
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=read_timeout_s)
    try:
        async with session.get(url, timeout=timeout) as resp:
            if resp.status != 200:
                raise _download_status_error(resp.status)
            if resp.content_length is not None and resp.content_length > max_bytes:
                raise GenerationError(FailureKind.BAD_OUTPUT, "fal's output file is larger than expected.")
            with tmp.open("wb") as fh:
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise GenerationError(
                            FailureKind.BAD_OUTPUT, "fal's output file is larger than expected."
                        )
                    fh.write(chunk)
        if size == 0:
            raise GenerationError(FailureKind.BAD_OUTPUT, "fal's output file is empty.")
        os.replace(tmp, dest)
        return size
    except GenerationError:
        raise
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        if isinstance(exc, aiohttp.InvalidURL | aiohttp.ClientConnectorCertificateError):
            raise GenerationError(FailureKind.BAD_OUTPUT, "fal's output address cannot be fetched.") from exc
        raise GenerationError(
            FailureKind.NETWORK, f"The download of fal's output broke off ({type(exc).__name__})."
        ) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _download_status_error(status: int) -> GenerationError:
    if status in (401, 403, 404, 410):
        return GenerationError(FailureKind.GONE, "fal no longer holds the output file.", status=status)
    if status in (408, 429):
        return GenerationError(
            FailureKind.RATE_LIMITED, "fal's file server asked to slow down.", status=status
        )
    if status >= 500:
        return GenerationError(FailureKind.SERVER, f"fal's file server failed ({status}).", status=status)
    return GenerationError(FailureKind.BAD_OUTPUT, f"fal's file server answered {status}.", status=status)


__all__ = [
    "MAX_CLIP_BYTES",
    "CancelOutcome",
    "FailureKind",
    "FalGateway",
    "Gateway",
    "GenerationError",
    "Status",
    "stream_download",
]
