"""Typed dependencies the routes share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from frvs.app import Application
from frvs.core.caller import AuditContext, AuditLog, record_refusal
from frvs.core.errors import EmptyImageError, FrvsError, ImageTooLargeError, NotAnImageError
from frvs.imaging.budget import Decoded
from frvs.imaging.decode import BGRImage, ScaledImage


def get_application(request: Request) -> Application:
    app = request.app.state.frvs
    assert isinstance(app, Application)
    return app


AppDep = Annotated[Application, Depends(get_application)]

T = TypeVar("T")

# Magic numbers of the formats FRVS decodes. An upload is judged by its content, never by
# its declared type or name, and anything else is refused before a decoder sees it.
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM",
               b"II*\x00", b"MM\x00*")


def sniff_image(data: bytes, name: str) -> None:
    """Refuse bytes that are not JPEG, PNG, WebP, BMP, TIFF or GIF by their first bytes."""
    if not data:
        raise EmptyImageError(f"{name}: the file is empty")
    webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    if not (webp or data.startswith(_SIGNATURES)):
        raise NotAnImageError(f"{name}: not an image in a supported format (JPEG, PNG, WebP, "
                              "BMP, TIFF, GIF)")


async def read_upload_bytes(upload: UploadFile, application: Application) -> bytes:
    """An upload's bytes, never holding more than the byte limit, sniffed by content."""
    limit = application.image_limits.max_bytes
    name = upload.filename or "upload"
    # One read of at most one byte over the limit: the parsed upload is copied once into
    # the bytes the decoder reads (chunks gathered in a bytearray were copied three times).
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise ImageTooLargeError(f"{name}: upload is larger than the limit of {limit} bytes")
    sniff_image(data, name)
    return data


@dataclass(frozen=True, slots=True)
class DecodedUpload:
    """An uploaded image: its name, its bytes and its pixels."""

    name: str
    data: bytes
    pixels: BGRImage


@dataclass(frozen=True, slots=True)
class Refusal:
    """How to audit a request refused before its use case runs."""

    caller: AuditContext
    action: str
    inputs: Mapping[str, Any]

    def record(self, log: AuditLog, error: FrvsError) -> None:
        record_refusal(log, self.caller, self.action, self.inputs, error)


async def analyse_uploads(application: Application, uploads: Sequence[UploadFile],
                          analyse: Callable[[list[DecodedUpload]], T],
                          refusal: Refusal | None = None) -> T:
    """Read the uploads (bounded, sniffed), reserve their pixels in the process's pixel
    budget (from their headers: 503 ``busy`` when it stays full), decode them and run
    ``analyse`` on them, all in one worker thread that gives the pixels back however it
    ends (a request cancelled by its timeout cannot keep them). An error before
    ``analyse`` runs is audited as ``refusal`` when one is given, then re-raised;
    ``analyse`` audits its own."""
    def decode(named: list[tuple[bytes, str]]) -> Decoded[BGRImage]:
        return application.pixel_budget.decode(named, application.image_limits)

    def run(named: list[tuple[bytes, str]], images: list[BGRImage]) -> T:
        return analyse([DecodedUpload(name, data, pixels)
                        for (data, name), pixels in zip(named, images, strict=True)])

    return await _read_decode_analyse(application, uploads, decode, run, refusal)


async def analyse_scaled_uploads(application: Application, uploads: Sequence[UploadFile],
                                 analyse: Callable[[list[ScaledImage]], T],
                                 refusal: Refusal | None = None) -> T:
    """``analyse_uploads`` for the face engine: each JPEG decoded at the smallest DCT
    scale that still covers the detector's working size within ``DECODE_SLACK``
    (``ScaledImage``; the engine decodes it again at full size for a face too small in
    it), the images decoded at once on as many threads; all at full size, one by one,
    when the setting ``detection.reduced_decode`` is off. Same limits, budget, errors and
    refusals."""
    options, limits = application.engine.options, application.image_limits

    def decode(named: list[tuple[bytes, str]]) -> Decoded[ScaledImage]:
        if options.reduced_decode:
            return application.pixel_budget.decode_scaled(named, limits, options.decode_side)
        # The full-size path, kept to measure against: every pixel, one image at a time.
        full = application.pixel_budget.decode(named, limits)
        return Decoded([ScaledImage(pixels, 1, data, name, limits)
                        for (data, name), pixels in zip(named, full.images, strict=True)],
                       full.reservation)

    return await _read_decode_analyse(application, uploads, decode,
                                      lambda _, images: analyse(images), refusal)


ImageT = TypeVar("ImageT", BGRImage, ScaledImage)


async def _read_decode_analyse(
        application: Application, uploads: Sequence[UploadFile],
        decode: Callable[[list[tuple[bytes, str]]], Decoded[ImageT]],
        analyse: Callable[[list[tuple[bytes, str]], list[ImageT]], T],
        refusal: Refusal | None) -> T:
    try:
        named = [(await read_upload_bytes(u, application), u.filename or "upload")
                 for u in uploads]
    except FrvsError as exc:
        if refusal is not None:
            await run_in_threadpool(refusal.record, application.oversight.trail, exc)
        raise

    def work() -> T:
        try:
            decoded = decode(named)
        except FrvsError as exc:
            if refusal is not None:
                refusal.record(application.oversight.trail, exc)
            raise
        with decoded as images:
            return analyse(named, images)

    # Off the event loop: /healthz and every other request are answered meanwhile.
    return await run_in_threadpool(work)


@asynccontextmanager
async def audited_refusals(application: Application, caller: AuditContext, action: str,
                           inputs: Mapping[str, Any]) -> AsyncIterator[None]:
    """Audit a biometric request refused before its use case runs (an upload that is
    too large, empty or not an image) as a refusal of ``action``, then re-raise."""
    try:
        yield
    except FrvsError as exc:
        await run_in_threadpool(record_refusal, application.oversight.trail, caller, action, inputs,
                                exc)
        raise
