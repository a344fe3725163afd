"""The configuration tree. Every field has a title or description, bounds and defaults
that run FRVS embedded on one machine.

Sources, later ones winning: defaults, the YAML file (``--config``, ``FRVS_CONFIG`` or
``<data_dir>/frvs.yaml``), environment variables ``FRVS_<FIELD>`` with ``__`` between
nested names (``FRVS_SERVER__PORT=9000``), and explicit overrides from the CLI.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from frvs.core.errors import ConfigurationError
from frvs.faces.service import EngineOptions
from frvs.imaging.budget import DEFAULT_PIXEL_BUDGET, PixelBudget
from frvs.imaging.decode import (
    DEFAULT_MAX_ASPECT_RATIO,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_JPEG_SCAN_PIXELS,
    DEFAULT_MAX_PIXELS,
    ImageLimits,
)
from frvs.models.pack import ThresholdOverride
from frvs.models.quality import QualityMinimums
from frvs.models.registry import PackConfig, default_pack_configs
from frvs.pipeline.config import ReplicaSettings, VideoSettings
from frvs.storage.index.factory import ExactIndexSettings, IndexSettings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DetectionSettings(_Section):
    max_side: int = Field(
        EngineOptions().max_side,
        ge=160,
        le=4096,
        title="Working resolution",
        description="Images are downscaled so their longer side is at most this before "
        "detection, and boxes are mapped back. Larger finds smaller faces but costs time "
        "roughly with the pixel count; YuNet misses large faces in very large images.",
    )
    reduced_decode: bool = Field(
        True,
        title="Decode uploads at the working resolution",
        description="JPEG uploads to /v1/verify and /v1/detect are decoded at 1/2, 1/4 or "
        "1/8 scale (libjpeg's DCT scaling) when the smaller image still covers the working "
        "resolution, a face too small in it is aligned from the image decoded again at "
        "full size, and the two images of a verification are analysed at once. False "
        "decodes every pixel first, one image after the other: slower, kept to measure "
        "against (benchmarks/api.py).",
    )


_QUALITY = QualityMinimums()
"""The defaults' one home is ``models/quality.py``; the fields below add bounds and docs."""


class QualitySettings(_Section):
    """Minimums below which a face is refused for enrolment, with the reason."""

    detector_score: float = Field(_QUALITY.detector_score, ge=0, le=1)
    face_size_px: float = Field(_QUALITY.face_size_px, ge=0,
                                description="Shorter side of the face box.")
    inter_eye_px: float = Field(_QUALITY.inter_eye_px, ge=0)
    sharpness: float = Field(_QUALITY.sharpness, ge=0,
                             description="Variance of the Laplacian of the crop.")
    max_abs_yaw: float = Field(_QUALITY.max_abs_yaw, ge=0, le=90)
    max_abs_pitch: float = Field(_QUALITY.max_abs_pitch, ge=0, le=90)
    overall: float = Field(_QUALITY.overall, ge=0, le=1)

    def minimums(self) -> QualityMinimums:
        return QualityMinimums(**self.model_dump())


class LimitSettings(_Section):
    max_image_bytes: int = Field(
        DEFAULT_MAX_BYTES, ge=1024, description="Largest accepted image file or upload."
    )
    max_image_pixels: int = Field(
        DEFAULT_MAX_PIXELS, ge=10_000, description="Largest accepted width x height "
        "(decompression-bomb guard)."
    )
    max_image_aspect_ratio: float = Field(
        DEFAULT_MAX_ASPECT_RATIO, ge=1, le=10_000, title="Largest aspect ratio",
        description="Longer side over shorter side; a longer image is refused from its "
        "header before any pixel is decoded (413). Higher accepts wide panoramas, but a "
        "line of millions of pixels costs seconds of CPU and finds no face.")
    max_jpeg_scan_pixels: int = Field(
        DEFAULT_MAX_JPEG_SCAN_PIXELS, ge=1_000_000, title="Most JPEG scans times pixels",
        description="A JPEG whose scan markers times its pixels exceed this is refused "
        "before decoding (413): each scan of a progressive JPEG costs a pass over the whole "
        "frame (2,000 empty scans over 2400x2400: 1.5 s of CPU); each scan counts at least "
        "4 Mpx. The default allows 100 scans at 40 Mpx, 333 at 12 Mpx, 1,000 at most; "
        "encoders write about ten.")
    max_concurrent_pixels: int = Field(
        DEFAULT_PIXEL_BUDGET, ge=10_000, title="Pixel budget",
        description="Pixels being decoded or analysed at once across the whole process "
        "(every upload path: detect, verify, enrol, identify, sighting search, device "
        "submissions); a 40 Mpx image needs about 280 MB while it is decoded. Larger "
        "serves more big images at once but raises the memory a burst of uploads can "
        "take; an image larger than the budget waits until it is empty.")
    pixel_wait_s: float = Field(
        5.0, ge=0, le=600, title="Pixel budget queue (s)",
        description="How long an upload waits for room in the pixel budget before it "
        "is refused with 503 and Retry-After. Longer rides out bursts, but holds "
        "connections and worker threads while waiting.")

    def image_limits(self) -> ImageLimits:
        return ImageLimits(self.max_image_bytes, self.max_image_pixels,
                           self.max_image_aspect_ratio, self.max_jpeg_scan_pixels)

    def pixel_budget(self) -> PixelBudget:
        return PixelBudget(self.max_concurrent_pixels, self.pixel_wait_s)


