"""Typed dependencies the routes share."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, UploadFile

from frvs.app import Application
from frvs.core.errors import ImageTooLargeError
from frvs.imaging.decode import BGRImage, decode_image


def get_application(request: Request) -> Application:
    app = request.app.state.frvs
    assert isinstance(app, Application)
    return app


AppDep = Annotated[Application, Depends(get_application)]

_CHUNK = 1 << 16


async def read_upload(upload: UploadFile, application: Application) -> BGRImage:
    """Read an uploaded image without ever holding more than the byte limit, then decode."""
    limit = application.image_limits.max_bytes
    name = upload.filename or "upload"
    data = bytearray()
    while chunk := await upload.read(_CHUNK):
        data += chunk
        if len(data) > limit:
            raise ImageTooLargeError(f"{name}: upload is larger than the limit of {limit} bytes")
    return decode_image(bytes(data), application.image_limits, name=name)
