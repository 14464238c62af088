"""Anchors: the one portrait every shot of a channel starts from, stored for good and versioned."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

import aiohttp

from bot.anchors.cast import Cast, Renamed
from bot.anchors.checklist import anchor_checklist
from bot.anchors.models import PLACEHOLDER, AnchorVersion, CheckItem, name_key, shown_name
from bot.anchors.store import AnchorStore, NameTaken
from bot.db.database import Database
from bot.errors import ImageRejected, NoAnchor, UserError
from bot.fal.gateway import Gateway
from bot.media.crop import KLING_V3_START, face_crop, fit_start_image, start_image_problem
from bot.media.faces import FaceReport
from bot.media.fetch import DownloadError, TooLarge, fetch_limited
from bot.media.intake import MAX_UPLOAD_BYTES, check_declared, image_size, too_large_refusal
from bot.media.normalize import NormalizedImage, normalize_image

log = logging.getLogger(__name__)
FRAME_MIN_SIDE = 64  # a frame to start or end a shot on: smaller than this is not a picture of anyone
# Pictures normalised at once: each may hold ~270 MB while it decodes (a 40-megapixel RGBA PNG; bench in
# bot/media/intake.py), so N uploads at once cannot take N times that.
INTAKE_CONCURRENCY = 2

ASPECT_RATIOS: dict[str, tuple[int, int]] = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1)}
HISTORY_PAGE = 10
START_IMAGE_LIMITS = KLING_V3_START
_OWN_SHAPE = "anchor"  # derived-image key of a start image in the anchor's own shape (only made when needed)
_FACE = (
    "face"  # derived-image key of a tight crop of the anchor's face (an element's reference without angles)
)


@dataclass(frozen=True)
class SetResult:
    """What `/anchor set` reports back."""

    version: AnchorVersion
    new_file: bool
    notes: tuple[str, ...]
    checklist: list[CheckItem]


class FaceChecker(Protocol):
    """The face checks of an anchor (bot/consistency implements it; optional: anchors work without it)."""

    async def check_anchor(self, version: AnchorVersion, image: bytes) -> list[CheckItem]:
        """Find the face of a new version's image, store its embedding, return the face checks."""

    async def anchor_checks(self, version: AnchorVersion) -> list[CheckItem]:
        """The stored face checks of a version (computed when missing)."""

    async def face_box(self, version: AnchorVersion) -> tuple[int, int, int, int] | None:
        """The box of the version's face found at intake (computed when missing), None when it has none."""

    async def check_angle(self, version: AnchorVersion, image: bytes) -> FaceReport | None:
        """Hold an image offered as an angle to the version's face: UserError (nothing stored) when it shows no
        face or another person's; None when face checks are off."""

    async def save_angle_face(self, version: AnchorVersion, angle_id: int, report: FaceReport) -> None:
        """Store the face `check_angle` found, under the angle's id."""


@dataclass(frozen=True)
class Upload:
    """An attachment as the cog sees it (no discord types in here)."""

    url: str
    filename: str
    content_type: str | None
    size: int | None


