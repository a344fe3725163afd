"""The one domain error hierarchy.

Shells map these to exit codes (CLI) and problem+json statuses (API); the domain never
knows about either. Each error carries a stable machine-readable ``code``.
"""

from __future__ import annotations


class FrvsError(Exception):
    """Base of every error FRVS raises on purpose."""

    code = "frvs_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputError(FrvsError):
    """The caller sent something FRVS cannot use."""

    code = "invalid_input"


class FileReadError(InvalidInputError):
    """A named file is missing or cannot be read."""

    code = "file_not_found"


class ImageError(InvalidInputError):
    """An image could not be turned into pixels."""

    code = "image_error"


class EmptyImageError(ImageError):
    code = "empty_image"


class NotAnImageError(ImageError):
    code = "not_an_image"


class CorruptImageError(ImageError):
    code = "corrupt_image"


class ImageTooLargeError(ImageError):
    code = "image_too_large"


class ImageAspectRatioError(ImageTooLargeError):
    """One side is absurdly long for the other (a 1 x 39,000,000 line): refused from the
    header, before any pixel is decoded."""

    code = "image_aspect_ratio"


class NoFaceError(InvalidInputError):
    """The image holds no face the detector accepts."""

    code = "no_face"


class MultipleFacesError(InvalidInputError):
    """Enrolment needs exactly one usable face and the image holds several."""

    code = "multiple_faces"


class LowQualityFaceError(InvalidInputError):
    """A face was found but falls below the configured quality minimums."""

    code = "low_quality_face"


class ProhibitedAttributeError(InvalidInputError):
    """A request tried to record a special category of personal data (PRODUCT.md)."""

    code = "prohibited_attribute"


class ModelSpaceMismatchError(FrvsError):
    """Two templates from different model packs (or versions) were compared."""

    code = "model_space_mismatch"


class InvalidRecordError(FrvsError):
    """A record was built with values that break its invariants (a programming error)."""

    code = "invalid_record"


class ModelError(FrvsError):
    """A model pack cannot be loaded."""

    code = "model_error"


class ModelFileMissingError(ModelError):
    code = "model_file_missing"


class ModelChecksumError(ModelError):
    code = "model_checksum_mismatch"


class PackUnavailableError(ModelError):
    """A pack was chosen whose optional dependencies are not installed."""

    code = "pack_unavailable"


class ConfigurationError(FrvsError):
    code = "configuration_error"


class NotFoundError(FrvsError):
    code = "not_found"


class ConflictError(FrvsError):
    code = "conflict"


class PermissionDeniedError(FrvsError):
    code = "permission_denied"


class AuthenticationError(FrvsError):
    """No API key, an unknown one or a revoked one."""

    code = "unauthenticated"


class RetryLaterError(FrvsError):
    """The request may succeed later; ``retry_after`` seconds to wait."""

    code = "retry_later"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimitedError(RetryLaterError):
    """Too many requests of one kind from one key."""

    code = "rate_limited"


class BusyError(RetryLaterError):
    """The process is already decoding or analysing as many pixels as it may at once."""

    code = "busy"
