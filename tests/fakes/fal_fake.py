"""A fake fal.ai (queue + storage) that an unmodified ``fal_client`` 1.0.3 talks to.

Usage::

    fake = FakeFal()
    await fake.start()
    fake.install()          # point fal_client's module globals at the fake
    try:
        client = fal_client.AsyncClient(key="test-key")   # create clients AFTER install()
        fake.script(Outcome.complete(), Outcome.content_policy())
        ...
    finally:
        fake.restore()
        await fake.close()

or ``async with FakeFal() as fake:`` (start + install, then restore + close).

What it speaks (checked against fal_client/client.py 1.0.3):

* queue: ``POST /queue/{endpoint-id}`` (submit), ``GET /queue/{owner}/{alias}/requests/{id}/status?logs=0|1``,
  ``GET /queue/{owner}/{alias}/requests/{id}`` (result), ``PUT /queue/{owner}/{alias}/requests/{id}/cancel``.
  Status/result/cancel URLs must use ``owner/alias`` only (plus a ``workflows/``/``comfy/`` namespace),
  as real fal returns them and as ``AsyncRequestHandle.from_request_id`` rebuilds them; any other app
  path is a 404.
  Every queue request needs ``Authorization: Key <anything>`` (or exactly ``Key {valid_key}`` if set).
* storage: ``POST /rest/storage/auth/token?storage_type=fal-cdn-v3`` (Key auth) -> a Bearer token
  whose ``base_url`` is ``{base_url}/cdn``; ``POST /cdn/files/upload`` (single part, Bearer auth)
  -> ``{access_url}``;
  the multipart path fal_client uses above ``MULTIPART_THRESHOLD`` (100 MiB in 1.0.3; monkeypatch
  ``fal_client.client.MULTIPART_THRESHOLD``/``MULTIPART_CHUNK_SIZE`` to exercise it with small data):
  ``POST /cdn/files/upload/multipart`` -> ``{access_url, uploadId}``,
  ``PUT {access_url}/multipart/{uploadId}/{n}`` (returns an ``ETag``),
  ``POST {access_url}/multipart/{uploadId}/complete`` ``{"parts": [...]}``; and the legacy
  fallback fal_client silently switches to when the v3 upload fails
  (``POST /rest/storage/upload/initiate?storage_type=gcs`` + ``PUT upload_url``).
* ``GET`` on any access_url / output video url returns the bytes (``Range: bytes=a-b`` supported, HEAD too).

The fake never raises into aiohttp: any handler exception becomes a 400 JSON ``{"detail": ...}`` and is
appended to ``fake.errors`` (assert it is empty if you want to be strict).

Inputs (``validate_inputs``, on by default) are checked as fal would: against the published schemas
(tests/fakes/fal_schema.py: types, enums, ranges, Kling v3's ``multi_prompt`` items ``{prompt, duration "1".."15"}``,
and "either ``prompt`` or ``multi_prompt``, not both"), a refusal being a 422 at submit; every file URL fal downloads
(``start_image_url``, ``end_image_url``, elements' images...) is fetched from the fake's storage, a missing one being a
422 at submit; an image outside its ``x-fal`` limits (start AND end image: 300 px a side, ratio 0.4-2.5, 10 MiB) fails
the job (COMPLETED with an error, the result a 422). Kling's own rules for multi-shot calls, which fal's schema does
not state (1-6 shots, 512 characters a shot, the shots adding up to ``duration``, no end image), are not refused
(nobody knows what fal answers) but each break is recorded in ``fake.kling_rule_breaks`` as (request id, rule).

Kling v3 ``elements`` (fal_schema.model_rules, from the words of fal's schema): an element with a frontal image needs
1-3 ``reference_image_urls`` and only one element may carry a ``video_url``, else a 422 at submit. An element's
``voice_id`` that this fake never issued is a 422 at submit too (loc ``["body", "elements", i, "voice_id"]``, msg
"Voice not found"): the fake's stand-in for fal refusing an unknown voice, whose real answer is not published.

Voices (``fal-ai/kling-video/create-voice``): ``voice_url`` is required and downloaded like an image; the file is
probed with PyAV as fal's page states its limits (mp3/wav/mp4/mov, 5-30 s): a file with no readable audio stream, or
whose sound lasts outside 5-30 s (0.1 s of slack for encoder padding), fails the job the way a start image outside
its ``x-fal`` limits does (COMPLETED with an error, the result a 422 on ``voice_url``; types ``audio_load_error`` and
``audio_duration_error`` are the fake's own names). A voice job returns ``{"voice_id": ...}``; every id handed out by
a result GET is kept in ``fake.voice_ids`` (add to it to accept an id made elsewhere). ``fake.submissions_to(part)``
lists the submissions whose endpoint contains ``part``.

The clip a video take returns (unless its Outcome brings its own ``video``): ``small_mp4()`` (2 s, 320x240) for a
one-prompt take, or, with ``fake.real_durations = True``, a clip of its ``duration``; for a ``multi_prompt`` take,
always one clip of the shots' total length whose picture changes at every shot boundary
(``media_samples.storyboard_mp4``: each frame carries its shot number and frame number, ``read_index`` reads them),
at the start image's shape (long side 320) and with sound unless ``generate_audio`` is false.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import io
import json
import logging
import mimetypes
import re
import secrets
import socket
import struct
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from . import fal_schema
from .media_samples import small_mp4, storyboard_mp4

logger = logging.getLogger(__name__)

__all__ = ["FAULT_KINDS", "Fault", "FakeFal", "Outcome", "Submission", "Upload"]

_APP_NAMESPACES = ("workflows", "comfy")
_NO_USER = {"detail": "No user found for Key ID and Secret"}
_REQUEST_PATH_RE = re.compile(r"^(?P<app>.+)/requests/(?P<rid>[^/]+)(?P<suffix>/status|/cancel)?/?$")
_MULTIPART_RE = re.compile(r"^(?P<file>.+)/multipart/(?P<upload_id>[^/]+)/(?P<part>\d+|complete)$")
_SAFE_NAME_RE = re.compile(r"[^A-Za-z0-9._-]+")

DEFAULT_VALIDATION_DETAIL: list[dict[str, Any]] = [
    {
        "loc": ["body", "prompt"],
        "msg": "Value error, prompt must not be empty",
        "type": "value_error",
        "input": "",
        "ctx": {"error": "prompt must not be empty"},
        "url": "https://docs.fal.ai/errors#value_error",
    }
]
CONTENT_POLICY_MSG = (
    "The content could not be processed because it contained material flagged by a content checker."
)


# --------------------------------------------------------------------------------------------- outcomes


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the fake does with one submitted request. Build with the classmethods.

    ``fail_at`` is ``None`` (success), ``"submit"`` (the submit POST returns the error) or ``"result"``
    (status reaches COMPLETED, then the result GET returns the error).
    """

    kind: str
    queued_polls: int = 1
    progress_polls: int = 1
    video: bytes | None = None
    output: dict[str, Any] | None = None
    fail_at: str | None = None
    http_status: int = 200
    body: Any = None
    error_type_header: str | None = None
    status_error: str | None = None
    status_error_type: str | None = None
    status_gone: bool = False
    held: bool = False
    then: Outcome | None = None

    # ---- builders (names/signatures are the lead's contract) ----
    @classmethod
    def complete(
        cls,
        *,
        queued_polls: int = 1,
        progress_polls: int = 1,
        video: bytes | None = None,
        output: dict[str, Any] | None = None,
    ) -> Outcome:
        """Succeeds. Result JSON is ``{"video": {url, content_type, file_name, file_size}}`` with the url
        served by the fake CDN (``video`` defaults to ``small_mp4()``). ``output`` (extension) replaces
        the whole result JSON, e.g. for image endpoints."""
        _check_polls(queued_polls, progress_polls)
        return cls("complete", queued_polls, progress_polls, video=video, output=output)

    @classmethod
    def validation_error(cls, detail: list | None = None, *, at: str = "submit") -> Outcome:
        """422 ``{"detail": [{loc, msg, type: "value_error", ...}]}`` at submit (``at="result"``, an
        extension, makes it a runner-side validation error returned by the result GET)."""
        _check_at(at)
        body = {"detail": detail if detail is not None else DEFAULT_VALIDATION_DETAIL}
        return cls("validation_error", fail_at=at, http_status=422, body=body)

    @classmethod
    def content_policy(cls, *, at: str = "result") -> Outcome:
        _check_at(at)
        body = {
            "detail": [
                {
                    "loc": ["body", "prompt"],
                    "msg": CONTENT_POLICY_MSG,
                    "type": "content_policy_violation",
                    "url": "https://docs.fal.ai/errors#content_policy_violation",
                    "ctx": {},
                    "input": None,
                }
            ]
        }
        return cls("content_policy", fail_at=at, http_status=422, body=body)

    @classmethod
    def server_error(
        cls, *, status: int = 500, at: str = "result", error_type: str = "runner_server_error"
    ) -> Outcome:
        """``{"detail": "...", "error_type": ...}`` with ``X-Fal-Error-Type``. NB fal_client retries
        408/409/429 up to 10 times with backoff (~30 s): see the module notes / report."""
        _check_at(at)
        if not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error code")
        body = {"detail": "Internal server error while running the model", "error_type": error_type}
        return cls("server_error", fail_at=at, http_status=status, body=body, error_type_header=error_type)

    @classmethod
    def hold(cls, *, then: Outcome | None = None) -> Outcome:
        """Like ``then`` (default ``complete()``) but never leaves IN_PROGRESS until ``release()``.
        If ``then`` fails at submit, the submit POST itself blocks until released."""
        inner = then if then is not None else cls.complete()
        while inner.held:  # hold(hold(x)) == hold(x)
            inner = inner.then or cls.complete()
        return dataclasses.replace(inner, kind="hold", held=True, then=inner)

    @classmethod
    def result_gone(cls, *, status_gone: bool = False) -> Outcome:
        """Status COMPLETED, result GET 404 ``{"detail": "Request not found"}`` (dropped after retention).
        ``status_gone=True`` (extension): the status GET is a 404 too."""
        return cls(
            "result_gone",
            fail_at="result",
            http_status=404,
            body={"detail": "Request not found"},
            status_gone=status_gone,
        )

    @classmethod
    def completed_with_error(
        cls,
        error: str = "Internal error while running the model",
        error_type: str = "runner_server_error",
    ) -> Outcome:
        return cls(
            "completed_with_error",
            fail_at="result",
            http_status=500,
            body={"detail": error, "error_type": error_type},
            error_type_header=error_type,
            status_error=error,
            status_error_type=error_type,
        )

    @classmethod
    def timeout(cls) -> Outcome:
        return cls(
            "timeout",
            fail_at="result",
            http_status=504,
            body={"detail": "Request timed out", "error_type": "request_timeout"},
            error_type_header="request_timeout",
            status_error="Request timed out",
            status_error_type="request_timeout",
        )

    @property
    def effective(self) -> Outcome:
        return self.then if (self.held and self.then is not None) else self