class ServerSettings(_Section):
    host: str = Field("127.0.0.1", description="Bind address. Binding elsewhere exposes "
                      "biometric endpoints to the network: put TLS in front.")
    port: int = Field(8000, ge=1, le=65535)


class AuditSettings(_Section):
    retention_days: int = Field(
        400, ge=183, title="Audit retention (days)",
        description="Audit entries older than this are removed by 'frvs audit purge' "
        "(the chain's base moves past them). At least six months (EU AI Act Art. 19); "
        "longer keeps more evidence but more personal data.")


class ApiSettings(_Section):
    request_timeout_s: float = Field(
        60.0, ge=1, le=3600, description="A request still running after this answers 503; "
        "live event streams are exempt. Short protects the service, long allows big uploads.")
    search_rate_per_minute: float = Field(
        60.0, ge=1, description="Sustained searches (identify, cross-match, sighting search) "
        "per key per minute; above it 429 with Retry-After. Higher serves batch clients, "
        "lower limits mass searching with one key.")
    search_burst: int = Field(20, ge=1, description="Searches a key may make at once "
                              "before the sustained rate applies.")
    detect_rate_per_minute: float = Field(
        120.0, ge=1, description="Sustained detections (POST /v1/detect) per key per "
        "minute; above it 429 with Retry-After (the refusal audited). Higher serves batch "
        "clients, lower bounds the CPU one key can take.")
    detect_burst: int = Field(30, ge=1, description="Detections a key may make at once "
                              "before the sustained rate applies.")
    verify_rate_per_minute: float = Field(
        120.0, ge=1, description="Sustained 1:1 verifications per key per minute; above it "
        "429 with Retry-After (audited). Higher serves batch clients, lower limits "
        "comparing many faces with one key.")
    verify_burst: int = Field(30, ge=1, description="Verifications a key may make at once "
                              "before the sustained rate applies.")
    enrol_rate_per_minute: float = Field(
        60.0, ge=1, description="Sustained enrolment uploads (requests of up to 20 images) "
        "per key per minute; above it 429 with Retry-After (audited). Higher speeds bulk "
        "enrolment over the API ('frvs enroll --from-folder' is not limited), lower "
        "bounds what one key can add.")
    enrol_burst: int = Field(20, ge=1, description="Enrolment uploads a key may make at "
                             "once before the sustained rate applies.")
    max_request_bytes: int = Field(
        100 * 1024 * 1024, ge=1024 * 1024, description="Largest request body (all files of "
        "a multipart upload together); larger answers 413 before it is read.")
    metrics_key: str | None = Field(
        None, min_length=16, description="Bearer token that lets a scraper on another "
        "machine read GET /metrics ('Authorization: Bearer <key>'). Unset: /metrics answers "
        "loopback clients only.")


class RetentionSettings(_Section):
    interval_s: float = Field(
        3600.0, ge=0, le=7 * 86_400, title="Retention run interval (s)",
        description="How often 'frvs serve' deletes what has outlived its retention "
        "(expired sightings and their crops, decided alerts' evidence past their "
        "gallery's retention, subjects past their gallery's retention), as the system "
        "principal 'retention'; 'frvs purge' runs the same on demand. Expired sightings "
        "are never shown meanwhile. Shorter deletes closer to the promised time at the "
        "cost of a scan per run; 0 turns the schedule off ('frvs purge' only).")
    event_log_hours: float = Field(
        72.0, ge=1, le=24 * 365, title="Event log kept (hours)",
        description="How long the live streams' event log and finished webhook deliveries "
        "are kept (they hold copies of alerts): a client can resume from an event this "
        "old; longer keeps more personal data.")