class AnchorService:
    """Stores, versions, resolves and uploads anchors."""

    def __init__(
        self,
        db: Database,
        media_dir: Path,
        *,
        session: aiohttp.ClientSession,
        upload_lifetime_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = AnchorStore(db)
        self.media_dir = media_dir
        self.session = session
        self.upload_lifetime_s = upload_lifetime_s
        self.clock = clock
        self._upload_locks: dict[str, asyncio.Lock] = {}
        self._intake = asyncio.Semaphore(INTAKE_CONCURRENCY)
        self.faces: FaceChecker | None = None
        self.cast = Cast(self, self.store, clock)

    def image_path(self, sha256: str) -> Path:
        """Where the normalised file with this hash lives."""
        return self.media_dir / "images" / sha256[:2] / f"{sha256}.jpg"

    async def _write_image(self, img: NormalizedImage) -> None:
        path = self.image_path(img.sha256)
        if path.exists() and path.stat().st_size == len(img.data):
            return

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")  # two writes of one image at once
            tmp.write_bytes(img.data)
            os.replace(tmp, path)

        await asyncio.to_thread(write)

    async def set_anchor(
        self, *, guild_id: int, channel_id: int, user_id: int, upload: Upload, name: str | None
    ) -> SetResult:
        """Download, validate, normalise and store an upload as the new current anchor of the character called
        `name` (else of the main one; a channel's first anchor makes its main character)."""
        await self.cast.target(channel_id, name)  # an unknown name is refused before the download
        data = await self.fetch_upload(upload)
        return await self.set_anchor_from_bytes(
            guild_id=guild_id, channel_id=channel_id, user_id=user_id, data=data, name=name
        )

    async def fetch_upload(self, upload: Upload) -> bytes:
        """The bytes of an attachment, checked for its declared type and size first."""
        check_declared(upload.filename, upload.content_type, upload.size)
        try:
            return await fetch_limited(self.session, upload.url, max_bytes=MAX_UPLOAD_BYTES)
        except TooLarge as exc:  # bigger than the attachment said it was
            raise too_large_refusal(exc.size, MAX_UPLOAD_BYTES) from None
        except DownloadError as exc:
            raise UserError(f"I could not download that attachment ({exc}); please upload it again.") from exc

    async def store_image(self, data: bytes) -> NormalizedImage:
        """Validate, normalise and store an image the way anchors are stored."""
        img = await self.prepare_image(data)
        await self._write_image(img)
        return img

    async def prepare_image(self, data: bytes) -> NormalizedImage:
        """Validate and normalise an image the way anchors are stored, storing nothing yet (an angle is held to
        the anchor's face first): `write_image` stores it."""
        img = await self._normalize(data)
        problem = start_image_problem(img.width, img.height, START_IMAGE_LIMITS)
        if problem is not None:
            raise ImageRejected(problem)
        return img

    async def write_image(self, img: NormalizedImage) -> None:
        """Store the file of an image `prepare_image` made (its row is `store.put_image`)."""
        await self._write_image(img)

    async def _normalize(self, data: bytes, **options: int) -> NormalizedImage:
        """`normalize_image` in a worker thread, at most INTAKE_CONCURRENCY at a time."""
        async with self._intake:
            return await asyncio.to_thread(partial(normalize_image, data, **options))

    async def store_frame(self, data: bytes, *, uploaded: bool = False) -> str:
        """Store a frame a shot starts or ends on (a take's last frame, an uploaded end frame): normalised like an
        anchor, then fitted to the video model's start-image limits; return its hash. An upload passes the
        anchor's intake as it is (its smallest side too); a take's own frame may be smaller (a 320×240 clip) and
        the fit below upscales it."""
        min_side = {} if uploaded else {"min_side": FRAME_MIN_SIDE}
        img = await self._normalize(data, **min_side)
        fitted = await asyncio.to_thread(fit_start_image, img.data, None, START_IMAGE_LIMITS)
        if fitted is not img.data:
            w, h = image_size(fitted)
            img = NormalizedImage(fitted, w, h, hashlib.sha256(fitted).hexdigest(), "JPEG", ())
        await self._write_image(img)
        await self.store.put_image(img.sha256, img.width, img.height, len(img.data), self.clock())
        return img.sha256

    async def set_anchor_from_bytes(
        self,
        *,
        guild_id: int,
        channel_id: int,
        user_id: int,
        data: bytes,
        name: str | None,
        character: int | tuple[str, bool] | None = None,
    ) -> SetResult:
        """The intake of /anchor set for image bytes already in hand (e.g. a chosen generated candidate): a new
        version of `character` (an id, or (name, is_main) to add one: NameTaken when the channel's cast refuses
        it), else of the character called `name`, else of the main one. Without `character`, a character made
        by another anchor write a moment ago (the channel's first, when two land at once) takes the version."""
        target = character if character is not None else await self.cast.target(channel_id, name)
        img = await self.store_image(data)
        checklist = await asyncio.to_thread(anchor_checklist, img.data)
        add = partial(self._add_version, guild_id=guild_id, channel_id=channel_id, user_id=user_id, name=name)
        try:
            version, new_file = await add(img, target)
        except NameTaken:
            if character is not None:
                raise
            # The cast changed since `target` was read (a first anchor, set by someone else at the same time, made
            # the channel's main character): the character to add to is that one now.
            target = await self.cast.target(channel_id, name)
            try:
                version, new_file = await add(img, target)
            except NameTaken:
                raise UserError(
                    "This channel's cast changed at the same moment; run it again to set the anchor."
                ) from None
        log.info(
            "anchor v%d set in channel %d (%s, new file: %s)",
            version.version,
            channel_id,
            img.sha256,
            new_file,
        )
        if self.faces is not None:
            checklist = checklist + await self.faces.check_anchor(version, img.data)
        return SetResult(version=version, new_file=new_file, notes=img.notes, checklist=checklist)

    async def _add_version(
        self,
        img: NormalizedImage,
        character: int | tuple[str, bool] | Renamed,
        *,
        guild_id: int,
        channel_id: int,
        user_id: int,
        name: str | None,
    ) -> tuple[AnchorVersion, bool]:
        """Record an accepted image as the new current version of `character` (NameTaken: the cast refused a new
        character, or a rename); the version and whether its file was new."""
        if isinstance(character, Renamed):  # the image is accepted: the lone character takes the new name
            await self.cast.store.rename(character.character_id, character.name)
            character = character.character_id
        label = character[0] if isinstance(character, tuple) else await self._name_of(character)
        if label == PLACEHOLDER and name is None:  # an anchor set without a name stays unnamed in its label
            label = None
        return await self.store.add_version(
            guild_id=guild_id,
            channel_id=channel_id,
            character=character,
            sha256=img.sha256,
            width=img.width,
            height=img.height,
            size_bytes=len(img.data),
            name=label,
            set_by=user_id,
            source_format=img.source_format,
            now=self.clock(),
        )

    async def _name_of(self, character_id: int) -> str | None:
        found = await self.store.character(character_id)
        return found.name if found is not None else None

    async def resolve(self, channel_id: int, parent_id: int | None = None) -> AnchorVersion:
        """The anchor a channel uses: its own, else (for a thread) its parent's; NoAnchor when neither has one."""
        own = await self.store.current(channel_id)
        if own is not None:
            return own
        if parent_id is not None:
            inherited = await self.store.current(parent_id)
            if inherited is not None:
                return inherited
        raise NoAnchor(
            "This channel has no anchor yet (the portrait every shot starts from): ask a moderator to run "
            "/anchor set with a picture of the character, or /anchor generate. /help shows how it works."
        )

    async def checklist(self, version: AnchorVersion) -> list[CheckItem]:
        data = await asyncio.to_thread(self.image_path(version.sha256).read_bytes)
        items = await asyncio.to_thread(anchor_checklist, data)
        if self.faces is not None:
            items = items + await self.faces.anchor_checks(version)
        return items

    async def history(
        self, channel_id: int, page: int, *, per_page: int = HISTORY_PAGE, name: str | None = None
    ) -> tuple[list[AnchorVersion], int, int]:
        """One page (1-based) of the channel's versions (or one character's), newest first; (rows, page, pages)."""
        character_id = (await self.cast.own(channel_id, name)).id if name else None
        page = max(1, page)
        rows, total = await self.store.history(
            channel_id, character_id=character_id, limit=per_page, offset=(page - 1) * per_page
        )
        pages = max(1, -(-total // per_page))
        if page > pages:
            rows, _ = await self.store.history(
                channel_id, character_id=character_id, limit=per_page, offset=(pages - 1) * per_page
            )
            page = pages
        return rows, page, pages

    async def version_of(self, channel_id: int, parent_id: int | None, name: str | None) -> AnchorVersion:
        """The current anchor of the character called `name` in the cast the channel uses, else the main one's."""
        if name is None:
            return await self.resolve(channel_id, parent_id)
        return (await self.cast.member(await self.cast.find(channel_id, parent_id, name))).version

    async def use_version(
        self, guild_id: int, channel_id: int, version: int, name: str | None = None
    ) -> AnchorVersion:
        """Make an earlier version current again, for the character it shows (`name`, when given, must be it)."""
        found = await self.store.by_number(channel_id, version)
        if found is None:
            raise UserError(
                f"This channel has no anchor version {version}; see /anchor history for the list."
            )
        character = await self.store.character(found.character_id) if found.character_id else None
        if character is None or character.removed:
            raise UserError(f"Version {version} belongs to a character no longer in the cast.")
        if name is not None and name_key(name) != name_key(character.name):
            raise UserError(
                f"Version {version} is {character.name}'s anchor, not {shown_name(name.strip())}'s."
            )
        await self.store.set_current(character.id, found.id)
        if self.faces is not None:  # a version from before face checks gets its face now
            await self.faces.anchor_checks(found)
        return found

    async def clear(self, guild_id: int, channel_id: int, name: str | None = None) -> AnchorVersion | None:
        """Leave a character (the main one by default) without an anchor (history is kept); return what was
        current."""
        character = await self.cast.own(channel_id, name) if name else await self.cast.main_of(channel_id)
        if character is None or character.version_id is None:
            who = f"{character.name} has" if character is not None and name else "This channel has"
            raise UserError(f"{who} no anchor of its own to clear.")
        current = await self.store.by_id(character.version_id)
        await self.store.set_current(character.id, None)
        return current

    async def version_by_id(self, version_id: int) -> AnchorVersion:
        found = await self.store.by_id(version_id)
        if found is None:
            raise NoAnchor("The anchor this shot used no longer exists.")
        return found

    # Start images --------------------------------------------------------------------------------------
    async def start_image(self, version: AnchorVersion, aspect_ratio: str) -> tuple[str, Path]:
        """The (hash, path) of the start image for a shot: the anchor itself when it meets the video model's
        limits, else a cached centred crop (upscaled when small, re-encoded when too large) that does."""
        ratio = ASPECT_RATIOS.get(aspect_ratio)
        own_path = self.image_path(version.sha256)
        if ratio is None and await asyncio.to_thread(
            self._meets_limits, version.width, version.height, own_path
        ):
            return version.sha256, own_path
        key = aspect_ratio if ratio is not None else _OWN_SHAPE
        cached = await self.store.derived(version.sha256, key)
        if cached:
            row = await self.store.image(cached)
            path = self.image_path(cached)
            if row is not None and await asyncio.to_thread(self._meets_limits, row.width, row.height, path):
                return cached, path
        source = await asyncio.to_thread(own_path.read_bytes)
        data = await asyncio.to_thread(fit_start_image, source, ratio, START_IMAGE_LIMITS)
        if data is source:
            return version.sha256, own_path
        sha = hashlib.sha256(data).hexdigest()
        w, h = image_size(data)
        await self._write_image(NormalizedImage(data, w, h, sha, "JPEG", ()))
        await self.store.put_image(sha, w, h, len(data), self.clock())
        await self.store.put_derived(version.sha256, key, sha)
        return sha, self.image_path(sha)

    async def element_reference(self, version: AnchorVersion) -> tuple[str, bool]:
        """(hash, whether it is a face crop) of the image an element carries as its reference when the character
        has no angles: a tight crop of the version's face, fitted to the video model's limits and cached. When the
        face checks found no one face to crop (several people of a size, or nobody) the whole anchor goes instead:
        a guessed crop of such a picture can cut between two faces. Without face checks, a centred crop of the
        portrait (where a portrait's face is)."""
        if self.faces is None:
            return await self._face_crop(version, None), True
        box = await self.faces.face_box(version)
        if box is None:
            return (await self.start_image(version, _OWN_SHAPE))[0], False
        return await self._face_crop(version, box), True

    async def _face_crop(self, version: AnchorVersion, box: tuple[int, int, int, int] | None) -> str:
        cached = await self.store.derived(version.sha256, _FACE)
        if cached and self.image_path(cached).is_file():
            return cached
        source = await asyncio.to_thread(self.image_path(version.sha256).read_bytes)
        data = await asyncio.to_thread(face_crop, source, box, START_IMAGE_LIMITS)
        sha = hashlib.sha256(data).hexdigest()
        w, h = image_size(data)
        await self._write_image(NormalizedImage(data, w, h, sha, "JPEG", ()))
        await self.store.put_image(sha, w, h, len(data), self.clock())
        await self.store.put_derived(version.sha256, _FACE, sha)
        return sha

    @staticmethod
    def _meets_limits(width: int, height: int, path: Path) -> bool:
        """Whether a stored image is a valid start image as it is (also false when its file is missing)."""
        limits = START_IMAGE_LIMITS
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return False
        return (
            min(width, height) >= limits.min_side
            and limits.min_ratio <= width / height <= limits.max_ratio
            and size <= limits.max_bytes
        )

    async def start_image_ref(self, sha256: str, path: Path, gateway: Gateway) -> str:
        """A reference the backend can read: a fal storage URL (uploaded once, cached) or a local path."""
        if not gateway.needs_upload:
            return str(path)
        lock = self._upload_locks.setdefault(sha256, asyncio.Lock())
        async with lock:
            row = await self.store.image(sha256)
            now = self.clock()
            if (
                row is not None
                and row.fal_url
                and row.fal_uploaded_at is not None
                and now - row.fal_uploaded_at < self.upload_lifetime_s
            ):
                return row.fal_url
            data = await asyncio.to_thread(path.read_bytes)
            url = await gateway.upload(data, "image/jpeg", f"anchor-{sha256[:12]}.jpg")
            await self.store.set_fal_url(sha256, url, now)
            log.info("uploaded %s to fal storage", sha256[:12])
            return url

    async def forget_upload(self, sha256: str) -> None:
        """Drop a cached fal URL that fal reported unusable, so the next shot uploads again."""
        await self.store.set_fal_url(sha256, None, None)
