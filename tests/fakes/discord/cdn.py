"""The CDN: signed, expiring attachment URLs (``ex``/``is``/``hm`` like Discord's) and the bytes behind them.

``Attachment.read()`` in discord.py is a plain GET of the attachment's ``url``; the fake serves it
here, and answers 404 once the URL's ``ex`` has passed on the fake clock (about 24 h).
Downloads are logged in ``fake.requests`` too (route ``/attachments/{channel_id}/{attachment_id}/{filename}``).
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from aiohttp import web

from .common import CDN_URL_TTL, CapturedRequest, FakeClock, guess_type, image_dims


class CdnMixin:
    clock: FakeClock
    base_url: str
    channel_id: int
    requests: list[CapturedRequest]
    # _snowflake() comes from state.py

    def _init_cdn(self) -> None:
        self._blobs: dict[int, tuple[bytes, str | None, float]] = {}
        self.cdn_requests: list[tuple[str, int]] = []  # (path, status)

    def _cdn_url(self, channel_id: int, att_id: int, filename: str, *, proxy: bool = False) -> str:
        now = self.clock.now()
        ex = int(now + CDN_URL_TTL)
        hm = hashlib.sha256(f"{att_id}:{ex}".encode()).hexdigest()[:32]
        prefix = "/media/attachments" if proxy else "/attachments"
        return (
            f"{self.base_url}{prefix}/{channel_id}/{att_id}/{quote(filename)}"
            f"?ex={ex:08x}&is={int(now):08x}&hm={hm}&"
        )

    def _register_blob(self, att_id: int, data: bytes, content_type: str | None) -> None:
        self._blobs[att_id] = (data, content_type, self.clock.now() + CDN_URL_TTL)

    def make_attachment(
        self,
        filename: str,
        data: bytes,
        *,
        content_type: str | None = None,
        declared_size: int | None = None,
        width: int | None = None,
        height: int | None = None,
        channel_id: int | None = None,
    ) -> dict:
        """An attachment a member uploads with a slash command (pass it as the option's value);
        ``channel_id``: the channel its URL names (default: ``fake.channel_id``)."""
        att_id = self._snowflake()
        cid = channel_id if channel_id is not None else self.channel_id
        ctype = content_type or guess_type(filename, None)
        if width is None and height is None and (ctype or "").startswith("image/"):
            width, height = image_dims(data)
        self._register_blob(att_id, data, ctype)
        att: dict[str, Any] = {
            "id": str(att_id),
            "filename": filename,
            "size": declared_size if declared_size is not None else len(data),
            "url": self._cdn_url(cid, att_id, filename),
            "proxy_url": self._cdn_url(cid, att_id, filename, proxy=True),
            "content_type": ctype,
            "ephemeral": True,
        }
        if width is not None:
            att["width"] = width
        if height is not None:
            att["height"] = height
        return att

    async def _cdn_entry(self, request: web.Request) -> web.Response:
        path = request.path
        parts = path.split("/")
        cap = CapturedRequest(
            method=request.method,
            path=path,
            query=dict(request.query),
            headers=dict(request.headers),
            route="/attachments/{channel_id}/{attachment_id}/{filename}",
            seq=len(self.requests),
        )
        status = 200
        resp: web.Response
        try:
            att_id = int(parts[-2])
            cap.params = {"channel_id": parts[-3], "attachment_id": parts[-2], "filename": parts[-1]}
            data, ctype, _expires = self._blobs[att_id]
            ex = int(request.query.get("ex", "0"), 16)
            if ex and ex < self.clock.now():
                status = 404
                resp = web.Response(status=404, text="This content is no longer available.")
            else:
                resp = web.Response(
                    status=200, body=data, headers={"Content-Type": ctype or "application/octet-stream"}
                )
        except (ValueError, KeyError, IndexError):
            status = 404
            resp = web.Response(status=404, text="Not Found")
        cap.status = status
        self.cdn_requests.append((path, status))
        self.requests.append(cap)
        return resp
