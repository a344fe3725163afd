"""The ``video`` section of the configuration: how cameras are analysed, alert rules
for galleries without their own, and webhooks."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from frvs.alerts.notify import WebhookTarget
from frvs.alerts.service import AlertDefaults
from frvs.video.bestshot import ShotPolicy
from frvs.video.identity import IdentityPolicy
from frvs.video.processor import DetectionScale, ProcessorOptions
from frvs.video.source_policy import SourcePolicy


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookSettings(_Section):
    url: str = Field(description="Where alert notices are POSTed as JSON.")
    secret: str = Field(min_length=16, description="HMAC-SHA256 key signing each body "
                        "(header X-FRVS-Signature over 'timestamp.body').")
    attempts: int = Field(4, ge=1, le=20, description="Deliveries tried before giving up; "
                          "retries back off exponentially.")


class VideoSettings(_Section):
    detect_min_short_side: int = Field(
        720, ge=120, le=2160, title="Detection scale for small frames",
        description="Frames whose shorter side is below this are enlarged before detection, "
        "so distant (small) faces are found; costs detection time with the pixel count. "
        "Set to the stream's height to detect at native size.")
    detect_max_long_side: int = Field(
        960, ge=320, le=4096, description="Frames are detected with their longer side at "
        "most this (and never enlarged beyond it): 960 keeps every face large enough to "
        "embed (eyes >= 9 px) on 720p cameras at about 3/4 of the CPU of 1280; raise it "
        "to also find faces too small to identify.")
    min_inter_eye_px: float = Field(
        9.0, ge=4, le=100, description="Faces with eyes closer than this are never embedded "
        "for identity: lower reaches smaller faces, but their scores are mostly noise.")
    max_attempts: int = Field(10, ge=1, le=100, description="Identity attempts per track.")
    min_attempts: int = Field(2, ge=1, le=100, description="Attempts before any decision.")
    min_attempts_small: int = Field(4, ge=1, le=100, description="Attempts before deciding "
                                    "a track whose faces all have eyes under 16 px apart.")
    attempt_interval: float = Field(
        0.1, ge=0, le=10, description="Seconds of media time between two identity "
        "attempts of one track, whatever the sampling rate: shorter decides sooner, "
        "longer spreads the attempt budget over more of the track.")
    give_up_margin: float = Field(
        0.15, ge=0, le=2, description="After min_attempts, a track whose best fused score "
        "is further than this below every gallery's threshold is not embedded again unless "
        "its face grows 1.5x (a stranger): larger keeps trying on doubtful tracks at more "
        "embeddings per stranger, smaller risks giving up on a known face seen badly.")
    decoder_threads: int = Field(
        1, ge=0, le=16, description="Threads FFmpeg decodes each camera's stream with. 1 "
        "(the default) suits many cameras on few cores: the cameras keep every core busy, "
        "and only a single-threaded decoder can pass over the frames nothing refers to "
        "between analysed ones. 0 lets FFmpeg choose (about one per core), for a few "
        "large streams on many cores.")
    two_person_review: bool = Field(True, description="Alerts of galleries without their "
                                    "own rule need two different reviewers to confirm.")
    suppress_seconds: int = Field(300, ge=0, description="No second alert for the same "
                                  "subject on the same camera within this window.")
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    media_roots: list[Path] = Field(
        default_factory=list, title="Folders API cameras may read",
        description="Files and folders a camera source set through the API or the console "
        "may name lie under one of these (symlinks resolved). Empty (the default): API "
        "cameras are streams and devices only; the command line may still name any local "
        "file or folder. Never the data directory, whatever is listed here.")
    allow_private_sources: bool = Field(
        False, title="Allow private hosts",
        description="Let camera sources and webhooks reach hosts that resolve to "
        "loopback, link-local or private addresses (cameras on the local network). Off, "
        "only public addresses: nobody who can set a camera can probe the services "
        "around FRVS; on, anyone who can set one can reach that network.")

    def processor(self, galleries: tuple[str, ...] = ()) -> ProcessorOptions:
        return ProcessorOptions(
            galleries=galleries,
            detection=DetectionScale(self.detect_min_short_side, self.detect_max_long_side),
            shots=ShotPolicy(min_inter_eye_px=self.min_inter_eye_px),
            identity=IdentityPolicy(max_attempts=self.max_attempts,
                                    min_attempts=self.min_attempts,
                                    min_attempts_small=max(self.min_attempts,
                                                           self.min_attempts_small),
                                    attempt_interval=self.attempt_interval,
                                    give_up_margin=self.give_up_margin),
        )

    def alert_defaults(self) -> AlertDefaults:
        return AlertDefaults(self.two_person_review, self.suppress_seconds)

    def source_policy(self, data_dir: Path, store_url: str) -> SourcePolicy:
        """What camera sources and webhooks may reach: never the data directory nor the
        SQLite store (wherever it is), files under ``media_roots`` for API callers."""
        protected = [data_dir]
        if store_url.startswith("sqlite:///"):
            protected.append(Path(store_url.removeprefix("sqlite:///")))
        return SourcePolicy(tuple(protected), tuple(self.media_roots),
                            self.allow_private_sources)

    def webhook_targets(self) -> list[WebhookTarget]:
        return [WebhookTarget(w.url, w.secret, w.attempts) for w in self.webhooks]
