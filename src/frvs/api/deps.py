"""Typed dependencies the routes share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from frvs.app import Application
from frvs.core.caller import AuditContext, record_refusal
from frvs.core.errors import EmptyImageError, FrvsError, ImageTooLargeError, NotAnImageError
from frvs.imaging.decode import BGRImage, decode_image


def get_application(request: Request) -> Application:
    app = request.app.state.frvs
    assert isinstance(app, Application)
    return app


AppDep = Annotated[Application, Depends(get_application)]

_CHUNK = 1 << 16


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
    data = bytearray()
    while chunk := await upload.read(_CHUNK):
        data += chunk
        if len(data) > limit:
            raise ImageTooLargeError(f"{name}: upload is larger than the limit of {limit} bytes")
    sniff_image(bytes(data), name)
    return bytes(data)


async def read_upload(upload: UploadFile, application: Application) -> BGRImage:
    """Read an uploaded image (bounded, sniffed), then decode it."""
    name = upload.filename or "upload"
    data = await read_upload_bytes(upload, application)
    # Decoding is CPU work: off the event loop, so one big upload does not stall the rest.
    return await run_in_threadpool(decode_image, data, application.image_limits, name)


@asynccontextmanager
async def audited_refusals(application: Application, caller: AuditContext, action: str,
                           inputs: Mapping[str, Any]) -> AsyncIterator[None]:
    """Audit a biometric request refused before its use case runs (an upload that is
    too large, empty or not an image) as a refusal of ``action``, then re-raise."""
    try:
        yield
    except FrvsError as exc:
        await run_in_threadpool(record_refusal, application.store, caller, action, inputs,
                                exc)
        raise
