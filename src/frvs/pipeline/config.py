"""The ``video`` section of the configuration: how cameras are analysed, alert rules
for galleries without their own, and webhooks."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from frvs.alerts.mqtt import MqttTarget
from frvs.alerts.notify import WebhookTarget
from frvs.alerts.service import AlertDefaults
from frvs.pipeline.leases import LeaseTerms, ReplicaRole
from frvs.video.bestshot import ShotPolicy
from frvs.video.identity import IdentityPolicy
from frvs.video.processor import DetectionScale, ProcessorOptions
from frvs.video.source_policy import SourcePolicy
from frvs.video.sweep import SweepPolicy

# Each default has one home, the record the setting configures; the fields below add
# bounds, titles and the trade-offs.
_SCALE = DetectionScale()
_SWEEP = SweepPolicy()
_SHOTS = ShotPolicy()
_IDENTITY = IdentityPolicy()
_ALERTS = AlertDefaults()
_LEASE = LeaseTerms()


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookSettings(_Section):
    url: str = Field(description="Where alert notices are POSTed as JSON.")
    secret: str = Field(min_length=16, description="HMAC-SHA256 key signing each body "
                        "(header X-FRVS-Signature over 'timestamp.body').")
    attempts: int = Field(4, ge=1, le=20, description="Deliveries tried before giving up; "
                          "retries back off exponentially.")


class ReplicaSettings(_Section):
    """This process among several ``frvs serve`` replicas on one PostgreSQL store."""

    name: str | None = Field(
        None, max_length=200, title="Replica name",
        description="Unique among the replicas; shown as the 'replica' running each "
        "camera. Default: host:port of 'frvs serve'.")
    role: ReplicaRole = Field(
        ReplicaRole.ALL, description="all (API and cameras), api (no cameras) or cameras "
        "(cameras, with only /healthz and camera status over HTTP).")
    lease_seconds: float = Field(
        _LEASE.seconds, ge=2, le=300, title="Camera lease (s)",
        description="How long a replica's hold on a camera lasts without renewal. A "
        "killed replica's cameras run elsewhere within lease_seconds + scan_seconds; "
        "shorter fails over sooner but loses cameras on a store that stalls that long.")
    scan_seconds: float = Field(
        _LEASE.scan_seconds, ge=0.2, le=60,
        description="How often a replica looks for cameras to take over (one small query "
        "each time).")

    def terms(self) -> LeaseTerms:
        return LeaseTerms(self.lease_seconds, self.scan_seconds)


class MqttSettings(_Section):
    host: str = Field(description="The MQTT broker's host name or address.")
    port: int = Field(1883, ge=1, le=65535)
    prefix: str = Field("frvs", min_length=1, pattern=r"^[^#+]+$", description="Topic "
                        "prefix: <prefix>/available, /alerts, /reviews, /sightings, "
                        "/cameras/<camera>/status.")
    username: str | None = None
    password: str | None = None
    client_id: str | None = Field(None, description="MQTT client id (default: random).")
    tls: bool = Field(False, description="Connect with TLS (system CA certificates).")
    sightings: bool = Field(False, description="Also publish each ended track's sighting "
                            "(who, when, which camera): off by default, sightings of "
                            "strangers are personal data.")
    sighting_crops: bool = Field(False, description="With sightings, include the face crop "
                                 "(base64 JPEG) when the camera keeps crops.")
    status_interval_s: float = Field(10.0, ge=0, le=3600, description="How often each "
                                     "camera's status is published (retained); 0: never.")
    reconnect_max_s: int = Field(60, ge=1, le=3600, description="Longest wait between "
                                 "reconnection attempts (from 1 s, doubling).")


class VideoSettings(_Section):
    detect_min_short_side: int = Field(
        _SCALE.min_short_side, ge=120, le=2160, title="Detection scale for small frames",
        description="Frames whose shorter side is below this are enlarged before detection, "
        "so distant (small) faces are found; costs detection time with the pixel count. "
        "Set to the stream's height to detect at native size.")
    detect_max_long_side: int = Field(
        _SCALE.max_long_side, ge=320, le=4096,
        description="Frames are detected with their longer side at most this (and never enlarged "
        "beyond it): 960 keeps every face large enough to embed (eyes >= 9 px) on 720p cameras at "
        "about 3/4 of the CPU of 1280; raise it to also find faces too small to identify.")
    sweep_interval: float = Field(
        _SWEEP.interval, ge=0, le=10, title="Whole-frame detection interval (s)",
        description="Seconds of media time between two detections over the whole frame; "
        "between them only the areas around faces already tracked are searched. Longer "
        "saves detector time on quiet cameras but finds an arriving face later (a face in "
        "view for less than this may be missed); 0 searches every analysed frame whole.")
    min_inter_eye_px: float = Field(
        _SHOTS.min_inter_eye_px, ge=4, le=100,
        description="Faces with eyes closer than this are never embedded for identity: lower "
        "reaches smaller faces, but their scores are mostly noise.")
    max_attempts: int = Field(_IDENTITY.max_attempts, ge=1, le=100,
                              description="Identity attempts per track.")
    min_attempts: int = Field(_IDENTITY.min_attempts, ge=1, le=100,
                              description="Attempts before any decision.")
    min_attempts_small: int = Field(
        _IDENTITY.min_attempts_small, ge=1, le=100,
        description="Attempts before deciding a track whose faces all have eyes under "
        "16 px apart.")
    attempt_interval: float = Field(
        _IDENTITY.attempt_interval, ge=0, le=10,
        description="Seconds of media time between two identity attempts of one track, whatever "
        "the sampling rate: shorter decides sooner, longer spreads the attempt budget over more "
        "of the track.")
    give_up_margin: float = Field(
        _IDENTITY.give_up_margin, ge=0, le=2,
        description="After min_attempts, a track whose best fused score is further than this "
        "below every gallery's threshold is not embedded again unless its face grows 1.5x (a "
        "stranger): larger keeps trying on doubtful tracks at more embeddings per stranger, "
        "smaller risks giving up on a known face seen badly.")
    decoder_threads: int = Field(
        1, ge=0, le=16, description="Threads FFmpeg decodes each camera's stream with. 1 "
        "(the default) suits many cameras on few cores: the cameras keep every core busy, "
        "and only a single-threaded decoder can pass over the frames nothing refers to "
        "between analysed ones. 0 lets FFmpeg choose (about one per core), for a few "
        "large streams on many cores.")
    two_person_review: bool = Field(
        _ALERTS.two_person,
        description="Alerts of galleries without their own rule need two different "
        "reviewers to confirm.")
    suppress_seconds: int = Field(
        _ALERTS.suppress_seconds, ge=0,
        description="No second alert for the same subject on the same camera within this "
        "window.")
    camera_sync_s: float = Field(
        2.0, ge=0, le=3600, description="How often 'frvs serve' looks for cameras added, "
        "changed or removed (by another process, the API or the console) and starts, "
        "restarts or stops them; 0: only at service start.")
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    mqtt: MqttSettings | None = Field(None, description="Publish alerts, reviews, camera "
                                      "status (and optionally sightings) to this broker.")
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
            sweep=SweepPolicy(interval=self.sweep_interval),
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

    def mqtt_target(self) -> MqttTarget | None:
        m = self.mqtt
        if m is None:
            return None
        return MqttTarget(m.host, m.port, m.prefix, m.username, m.password, m.client_id,
                          m.tls, sightings=m.sightings, sighting_crops=m.sighting_crops,
                          status_interval_s=m.status_interval_s,
                          reconnect_max_s=m.reconnect_max_s)

    def webhook_targets(self) -> list[WebhookTarget]:
        return [WebhookTarget(w.url, w.secret, w.attempts) for w in self.webhooks]