class DeviceSettings(_Section):
    clock_skew_s: float = Field(
        120.0, ge=0, le=86_400, title="Allowed device clock skew (s)",
        description="How far ahead of the server's clock an edge node's sighting times "
        "may be (and how far before its camera's registration); later or earlier reports "
        "are refused (400). Larger tolerates nodes without NTP, but lets a node date its "
        "reports further into the future.")
    submit_rate_per_minute: float = Field(
        600.0, ge=1, description="Sustained sighting submissions per device key per "
        "minute; above it 429 with Retry-After (audited). Higher drains a node's backlog "
        "faster after an outage; lower bounds what one stolen key can inject.")
    submit_burst: int = Field(120, ge=1, description="Submissions a device key may make "
                              "at once before the sustained rate applies.")


MoveName = Literal["left", "right", "up", "down"]
MOVE_NAMES: tuple[MoveName, ...] = ("left", "right", "up", "down")


class CheckSettings(_Section):
    """Identity checks at a counter (``frvs check``, ``POST /v1/checks``, the console's
    Identity check page): the operating point, the liveness challenge, what is kept."""

    target_fmr: float = Field(
        0.001, gt=0, lt=1, title="Declared false match rate",
        description="The FMR a match is decided at: the threshold is the pack's "
        "thresholds.<pack>.by_fmr entry for it ('frvs calibrate PAIRS --target-fmr F --write "
        "CONFIG' on your own labelled pairs), else the pack's default (the result says "
        "calibrated: false). Lower lets fewer impostors through but rejects more of the "
        "right customers.")
    require_calibrated: bool = Field(
        False, description="Refuse checks until a threshold is calibrated for target_fmr. "
        "On is the honest setting for production; off lets a new installation run.")
    min_frames: int = Field(5, ge=2, le=100, description="Fewest live frames (with a "
                            "face) a check accepts. More resists lucky poses but needs "
                            "a longer capture.")
    max_frames: int = Field(60, ge=2, le=300, description="Most live frames a check "
                            "accepts; each costs a detection and an embedding (~30 ms).")
    time_limit_s: float = Field(10.0, gt=0, le=120, description="The moves must be done "
                                "within this many seconds of the first frame.")
    turn_deg: float = Field(
        25.0, ge=5, le=80, title="Head turn (deg)",
        description="Change of yaw that counts as a turn to the left or right. Higher "
        "resists small movements of a flat picture better but asks customers for a "
        "bigger turn; the landmark pose estimate is coarse (about +-10 deg).")
    nod_deg: float = Field(15.0, ge=5, le=60, title="Nod (deg)",
                           description="Change of pitch that counts as up or down.")
    still_motion: float = Field(
        0.02, ge=0, le=1, description="A capture whose landmarks move less than this "
        "(in eye distances) between frames is a still image.")
    same_face_min: float = Field(
        0.3, ge=0, le=1, title="Same face in every frame",
        description="Every live frame must resemble the frame compared with the document "
        "at least this much (cosine similarity), so that the person doing the moves is "
        "the person matched (not another's face spliced or morphed in). Below the match "
        "threshold because a turned head compares worse with its frontal view; higher "
        "refuses more real customers who turn far.")
    ghost_max_ratio: float = Field(
        0.6, gt=0, le=1, description="A second face in the document up to this share "
        "of the largest one's area is its ghost copy; a larger one is refused as "
        "ambiguous.")
    mirrored_capture: bool = Field(
        False, description="The live frames reach FRVS mirrored (a capture device or "
        "app that flips them): left and right are swapped back. The console sends "
        "unmirrored frames (only its preview is mirrored).")
    moves: list[MoveName] = Field(
        default_factory=lambda: list(MOVE_NAMES), min_length=2,
        description="Moves the console draws its random challenge from.")
    @field_validator("moves")
    @classmethod
    def _two_different_moves(cls, moves: list[MoveName]) -> list[MoveName]:
        if len(set(moves)) < 2:
            raise ValueError("at least two different moves, so that a challenge can "
                             "alternate them")
        return moves

    challenge_length: int = Field(2, ge=1, le=4, description="Moves per challenge: "
                                  "more resists replays of a short clip, takes longer.")
    require_issued_challenge: bool = Field(
        True, description="API checks must answer a challenge the server issued to the "
        "same verifier (POST /v1/checks/challenges; the console always does): random by "
        "the server, answered once, within time_limit_s + challenge_slack_s of being "
        "issued by the server's clock. Off also accepts a challenge named by the client, "
        "with the client's frame times: a client holding a recording names the moves it "
        "shows and any times it likes (only for integrations whose capture you trust; "
        "'frvs check' runs in-process and is not affected).")
    challenge_slack_s: float = Field(
        30.0, ge=0, le=600, description="Time beyond time_limit_s an issued challenge "
        "stays answerable: camera start, upload and analysis. Shorter narrows the window "
        "for preparing an answer; too short refuses slow uploads.")
    keep_images: bool = Field(
        False, description="Keep the document image and the live frames (under "
        "media/checks/) for image_retention_days. Off: only digests and the decision.")
    image_retention_days: int = Field(30, ge=1, le=3650, description="How long kept "
                                      "images stay before retention deletes them.")
    purpose: str = Field("identity check at a counter", min_length=1, max_length=500,
                         description="The purpose recorded when a check names none.")
    contact: str = Field(
        "the data protection contact of the organisation that ran this check",
        min_length=1, max_length=500,
        description="Who a customer asks about their check (printed on the receipt).")