def _check_at(at: str) -> None:
    if at not in ("submit", "result"):
        raise ValueError(f"at must be 'submit' or 'result', not {at!r}")


def _check_polls(queued: int, progress: int) -> None:
    if queued < 0 or progress < 0:
        raise ValueError("poll counts must be >= 0")


# ------------------------------------------------------------------------------------------ records


class _CIDict(dict):
    """dict of request headers with case-insensitive lookups (keys stored lower-case)."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__((str(k).lower(), v) for k, v in dict(items).items())

    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


@dataclasses.dataclass
class Submission:
    request_id: str
    endpoint: str  # full endpoint id as posted, e.g. "fal-ai/kling-video/v3/pro/image-to-video"
    arguments: dict[str, Any]
    headers: dict[str, str]
    outcome: Outcome  # as scripted (a hold wrapper stays visible here)
    state: str = "IN_QUEUE"  # IN_QUEUE | IN_PROGRESS | COMPLETED | CANCELLED | REJECTED (submit failed)
    status_polls: int = 0
    result_fetches: int = 0
    cancelled: bool = False
    held: bool = False
    webhook_url: str | None = None
    output_url: str | None = None
    output: dict[str, Any] | None = None  # the result JSON for image / voice endpoints
    image_problem: list[dict[str, Any]] | None = (
        None  # an input file fal cannot use (x-fal limits, a voice sample): the job fails with this 422 detail
    )
    # (extension, for bench/scale.py) time.monotonic() stamps; CLOCK_MONOTONIC is system-wide, so they compare
    # with stamps taken in other processes on the same machine.
    submitted_at: float = dataclasses.field(default_factory=time.monotonic)
    released_at: float | None = None  # release() let it finish: fal says COMPLETED from then on
    completed_at: float | None = None  # the first status answer that said COMPLETED
    result_fetched_at: float | None = None  # the first result GET answered
    status_times: list[float] = dataclasses.field(default_factory=list, repr=False)  # every status GET
    _queued_served: int = 0
    _progress_served: int = 0
    _release: asyncio.Event = dataclasses.field(default_factory=asyncio.Event, repr=False)

    @property
    def app_path(self) -> str:
        """The owner/alias (with namespace) fal uses in status/result/cancel URLs."""
        parts = self.endpoint.split("/")
        n = 3 if parts[0] in _APP_NAMESPACES else 2
        return "/".join(parts[:n])


@dataclasses.dataclass
class Upload:
    url: str  # access_url returned to the client
    data: bytes
    content_type: str
    file_name: str | None
    repository: str = "fal_v3"  # "fal_v3" | "fal_v3_multipart" | "fal" (legacy fallback path)
    expired: bool = False


@dataclasses.dataclass
class _Multipart:
    access_url: str
    content_type: str
    file_name: str | None
    parts: dict[int, tuple[str, bytes]] = dataclasses.field(default_factory=dict)


class _ConnectionReset(Exception):
    """Raised after a connection was aborted on purpose (the middleware lets it through quietly)."""


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(data), status=status, content_type="application/json", headers=headers
    )


# ------------------------------------------------------------------------------------------- faults

FAULT_KINDS = ("submit", "status", "result", "cancel", "download", "upload")
DOWNLOAD_MODES = ("html", "truncated", "cut", "endless", "oversized")


@dataclasses.dataclass
class Fault:
    """One misbehaviour armed for the next ``remaining`` requests of one kind (see FakeFal's fault methods)."""

    kind: str
    remaining: int
    status: int | None = None  # answer with this HTTP status ...
    body: Any = None  # ... and this JSON body
    headers: dict[str, str] | None = None
    delay_s: float = 0.0  # answer (normally, or with the status above) after this long
    reset: str | None = None  # "before" (nothing happens) | "after" (submit: the job IS created) the reset
    mode: str | None = None  # download: one of DOWNLOAD_MODES


# ------------------------------------------------------------------------------------------- server


class FakeFal:
    def __init__(self) -> None:
        self.base_url: str = ""
        self.default: Outcome = Outcome.complete()
        self.valid_key: str | None = None  # None: any "Key <x>" is accepted
        self.submissions: list[Submission] = []
        self.uploads: list[Upload] = []
        self.auth_headers_seen: list[str] = []
        self.requests: list[tuple[str, str]] = []
        # (extension) every request as (time.monotonic(), kind): see request_kind(); counts per kind.
        self.request_log: list[tuple[float, str]] = []
        self.request_counts: collections.Counter[str] = collections.Counter()
        self.errors: list[str] = []  # internal handler failures (turned into 400s)
        self._script: list[Outcome] = []
        self._by_id: dict[str, Submission] = {}
        self._files: dict[str, Upload] = {}  # access_url -> upload
        self._outputs: dict[str, tuple[bytes, str]] = {}  # output url -> (bytes, content type)
        self._tokens: set[str] = set()
        self._multiparts: dict[str, _Multipart] = {}
        self._gcs_pending: dict[str, tuple[str, str | None, str]] = {}
        self._runner: web.AppRunner | None = None
        self._saved: dict[str, Any] | None = None
        # Input checks (see module notes): published schemas from ../shared/specs/fal, x-fal image limits, and
        # image URLs fetched from the fake's own storage (foreign URLs cannot be fetched unless allowed).
        self.validate_inputs = True
        self.foreign_images_ok = False
        self.unknown_arguments: list[tuple[str, str]] = []  # (endpoint, field) ignored as pydantic does
        self.real_durations = False  # (extension) one-prompt takes' clips last their `duration`: module notes
        self.kling_rule_breaks: list[tuple[str, str]] = []  # (request id, rule): see the module notes
        self.voice_ids: set[str] = set()  # ids create-voice results handed out: see the module notes
        self._faults: list[Fault] = []

    # ---- lifecycle ----
    async def start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application(middlewares=[self._middleware], client_max_size=1024**3)
        r = app.router
        r.add_route("*", "/queue/{tail:.*}", self._queue)
        r.add_post("/rest/storage/auth/token", self._cdn_token)
        r.add_post("/rest/storage/upload/initiate", self._gcs_initiate)
        r.add_put("/gcs-upload/{key}", self._gcs_put)
        r.add_post("/cdn/files/upload", self._cdn_upload)
        r.add_post("/cdn/files/upload/multipart", self._multipart_create)
        r.add_get("/cdn/files/{tail:.*}", self._cdn_get)
        r.add_put("/cdn/files/{tail:.*}", self._multipart_part)
        r.add_post("/cdn/files/{tail:.*}", self._multipart_complete)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        for sub in self.submissions:  # unblock held submit POSTs so shutdown does not hang
            sub._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def settle(self, quiet_s: float = 0.1, timeout: float = 10.0) -> None:
        """Return once no client connection has been open for `quiet_s`: every request a client sent before it went
        away has then been handled (aiohttp drops a connection only after its handler ends). For a test that kills
        a client process while its own event loop waits for the death: what the process had sent is read only when
        the loop runs again, so count submissions after this, not right after the kill."""
        assert self._runner is not None and self._runner.server is not None
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            if self._runner.server.connections:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_s:
                return
        raise TimeoutError(f"fal clients still connected after {timeout} s")

    async def __aenter__(self) -> FakeFal:
        await self.start()
        self.install()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.restore()
        await self.close()

    @property
    def queue_url(self) -> str:
        return self.base_url + "/queue/"

    @property
    def rest_url(self) -> str:
        return self.base_url + "/rest"

    @property
    def cdn_url(self) -> str:
        return self.base_url + "/cdn"

    def install(self) -> None:
        """Point fal_client at the fake.

        QUEUE_URL_FORMAT / REST_URL / CDN_URL / RUN_URL_FORMAT are module globals read at call time, BUT
        an AsyncClient builds its AsyncCDNTokenManager (which copies REST_URL into ``self._url``) and
        caches its token on the first upload: a client that has already uploaded keeps talking to the
        old REST_URL. Create clients after install(). The module-level default clients
        (``fal_client.async_client`` behind ``fal_client.submit_async`` etc., and ``sync_client``) have
        their cached auth/httpx client/token manager dropped here and in restore() so they rebuild.
        """
        if not self.base_url:
            raise RuntimeError("call start() before install()")
        import fal_client.client as fc

        if self._saved is None:
            self._saved = {
                name: getattr(fc, name)
                for name in ("QUEUE_URL_FORMAT", "REST_URL", "CDN_URL", "RUN_URL_FORMAT")
            }
        fc.QUEUE_URL_FORMAT = self.queue_url
        fc.REST_URL = self.rest_url
        fc.CDN_URL = self.cdn_url
        fc.RUN_URL_FORMAT = self.base_url + "/run/"  # run()/stream() are not faked: 404, never the internet
        _reset_default_clients()

    def restore(self) -> None:
        if self._saved is None:
            return
        import fal_client.client as fc

        for name, value in self._saved.items():
            setattr(fc, name, value)
        self._saved = None
        _reset_default_clients()

    # ---- scripting / inspection ----
    def script(self, *outcomes: Outcome) -> None:
        """Append outcomes; each submit consumes one, in order; then ``default`` is used."""
        self._script.extend(outcomes)

    def submission(self, request_id: str) -> Submission:
        return self._by_id[request_id]

    def submissions_to(self, endpoint_part: str) -> list[Submission]:
        """Submissions (refused ones too) whose endpoint id contains ``endpoint_part``, in the order they came."""
        return [sub for sub in self.submissions if endpoint_part in sub.endpoint]

    def release(self, request_id: str | None = None) -> None:
        """Let held submissions proceed (``None``: all currently held). KeyError for an unknown id."""
        subs = [self._by_id[request_id]] if request_id is not None else list(self.submissions)
        now = time.monotonic()
        for sub in subs:
            if sub.held:
                sub.released_at = now
            sub.held = False
            sub._release.set()

    def fetch_upload(self, url: str) -> bytes:
        """Bytes behind an access_url the fake returned (still works after expire_uploads())."""
        return self._files[url].data

    def expire_uploads(self) -> None:
        """Every access_url returned so far now 404s on GET (later uploads are fine)."""
        for up in self.uploads:
            up.expired = True

    def expire_outputs(self) -> None:
        """(extension) Every output video url served so far now 404s on GET."""
        self._outputs.clear()

    @property
    def pending_script(self) -> list[Outcome]:
        return list(self._script)

    # ---- faults on cue (each applies to the next ``n`` requests of its kind; self-tested in test_fake_fal) ----
    def fail_next(
        self,
        kind: str,
        n: int = 1,
        *,
        status: int = 503,
        body: Any = None,
        error_type: str | None = None,
        ingress: bool = False,
    ) -> None:
        """The next ``n`` ``kind`` requests (FAULT_KINDS) answer ``status`` and do nothing else (a failed
        submit creates no job). The body is fal's ``{"detail", "error_type"}`` unless given; the answer
        carries ``x-fal-request-id`` (fal_client retries only 408/409/429 then) unless ``ingress=True``,
        which answers like an nginx ingress (no request id, "nginx" in the body: fal_client retries 502-504)."""
        self._check_kind(kind)
        if body is None:
            body = (
                {"detail": f"fake fal: injected {status}", "error_type": error_type} if not ingress else None
            )
        headers = {} if ingress else {"x-fal-request-id": "injected-" + uuid.uuid4().hex[:8]}
        if error_type:
            headers["X-Fal-Error-Type"] = error_type
        self._faults.append(Fault(kind, n, status=status, body=body, headers=headers))

    def slow_next(self, kind: str, seconds: float, n: int = 1) -> None:
        """The next ``n`` ``kind`` requests are answered (normally) after ``seconds``. A slow submit creates
        its job first, so a client that gives up still leaves a job at fal."""
        self._check_kind(kind)
        self._faults.append(Fault(kind, n, delay_s=seconds))

    def reset_next(self, kind: str, n: int = 1, *, after: bool = True) -> None:
        """The next ``n`` ``kind`` requests get their connection reset (RST) instead of an answer.
        ``after=True``: the request took effect first (a submit's job IS created, a cancel IS done);
        ``after=False``: the reset comes before anything happened."""
        self._check_kind(kind)
        self._faults.append(Fault(kind, n, reset="after" if after else "before"))

    def reset_after_submit(self, n: int = 1) -> None:
        """Shorthand: the next ``n`` submits create their job, then reset the connection."""
        self.reset_next("submit", n, after=True)

    def reset_before_submit(self, n: int = 1) -> None:
        """Shorthand: the next ``n`` submits reset the connection without creating a job."""
        self.reset_next("submit", n, after=False)

    def fail_result_once(self, status: int = 500) -> None:
        """The next result GET fails with ``status``; the one after succeeds."""
        self.fail_next("result", 1, status=status, error_type=None)

    def refuse_next_cancel(self, answer: str | int = "ALREADY_COMPLETED") -> None:
        """The next cancel is not done: ``"ALREADY_COMPLETED"`` (400, the job carries on and completes),
        ``"NOT_FOUND"`` (404) or an HTTP status such as 500."""
        if answer == "ALREADY_COMPLETED":
            self._faults.append(Fault("cancel", 1, status=400, body={"status": "ALREADY_COMPLETED"}))
        elif answer == "NOT_FOUND":
            self._faults.append(Fault("cancel", 1, status=404, body={"status": "NOT_FOUND"}))
        else:
            self.fail_next("cancel", 1, status=int(answer))

    def break_downloads(self, mode: str, n: int = 1) -> None:
        """The next ``n`` GETs of output files serve something that is not the promised file:
        ``html`` (200 text/html error page), ``truncated`` (the first half of the file, a complete HTTP
        answer), ``cut`` (full Content-Length declared, half sent, connection closed), ``endless`` (chunked,
        never ends), ``oversized`` (declares 3 GiB, streams until the client stops)."""
        if mode not in DOWNLOAD_MODES:
            raise ValueError(f"mode must be one of {DOWNLOAD_MODES}")
        self._faults.append(Fault("download", n, mode=mode))

    def expire_upload(self, url: str) -> None:
        """One uploaded file now 404s (a submit that uses it fails with a 422 on that image field)."""
        self._files[url].expired = True

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def pending_faults(self) -> list[Fault]:
        return [f for f in self._faults if f.remaining > 0]

    def runs_per_arguments(self) -> collections.Counter[str]:
        """How many jobs fal created (not refused) per distinct (endpoint, arguments), as canonical JSON."""
        return collections.Counter(
            json.dumps([sub.endpoint, sub.arguments], sort_keys=True)
            for sub in self.submissions
            if sub.state != "REJECTED"
        )

    def duplicate_runs(self) -> list[str]:
        """Argument sets fal ran more than once (assert this is empty: fal never ran a take twice)."""
        return [key for key, count in self.runs_per_arguments().items() if count > 1]

    @staticmethod
    def request_kind(method: str, path: str) -> str:
        """(extension) What a request is: submit, status, result, cancel, token, upload, download or other."""
        if path.startswith("/queue/"):
            m = _REQUEST_PATH_RE.match(path[len("/queue/") :])
            if m is None:
                return "submit" if method == "POST" else "other"
            return {"/status": "status", "/cancel": "cancel", None: "result"}[m["suffix"]]
        if path.startswith("/rest/storage/auth/token"):
            return "token"
        if path.startswith(("/cdn/files/upload", "/rest/storage/upload", "/gcs-upload/")) or method in (
            "PUT",
            "POST",
        ):
            return "upload"
        if path.startswith("/cdn/files/"):
            return "download"
        return "other"

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}")

    def _take_fault(self, kind: str) -> Fault | None:
        for fault in self._faults:
            if fault.kind == kind and fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    @staticmethod
    def _reset(request: web.Request) -> web.Response:
        """Abort the connection with an RST; the client sees a reset / server disconnect, no answer."""
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            transport.abort()
        raise _ConnectionReset

    async def _apply_fault(self, request: web.Request, fault: Fault | None) -> web.StreamResponse | None:
        """Before the request takes effect: a delay, a reset-before, or an injected answer."""
        if fault is None:
            return None
        if fault.delay_s and fault.status is None:
            await asyncio.sleep(fault.delay_s)
            return None
        if fault.reset == "before":
            return self._reset(request)
        if fault.status is not None:
            if fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            if fault.body is None:
                return web.Response(
                    text="<html><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center>"
                    "</body></html>",
                    status=fault.status,
                    content_type="text/html",
                    headers=fault.headers,
                )
            return _json(fault.body, status=fault.status, headers=fault.headers)
        return None

    # ---- plumbing ----
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        kind = self.request_kind(request.method, request.path)
        self.request_log.append((time.monotonic(), kind))
        self.request_counts[kind] += 1
        try:
            return await handler(request)
        except _ConnectionReset:
            raise asyncio.CancelledError from None  # the transport is gone; nothing to answer
        except web.HTTPException as exc:  # unknown route, 405, 413 ...
            return _json({"detail": exc.reason or "error"}, status=exc.status)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("fake fal handler failed")
            self.errors.append(f"{request.method} {request.path}: {exc!r}")
            return _json({"detail": f"fake fal could not handle the request: {exc!r}"}, status=400)

    def _key_auth_ok(self, request: web.Request) -> bool:
        value = request.headers.get("Authorization", "")
        self.auth_headers_seen.append(value)
        scheme, _, secret = value.partition(" ")
        if scheme != "Key" or not secret.strip():
            return False
        return self.valid_key is None or secret == self.valid_key

    def _bearer_ok(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme == "Bearer" and token in self._tokens

    def _next_outcome(self) -> Outcome:
        return self._script.pop(0) if self._script else self.default

    def _queue_urls(self, sub: Submission) -> dict[str, str]:
        base = f"{self.queue_url}{sub.app_path}/requests/{sub.request_id}"
        return {"response_url": base, "status_url": base + "/status", "cancel_url": base + "/cancel"}

    @staticmethod
    def _error(outcome: Outcome, request_id: str) -> web.Response:
        headers = {"x-fal-request-id": request_id}
        if outcome.error_type_header:
            headers["X-Fal-Error-Type"] = outcome.error_type_header
        return _json(outcome.body, status=outcome.http_status, headers=headers)

    # ---- queue ----
    async def _queue(self, request: web.Request) -> web.StreamResponse:
        if not self._key_auth_ok(request):
            return _json(_NO_USER, status=401)
        tail = request.match_info["tail"]
        m = _REQUEST_PATH_RE.match(tail)
        if request.method == "POST" and m is None:
            return await self._submit(request, tail.strip("/"))
        if m is None:
            return _json({"detail": "Not found"}, status=404)
        sub = self._by_id.get(m["rid"])
        if sub is None or sub.state == "REJECTED" or m["app"] != sub.app_path:
            if m["suffix"] == "/cancel":
                return _json({"status": "NOT_FOUND"}, status=404)
            return _json({"detail": "Request not found"}, status=404)
        headers = {"x-fal-request-id": sub.request_id}
        kind = {"/status": "status", "/cancel": "cancel", None: "result"}[m["suffix"]]
        fault = self._take_fault(kind)
        injected = await self._apply_fault(request, fault)
        if injected is not None:
            return injected
        if m["suffix"] == "/status" and request.method == "GET":
            answer = self._status(request, sub, headers)
        elif m["suffix"] == "/cancel" and request.method == "PUT":
            answer = self._cancel(sub, headers)
        elif m["suffix"] is None and request.method == "GET":
            answer = self._result(sub, headers)
        else:
            return _json({"detail": "Method not allowed"}, status=405)
        if fault is not None and fault.reset == "after":
            return self._reset(request)
        return answer

    async def _submit(self, request: web.Request, endpoint: str) -> web.StreamResponse:
        if not endpoint:
            return _json({"detail": "Not found"}, status=404)
        fault = self._take_fault("submit")
        delay_after = fault.delay_s if fault is not None and fault.status is None and not fault.reset else 0.0
        if not delay_after:
            injected = await self._apply_fault(request, fault)
            if injected is not None:
                return injected
        try:
            arguments = await request.json(loads=json.loads)
        except (ValueError, UnicodeDecodeError):
            return _json({"detail": "Request body is not valid JSON"}, status=400)
        if not isinstance(arguments, dict):
            return _json({"detail": "Request body must be a JSON object"}, status=400)

        # A scripted failure at submit wins over the fake's own checks (it is consumed as before).
        scripted_refusal = bool(self._script) and self._script[0].effective.fail_at == "submit"
        detail, image_problem = ([], None) if scripted_refusal else self._check_inputs(endpoint, arguments)
        if not detail and not scripted_refusal and _family(endpoint) == "voice":
            image_problem = await self._voice_file_problem(arguments)
        if detail:  # refused at submit like fal's 422: no job, the script is not consumed
            refused = Outcome.validation_error(detail)
            sub = Submission(
                request_id=str(uuid.uuid4()),
                endpoint=endpoint,
                arguments=arguments,
                headers=_CIDict(request.headers),
                outcome=refused,
                state="REJECTED",
            )
            self.submissions.append(sub)
            self._by_id[sub.request_id] = sub
            return self._error(refused, sub.request_id)

        outcome = self._next_outcome()
        eff = outcome.effective
        request_id = str(uuid.uuid4())
        self.kling_rule_breaks.extend((request_id, rule) for rule in _kling_rule_breaks(arguments))
        sub = Submission(
            request_id=request_id,
            endpoint=endpoint,
            arguments=arguments,
            headers=_CIDict(request.headers),
            outcome=outcome,
            held=outcome.held,
            webhook_url=request.query.get("fal_webhook"),
            image_problem=image_problem,
        )
        self.submissions.append(sub)
        self._by_id[sub.request_id] = sub

        if eff.fail_at == "submit":
            if sub.held:
                await sub._release.wait()
            sub.state = "REJECTED"
            return self._error(eff, sub.request_id)

        if eff.queued_polls > 0:
            sub.state = "IN_QUEUE"
        elif eff.progress_polls > 0 or sub.held:
            sub.state = "IN_PROGRESS"
        else:
            sub.state = "COMPLETED"
        if eff.kind == "complete" and eff.output is None:
            family = _family(endpoint)
            if family == "video":
                video = eff.video
                if video is None:
                    video = await self._clip(arguments)
                sub.output_url = f"{self.cdn_url}/files/output/{sub.request_id}/output.mp4"
                self._outputs[sub.output_url] = (video, "video/mp4")
            else:
                sub.output = self._make_output(family, sub)
        answer = _json(
            {
                "status": "IN_QUEUE",
                "request_id": sub.request_id,
                **self._queue_urls(sub),
                "queue_position": max(eff.queued_polls - 1, 0),
            },
            headers={"x-fal-request-id": sub.request_id},
        )
        if delay_after:
            await asyncio.sleep(delay_after)
        if fault is not None and fault.reset == "after":
            return self._reset(request)
        return answer

    # ---- input checks ----
    def _check_inputs(
        self, endpoint: str, arguments: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
        """(422 detail at submit, x-fal image problem that fails the job later)."""
        if not self.validate_inputs:
            return [], None
        detail: list[dict[str, Any]] = []
        limits: list[fal_schema.ImageCheck] = []
        schema = fal_schema.load_schemas().get(endpoint)
        if schema is not None:
            problems = fal_schema.validate(schema, arguments)
            detail.extend(problems.errors)
            limits = problems.images
            self.unknown_arguments.extend((endpoint, name) for name in problems.unknown)
        else:
            detail.extend(_hand_rules(endpoint, arguments))
        if detail:
            return detail, None
        detail.extend(self._unknown_voices(arguments))
        for loc, url in _file_fields(arguments):
            if self._fetch_for_check(url) is None:
                detail.append(
                    {
                        "loc": ["body", *loc],
                        "msg": "Could not download the file from the given URL",
                        "type": "file_download_error",
                        "input": url,
                    }
                )
        if detail:
            return detail, None
        problem: list[dict[str, Any]] = []
        for check in limits:
            data = self._fetch_for_check(check.url)
            if data:  # b"" = a foreign URL allowed without looking at it
                found = _image_limit_problem(data, check.limits)
                if found is not None:
                    msg, type_ = found
                    problem.append(
                        {"loc": ["body", *check.loc], "msg": msg, "type": type_, "input": check.url}
                    )
        return [], problem or None

    def _unknown_voices(self, arguments: dict[str, Any]) -> list[dict[str, Any]]:
        """A 422 detail item for each element whose ``voice_id`` this fake never issued (module notes)."""
        elements = arguments.get("elements")
        out: list[dict[str, Any]] = []
        for i, element in enumerate(elements if isinstance(elements, list) else []):
            voice_id = element.get("voice_id") if isinstance(element, dict) else None
            if isinstance(voice_id, str) and voice_id not in self.voice_ids:
                loc = ["body", "elements", i, "voice_id"]
                out.append({"loc": loc, "msg": "Voice not found", "type": "value_error", "input": voice_id})
        return out

    async def _voice_file_problem(self, arguments: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The 422 detail a create-voice job fails with when its voice file is unusable (module notes), or None."""
        url = arguments.get("voice_url")
        data = self._fetch_for_check(url) if self.validate_inputs and isinstance(url, str) else None
        if not data:  # not checked, or a foreign URL allowed without looking at it
            return None
        found = await asyncio.to_thread(_voice_problem, data)
        if found is None:
            return None
        msg, type_ = found
        return [{"loc": ["body", "voice_url"], "msg": msg, "type": type_, "input": url}]

    def _fetch_for_check(self, url: str) -> bytes | None:
        """What fal would download from ``url``: the fake's own files; foreign URLs fail unless allowed."""
        if url in self._outputs:
            return self._outputs[url][0]
        up = self._files.get(url)
        if up is not None:
            return None if up.expired else up.data
        if url.startswith(self.base_url):
            return None
        return b"" if self.foreign_images_ok else None

    async def _clip(self, arguments: dict[str, Any]) -> bytes:
        """The clip a successful video take returns (see the module notes); made in a worker thread, cached."""
        shots = _shot_seconds(arguments)
        if shots is None:
            if not self.real_durations:
                return small_mp4()
            shots = (_seconds(arguments.get("duration")),)
        size = self._clip_size(arguments)
        with_audio = arguments.get("generate_audio", True) is not False
        return await asyncio.to_thread(storyboard_mp4, shots, size=size, with_audio=with_audio)

    def _clip_size(self, arguments: dict[str, Any]) -> tuple[int, int]:
        """The start image's shape with a 320 px long side (even sides), or 320x240 without a readable image."""
        from PIL import Image

        url = arguments.get("start_image_url") or arguments.get("image_url")
        data = self._fetch_for_check(url) if isinstance(url, str) else None
        try:
            with Image.open(io.BytesIO(data or b"")) as im:
                w, h = im.size
        except Exception:
            return 320, 240
        ratio = min(2.5, max(0.4, w / h))
        w, h = (320, 320 / ratio) if ratio >= 1 else (320 * ratio, 320)
        return max(16, round(w / 2) * 2), max(16, round(h / 2) * 2)

    def _make_output(self, family: str, sub: Submission) -> dict[str, Any]:
        args = sub.arguments
        if family == "voice":
            return {"voice_id": "fake-voice-" + sub.request_id[:8]}
        count = int(args.get("num_images", 1) or 1) if family == "images" else 1
        source = None
        urls = args.get("image_urls") or []
        if urls:
            source = self._fetch_for_check(str(urls[0])) or None
        size = args.get("image_size")
        images = []
        for n in range(1, count + 1):
            data, w, h = _png(size, source, n)
            url = f"{self.cdn_url}/files/output/{sub.request_id}/image-{n}.png"
            self._outputs[url] = (data, "image/png")
            images.append({"url": url, "width": w, "height": h, "content_type": "image/png"})
        return {"images": images, "seed": int(sub.request_id[:8], 16)}

    def _status(self, request: web.Request, sub: Submission, headers: dict[str, str]) -> web.Response:
        sub.status_polls += 1
        sub.status_times.append(time.monotonic())
        eff = sub.outcome.effective
        if eff.status_gone:
            return _json({"detail": "Request not found"}, status=404, headers=headers)
        with_logs = request.query.get("logs", "0").lower() in ("1", "true")
        urls = self._queue_urls(sub)
        if sub.state == "IN_QUEUE":
            if sub._queued_served < eff.queued_polls:
                position = eff.queued_polls - sub._queued_served - 1
                sub._queued_served += 1
                body = {
                    "status": "IN_QUEUE",
                    "queue_position": position,
                    "response_url": urls["response_url"],
                }
                return _json(body, status=202, headers=headers)
            sub.state = "IN_PROGRESS"
        if sub.state == "IN_PROGRESS":
            if sub._progress_served < eff.progress_polls or sub.held:
                sub._progress_served += 1
                logs = None
                if with_logs:
                    logs = [
                        {
                            "message": f"fake fal: step {sub._progress_served}",
                            "level": "INFO",
                            "source": "user",
                            "timestamp": datetime.now(UTC).isoformat(),
                        }
                    ]
                body = {"status": "IN_PROGRESS", "logs": logs, "response_url": urls["response_url"]}
                return _json(body, status=202, headers=headers)
            sub.state = "COMPLETED"
        if sub.completed_at is None and sub.state == "COMPLETED":
            sub.completed_at = time.monotonic()
        body: dict[str, Any] = {
            "status": "COMPLETED",
            "logs": [] if with_logs else None,
            "metrics": {"inference_time": 1.25},
            "response_url": urls["response_url"],
        }
        if sub.state == "CANCELLED":
            body["error"] = "Request was cancelled by the client"
            body["error_type"] = "client_cancelled"
            body["metrics"] = {}
        elif sub.image_problem is not None:
            body["error"] = "Unprocessable Entity"
        elif eff.status_error_type is not None:
            body["error"] = eff.status_error
            body["error_type"] = eff.status_error_type
        return _json(body, status=200, headers=headers)

    def _result(self, sub: Submission, headers: dict[str, str]) -> web.Response:
        sub.result_fetches += 1
        if sub.result_fetched_at is None and sub.state == "COMPLETED":
            sub.result_fetched_at = time.monotonic()
        if sub.state == "CANCELLED":
            return _json(
                {"detail": "Request was cancelled by the client", "error_type": "client_cancelled"},
                status=400,
                headers={**headers, "X-Fal-Error-Type": "client_cancelled"},
            )
        if sub.state != "COMPLETED":
            return _json({"detail": "Request is still in progress"}, status=400, headers=headers)
        eff = sub.outcome.effective
        if sub.image_problem is not None:
            return _json({"detail": sub.image_problem}, status=422, headers=headers)
        if eff.fail_at == "result":
            return self._error(eff, sub.request_id)
        if eff.output is not None or sub.output is not None:
            output = eff.output if eff.output is not None else sub.output
            voice_id = output.get("voice_id") if _family(sub.endpoint) == "voice" else None
            if isinstance(voice_id, str):
                self.voice_ids.add(voice_id)
            return _json(output, headers=headers)
        assert sub.output_url is not None
        size = len(self._outputs[sub.output_url][0]) if sub.output_url in self._outputs else 0
        video = {
            "url": sub.output_url,
            "content_type": "video/mp4",
            "file_name": "output.mp4",
            "file_size": size,
        }
        return _json({"video": video}, headers=headers)

    def _cancel(self, sub: Submission, headers: dict[str, str]) -> web.Response:
        if sub.state in ("COMPLETED", "CANCELLED") or self._finished_unasked(sub):
            return _json({"status": "ALREADY_COMPLETED"}, status=400, headers=headers)
        sub.state = "CANCELLED"
        sub.cancelled = True
        sub.held = False
        sub._release.set()
        return _json({"status": "CANCELLATION_REQUESTED"}, status=202, headers=headers)

    @staticmethod
    def _finished_unasked(sub: Submission) -> bool:
        """The job has nothing left to run (released, every scripted queue and progress answer served): on fal it
        is finished whether or not a status request has said so yet (this fake moves it on at the next one)."""
        eff = sub.outcome.effective
        return (
            sub.state in ("IN_QUEUE", "IN_PROGRESS")
            and not sub.held
            and eff.kind == "complete"
            and sub._queued_served >= eff.queued_polls
            and sub._progress_served >= eff.progress_polls
        )

    # ---- storage: token + v3 CDN ----
    async def _cdn_token(self, request: web.Request) -> web.Response:
        if not self._key_auth_ok(request):
            return _json(_NO_USER, status=401)
        if request.query.get("storage_type") != "fal-cdn-v3":
            return _json({"detail": "Unsupported storage_type"}, status=400)
        token = secrets.token_urlsafe(24)
        self._tokens.add(token)
        expires = datetime.now(UTC) + timedelta(hours=1)
        return _json(
            {
                "token": token,
                "token_type": "Bearer",
                "base_url": self.cdn_url,
                "expires_at": expires.isoformat(),
            }
        )

    def _new_access_url(self, file_name: str | None, content_type: str) -> str:
        if file_name:
            name = _SAFE_NAME_RE.sub("_", file_name).strip("._") or "upload.bin"
        else:
            name = "upload" + (mimetypes.guess_extension(content_type.split(";")[0].strip()) or ".bin")
        return f"{self.cdn_url}/files/b{len(self.uploads) % 10}/{uuid.uuid4().hex}_{name}"

    def _store(self, url: str, data: bytes, content_type: str, file_name: str | None, repo: str) -> Upload:
        up = Upload(url=url, data=data, content_type=content_type, file_name=file_name, repository=repo)
        self.uploads.append(up)
        self._files[url] = up
        return up

    async def _cdn_upload(self, request: web.Request) -> web.StreamResponse:
        if not self._bearer_ok(request):
            return _json({"detail": "Invalid or missing CDN token"}, status=401)
        injected = await self._apply_fault(request, self._take_fault("upload"))
        if injected is not None:
            return injected
        data = await request.read()
        content_type = request.headers.get("Content-Type", "application/octet-stream")
        file_name = request.headers.get("X-Fal-File-Name")
        url = self._new_access_url(file_name, content_type)
        self._store(url, data, content_type, file_name, "fal_v3")
        return _json({"access_url": url})

    async def _multipart_create(self, request: web.Request) -> web.Response:
        if not self._bearer_ok(request):
            return _json({"detail": "Invalid or missing CDN token"}, status=401)
        content_type = request.headers.get("Content-Type", "application/octet-stream")
        file_name = request.headers.get("X-Fal-File-Name")
        url = self._new_access_url(file_name, content_type)
        upload_id = uuid.uuid4().hex
        self._multiparts[upload_id] = _Multipart(url, content_type, file_name)
        return _json({"access_url": url, "uploadId": upload_id})

    def _multipart_lookup(self, request: web.Request) -> tuple[_Multipart, str] | web.Response:
        if not self._bearer_ok(request):
            return _json({"detail": "Invalid or missing CDN token"}, status=401)
        m = _MULTIPART_RE.match(request.match_info["tail"])
        if m is None:
            return _json({"detail": "Not found"}, status=404)
        mp = self._multiparts.get(m["upload_id"])
        if mp is None or mp.access_url != f"{self.cdn_url}/files/{m['file']}":
            return _json({"detail": "Unknown multipart upload"}, status=404)
        return mp, m["part"]

    async def _multipart_part(self, request: web.Request) -> web.Response:
        found = self._multipart_lookup(request)
        if isinstance(found, web.Response):
            return found
        mp, part = found
        if part == "complete":
            return _json({"detail": "Method not allowed"}, status=405)
        data = await request.read()
        etag = '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'
        mp.parts[int(part)] = (etag, data)
        return _json({}, headers={"ETag": etag})

    async def _multipart_complete(self, request: web.Request) -> web.Response:
        found = self._multipart_lookup(request)
        if isinstance(found, web.Response):
            return found
        mp, part = found
        if part != "complete":
            return _json({"detail": "Method not allowed"}, status=405)
        try:
            listed = (await request.json())["parts"]
            numbers = sorted(int(p["partNumber"]) for p in listed)
            etags = {int(p["partNumber"]): p["etag"] for p in listed}
        except (ValueError, KeyError, TypeError):
            return _json({"detail": "Body must be {parts: [{partNumber, etag}]}"}, status=400)
        if numbers != list(range(1, len(numbers) + 1)) or set(numbers) != set(mp.parts):
            return _json({"detail": "Parts missing or out of range"}, status=400)
        if any(etags[n] != mp.parts[n][0] for n in numbers):
            return _json({"detail": "ETag mismatch"}, status=400)
        data = b"".join(mp.parts[n][1] for n in numbers)
        self._store(mp.access_url, data, mp.content_type, mp.file_name, "fal_v3_multipart")
        for key, value in list(self._multiparts.items()):
            if value is mp:
                del self._multiparts[key]
        return _json({"access_url": mp.access_url})

    # ---- storage: legacy fallback ("fal" repository) ----
    async def _gcs_initiate(self, request: web.Request) -> web.StreamResponse:
        if not self._key_auth_ok(request):
            return _json(_NO_USER, status=401)
        injected = await self._apply_fault(request, self._take_fault("upload"))
        if injected is not None:
            return injected
        try:
            payload = await request.json()
            file_name = payload.get("file_name")
            content_type = payload.get("content_type") or "application/octet-stream"
        except (ValueError, AttributeError):
            return _json({"detail": "Body must be {file_name, content_type}"}, status=400)
        key = uuid.uuid4().hex
        url = self._new_access_url(file_name, content_type)
        self._gcs_pending[key] = (url, file_name, content_type)
        return _json({"upload_url": f"{self.base_url}/gcs-upload/{key}", "file_url": url})

    async def _gcs_put(self, request: web.Request) -> web.Response:
        pending = self._gcs_pending.pop(request.match_info["key"], None)
        if pending is None:
            return _json({"detail": "Unknown upload url"}, status=404)
        url, file_name, content_type = pending
        self._store(
            url, await request.read(), request.headers.get("Content-Type", content_type), file_name, "fal"
        )
        return _json({})

    # ---- serving files ----
    async def _cdn_get(self, request: web.Request) -> web.Response:
        url = f"{self.cdn_url}/files/{request.match_info['tail']}"
        if url in self._outputs:
            data, content_type = self._outputs[url]
            fault = self._take_fault("download")
            if fault is not None and fault.mode is not None:
                return await _broken_file(request, fault.mode, data, content_type)
            injected = await self._apply_fault(request, fault)
            if injected is not None:
                return injected
        elif url in self._files and not self._files[url].expired:
            data, content_type = self._files[url].data, self._files[url].content_type
        else:
            return _json({"detail": "File not found"}, status=404)
        headers = {"Accept-Ranges": "bytes"}
        rng = request.headers.get("Range", "")
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
        if m and (m[1] or m[2]) and data:
            if m[1]:
                start, end = int(m[1]), int(m[2]) if m[2] else len(data) - 1
            else:
                start, end = max(len(data) - int(m[2]), 0), len(data) - 1
            end = min(end, len(data) - 1)
            if start > end:
                return web.Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return web.Response(
                body=data[start : end + 1], status=206, content_type=content_type, headers=headers
            )
        return web.Response(body=data, content_type=content_type, headers=headers)


def _reset_default_clients() -> None:
    """Drop cached auth / httpx client / CDN token manager of fal_client's module-level default clients,
    so they pick up the current URLs and FAL_KEY and do not reuse an httpx pool from a closed loop."""
    try:
        import fal_client
    except ImportError:  # pragma: no cover
        return
    for client in (getattr(fal_client, "async_client", None), getattr(fal_client, "sync_client", None)):
        if client is None:
            continue
        for attr in ("_auth", "_client", "_token_manager"):
            client.__dict__.pop(attr, None)


# ------------------------------------------------------------------------------------------ helpers


def _family(endpoint: str) -> str:
    """What an endpoint returns: "video" (Kling and anything unknown), "images", "angles" or "voice"."""
    if "create-voice" in endpoint:
        return "voice"
    if "seedream" in endpoint:
        return "images"
    if "multiple-angles" in endpoint:
        return "angles"
    return "video"


_IMAGE_SIZES = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
    "auto_2K": (1024, 1024),
    "auto_4K": (1024, 1024),
}


def _hand_rules(endpoint: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Inputs of endpoints without a published schema here, from fal's model pages (fal-platform.md)."""
    family = _family(endpoint)
    out: list[dict[str, Any]] = []

    def bad(field: str, msg: str, type_: str) -> None:
        out.append({"loc": ["body", field], "msg": msg, "type": type_, "input": args.get(field)})

    if family == "images":
        if not isinstance(args.get("prompt"), str):
            bad("prompt", "Field required", "missing")
        n = args.get("num_images", 1)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 6:
            bad("num_images", "Input should be between 1 and 6", "less_than_equal")
        size = args.get("image_size")
        if size is not None and not (
            size in _IMAGE_SIZES or (isinstance(size, dict) and {"width", "height"} <= set(size))
        ):
            bad("image_size", "Input should be a known size or {width, height}", "literal_error")
        if endpoint.endswith("/edit") and not (
            isinstance(args.get("image_urls"), list) and args["image_urls"]
        ):
            bad("image_urls", "Field required", "missing")
    elif family == "angles":
        if not (isinstance(args.get("image_urls"), list) and args["image_urls"]):
            bad("image_urls", "Field required", "missing")
        for field, lo, hi in (("horizontal_angle", 0, 360), ("vertical_angle", -30, 90), ("zoom", 0, 10)):
            value = args.get(field, lo)
            if not isinstance(value, int | float) or isinstance(value, bool) or not lo <= value <= hi:
                bad(field, f"Input should be within {lo}-{hi}", "less_than_equal")
    elif family == "voice" and not isinstance(args.get("voice_url"), str):
        bad("voice_url", "Field required", "missing")
    return out


def _seconds(value: Any, default: int = 5) -> int:
    """A Kling duration ("5", as fal takes it) in whole seconds; `default` when absent or unreadable."""
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def _shot_seconds(args: dict[str, Any]) -> tuple[int, ...] | None:
    """The lengths of a ``multi_prompt`` take's shots (each "5" unless given), or None for a one-prompt take."""
    shots = args.get("multi_prompt")
    if not isinstance(shots, list) or not shots:
        return None
    return tuple(max(1, _seconds(s.get("duration") if isinstance(s, dict) else None)) for s in shots)


def _kling_rule_breaks(args: dict[str, Any]) -> list[str]:
    """Kling's own rules for a multi-shot call that fal's schema does not state (fal-platform.md)."""
    shots = args.get("multi_prompt")
    if not isinstance(shots, list):
        return []
    out = []
    if not 1 <= len(shots) <= 6:
        out.append(f"{len(shots)} shots: Kling takes 1 to 6")
    for i, shot in enumerate(shots, 1):
        if isinstance(shot, dict) and len(str(shot.get("prompt") or "")) > 512:
            out.append(f"shot {i}'s prompt is over 512 characters")
    seconds, planned = _shot_seconds(args) or (), _seconds(args.get("duration"))
    if seconds and sum(seconds) != planned:
        out.append(f"the shots last {sum(seconds)} s in all, the duration says {planned} s")
    if args.get("end_image_url") is not None:
        out.append("an end image with multi_prompt")
    return out


def _file_fields(args: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """Every URL fal downloads before running: *_image_url, image_urls[], voice_url, elements' images."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    for key, value in args.items():
        if isinstance(value, str) and (key.endswith("image_url") or key in ("voice_url", "video_url")):
            found.append(((key,), value))
        elif key == "image_urls" and isinstance(value, list):
            found.extend(((key, i), v) for i, v in enumerate(value) if isinstance(v, str))
        elif key == "elements" and isinstance(value, list):
            for i, element in enumerate(value):
                if not isinstance(element, dict):
                    continue
                if isinstance(element.get("frontal_image_url"), str):
                    found.append(((key, i, "frontal_image_url"), element["frontal_image_url"]))
                for j, ref in enumerate(element.get("reference_image_urls") or []):
                    if isinstance(ref, str):
                        found.append(((key, i, "reference_image_urls", j), ref))
    return found


def _image_limit_problem(data: bytes, limits: dict[str, Any]) -> tuple[str, str] | None:
    """fal's x-fal checks on a downloaded image: (message, error type) or None."""
    from PIL import Image

    max_size = limits.get("max_file_size")
    if max_size is not None and len(data) > max_size:
        return f"File size exceeds the maximum of {max_size} bytes", "file_too_large"
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
    except Exception:
        return "Could not read the image", "image_load_error"
    if w < limits.get("min_width", 0) or h < limits.get("min_height", 0):
        return (
            f"Image dimensions are too small: {w}x{h}; minimum is "
            f"{limits.get('min_width', 0)}x{limits.get('min_height', 0)}",
            "image_too_small",
        )
    ratio = w / h
    if not limits.get("min_aspect_ratio", 0) <= ratio <= limits.get("max_aspect_ratio", float("inf")):
        return f"Image aspect ratio {ratio:.2f} is out of range", "image_aspect_ratio_error"
    return None


VOICE_SECONDS = (5.0, 30.0)  # create-voice's sample length (fal's page), with 0.1 s of slack each way
_VOICE_SLACK_S = 0.1


def _voice_problem(data: bytes) -> tuple[str, str] | None:
    """What create-voice would say of a downloaded voice file: (message, error type) or None. Decodes at most a
    little past 30 s of sound."""
    import av

    low, high = VOICE_SECONDS
    try:
        with av.open(io.BytesIO(data), metadata_errors="ignore") as container:
            if not container.streams.audio or container.streams.audio[0].codec_context is None:
                return "The file has no audio track", "audio_load_error"
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate
            samples = 0
            for frame in container.decode(stream):
                samples += frame.samples
                if rate and samples > (high + 1) * rate:
                    break
    except (av.FFmpegError, ValueError, OSError):
        return "Could not read the audio file", "audio_load_error"
    seconds = samples / rate if rate else 0.0
    if seconds <= 0:
        return "The file has no audio track", "audio_load_error"
    if not low - _VOICE_SLACK_S <= seconds <= high + _VOICE_SLACK_S:
        return (
            f"Audio duration {seconds:.1f}s is out of range: it must be between {low:g} and {high:g} seconds",
            "audio_duration_error",
        )
    return None


def _png(size: Any, source: bytes | None, n: int) -> tuple[bytes, int, int]:
    """A real PNG: the source image (or a gradient) tinted per candidate, with the candidate number."""
    from PIL import Image, ImageDraw

    if isinstance(size, dict):
        w, h = int(size["width"]), int(size["height"])
    else:
        w, h = _IMAGE_SIZES.get(str(size), (512, 512))
    w, h = max(16, min(w, 1024)), max(16, min(h, 1024))
    base = None
    if source:
        try:
            with Image.open(io.BytesIO(source)) as im:
                base = im.convert("RGB")
                if size is None:
                    w, h = base.size
                base = base.resize((w, h))
        except Exception:
            base = None
    if base is None:
        base = Image.linear_gradient("L").resize((w, h)).convert("RGB")
    tint = Image.new("RGB", (w, h), ((60 * n) % 256, (140 + 40 * n) % 256, (220 - 30 * n) % 256))
    img = Image.blend(base, tint, 0.3)
    ImageDraw.Draw(img).text((8, 8), str(n), fill=(255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue(), w, h


async def _broken_file(request: web.Request, mode: str, data: bytes, content_type: str) -> web.StreamResponse:
    """Serve something that is not the promised file (see FakeFal.break_downloads)."""
    if mode == "html":
        page = "<!DOCTYPE html><html><body><h1>Error</h1><p>Something went wrong.</p></body></html>"
        return web.Response(text=page, content_type="text/html")
    if mode == "truncated":
        return web.Response(body=data[: max(1, len(data) // 2)], content_type=content_type)
    resp = web.StreamResponse(headers={"Content-Type": content_type})
    if mode == "cut":
        resp.content_length = len(data)
        await resp.prepare(request)
        await resp.write(data[: len(data) // 2])
        return FakeFal._reset(request)
    if mode == "oversized":
        resp.content_length = 3 * 1024**3
    else:
        resp.enable_chunked_encoding()
    await resp.prepare(request)
    chunk = b"\0" * 65536
    sent = 0
    try:
        while sent < 3 * 1024**3:  # until the client gives up
            await resp.write(chunk)
            sent += len(chunk)
    except (ConnectionError, OSError):
        raise asyncio.CancelledError from None  # the client hung up, as it should
    return resp