class PackThresholdSettings(_Section):
    """Thresholds of one pack calibrated on the deployer's data (``frvs calibrate --write``)."""

    default: float | None = Field(
        None, ge=-1, le=1, title="Operating threshold",
        description="Replaces the pack's shipped default for decisions. Higher lowers false "
        "matches but rejects more of the right people; calibrate it on your own data.")
    by_fmr: dict[float, float] = Field(
        default_factory=dict, description="Threshold per target false match rate, e.g. "
        "{0.001: 0.52}, as measured by 'frvs calibrate'.")
    source: str | None = Field(
        None, description="Which calibration set and target produced these numbers; "
        "evaluation reports quote it.")

    def override(self) -> ThresholdOverride:
        return ThresholdOverride(self.default, dict(self.by_fmr), self.source)


class Settings(BaseSettings):
    """The whole FRVS configuration."""

    model_config = SettingsConfigDict(
        env_prefix="FRVS_", env_nested_delimiter="__", extra="forbid"
    )

    data_dir: Path = Field(Path("data"), description="Where the store, media and keys live.")
    default_pack: str = Field("yunet_sface", description="Model pack used unless told otherwise.")
    packs: list[PackConfig] = Field(default_factory=default_pack_configs)
    thresholds: dict[str, PackThresholdSettings] = Field(
        default_factory=dict, title="Calibrated thresholds per pack",
        description="By pack name; overrides the thresholds a pack ships with.")
    detection: DetectionSettings = Field(default_factory=DetectionSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    devices: DeviceSettings = Field(default_factory=DeviceSettings)
    video: VideoSettings = Field(default_factory=VideoSettings)
    replica: ReplicaSettings = Field(default_factory=ReplicaSettings)
    checks: CheckSettings = Field(default_factory=CheckSettings)
    database_url: str | None = Field(
        None,
        title="Database URL",
        description="SQLAlchemy URL of the store. Default: SQLite at <data_dir>/frvs.db "
        "(embedded, one machine). 'postgresql+psycopg://user:pass@host/db' for several "
        "service processes or machines sharing one store.",
    )
    index: IndexSettings = Field(
        default_factory=ExactIndexSettings,
        title="Vector index",
        description="type: exact (default; exact, in memory, 9 ms a query at 1M), faiss_pq "
        "(compressed scan + exact re-rank, 3.5 ms at 10M), faiss (HNSW, approximate, "
        "weak on face galleries) or milvus (Milvus Lite file or a Milvus cluster).",
    )

    def store_url(self) -> str:
        """``database_url``, or the embedded SQLite file in the data directory."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'frvs.db').resolve()}"


def read_config_file(path: Path) -> dict[str, Any]:
    """The YAML mapping in ``path`` (empty for an empty file); a clear error otherwise."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"cannot read configuration {path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigurationError(f"{path}: the configuration must be a mapping")
    return loaded


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from defaults, YAML, environment and ``overrides`` (None values ignored)."""
    explicit = {k: v for k, v in overrides.items() if v is not None}
    path = config_file or (Path(os.environ["FRVS_CONFIG"]) if "FRVS_CONFIG" in os.environ else None)
    if path is None:
        data_dir = Path(explicit.get("data_dir") or os.environ.get("FRVS_DATA_DIR") or "data")
        candidate = data_dir / "frvs.yaml"
        path = candidate if candidate.is_file() else None
    values = read_config_file(path) if path is not None else {}
    try:
        # Init kwargs beat env in pydantic-settings; YAML must lose to env, so apply env
        # on top by building twice: env-only first, then merge.
        env_only = Settings().model_dump(exclude_unset=True)
        merged = _deep_merge(_deep_merge(values, env_only), explicit)
        return Settings(**merged)
    except ValidationError as exc:
        raise ConfigurationError(f"invalid configuration: {exc}") from exc


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
