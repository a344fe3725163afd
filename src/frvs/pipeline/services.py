"""Everything video in one bundle, built by the composition root, and the use cases that
need more than one of its parts: starting a registered camera here now, a camera's latest
frame, the enrolled photo an alert matched."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2

from frvs.alerts.mqtt import MqttPublisher
from frvs.alerts.notify import AlertBus, WebhookNotifier
from frvs.alerts.service import AlertService
from frvs.attendance.service import AttendanceService
from frvs.core.caller import AuditContext, AuditDraft, record_refusal
from frvs.core.errors import NotFoundError
from frvs.core.times import Clock
from frvs.galleries.ports import FaceAnalyser
from frvs.galleries.service import GalleryService
from frvs.imaging.encode import encode_jpeg
from frvs.pipeline.camera import CAMERA_RUNNER, CameraRuntime
from frvs.pipeline.config import VideoSettings
from frvs.pipeline.events import EventRouter
from frvs.pipeline.gallery_matcher import GalleryMatcher
from frvs.pipeline.leases import CameraLeases, LeaseBook, LeaseTerms
from frvs.pipeline.supervisor import Supervisor
from frvs.pipeline.sync import CameraSync
from frvs.storage.index.catalog import IndexCatalog
from frvs.storage.store import Store
from frvs.video.models import CameraStatus
from frvs.video.service import CameraService, CameraSpec, SightingService
from frvs.video.source_policy import (
    EDGE_SOURCE,
    SourceOrigin,
    SourcePolicy,
    SourceRefusedError,
)
from frvs.video.sources import SourceOptions

logger = logging.getLogger(__name__)

THUMBNAIL_WIDTH = 480
"""The widest a camera's latest frame is served (the console's thumbnail)."""


@dataclass
class VideoServices:
    settings: VideoSettings
    cameras: CameraService
    sightings: SightingService
    alerts: AlertService
    attendance: AttendanceService
    bus: AlertBus
    matcher: GalleryMatcher
    router: EventRouter
    supervisor: Supervisor
    sources: SourcePolicy
    leases: CameraLeases
    webhooks: list[WebhookNotifier] = field(default_factory=list)
    store: Store | None = None
    mqtt: MqttPublisher | None = None
    sync: CameraSync | None = None
    galleries: GalleryService | None = None
    _sinks_started: bool = field(default=False, repr=False)

    def runtime(self, caller: AuditContext = CAMERA_RUNNER) -> CameraRuntime:
        """How cameras run here, recorded for ``caller`` (the service's camera runner
        unless a person runs the camera, as with 'frvs watch')."""
        return CameraRuntime(processor=self.settings.processor(), caller=caller,
                             source=SourceOptions(policy=self.sources,
                                                  origin=SourceOrigin.of(caller),
                                                  decoder_threads=self.settings.decoder_threads))

    def start_sinks(self) -> None:
        """The configured alert sinks (webhooks, MQTT), once: what 'frvs serve' and
        'frvs watch' both deliver to."""
        if self._sinks_started:
            return
        self._sinks_started = True
        for target in self.settings.webhook_targets():
            notifier = WebhookNotifier(target, self.sources)
            self.webhooks.append(notifier)
            self.alerts.add_notifier(notifier)
        broker = self.settings.mqtt_target()
        if broker is not None:
            self.mqtt = MqttPublisher(broker, status=self.supervisor.status,
                                      read_crop=self._read_crop)
            self.alerts.add_notifier(self.mqtt)
            publisher = self.mqtt
            self.router.listen(lambda event: publisher.on_event(event.document()))
            self.mqtt.start()

    def _read_crop(self, path: str) -> bytes | None:
        return None if self.store is None else self.store.media.read(path)

    def start_camera(self, caller: AuditContext, name: str) -> CameraStatus:
        """Start registered camera ``name`` in this process now, for ``caller`` (again,
        once a finite source has ended). ``SourceRefusedError`` when the source policy
        refuses its source (audited as refused; checked again when opened, but refused
        here so the operator hears why at once). Leased to this replica first, so a
        camera never runs on two replicas at once; then ``camera.run_requested`` is
        audited with the caller (the run itself is recorded as ``camera.start`` when it
        begins). Returns the camera's status."""
        store = self._store()
        spec = self.cameras.get(name)
        inputs = {"camera": spec.name, "galleries": list(spec.galleries)}
        try:
            self.sources.check(spec.source_url, SourceOrigin.SERVICE)
        except SourceRefusedError as exc:
            record_refusal(store, caller, "camera.run_requested", inputs, exc)
            raise
        self.leases.run_here(spec, self.runtime())
        store.audit(caller, AuditDraft("camera.run_requested", inputs, {}))
        return self.supervisor.camera(name).status()

    def watch(self, spec: CameraSpec, caller: AuditContext) -> CameraStatus:
        """Run ``spec`` in this process for ``caller`` until its source ends or Ctrl-C
        ('frvs watch': no lease, the camera need not be registered), delivering to the
        configured alert sinks as 'frvs serve' does; everything is stopped afterwards.
        Returns the camera's final status."""
        self.start_sinks()
        try:
            self.supervisor.start_camera(spec, self.runtime(caller))
            while not self.supervisor.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
        return self.supervisor.camera(spec.name).status()

    def latest_frame(self, name: str, max_width: int = THUMBNAIL_WIDTH) -> bytes:
        """Running camera ``name``'s latest analysed frame as JPEG, scaled down to at most
        ``max_width`` pixels wide; ``NotFoundError`` before its first frame."""
        frame = self.supervisor.camera(name).latest
        if frame is None:
            raise NotFoundError(f"camera {name!r} has not analysed a frame yet")
        height, width = frame.image.shape[:2]
        if width <= max_width:
            return encode_jpeg(frame.image)
        size = (max_width, max(1, round(height * max_width / width)))
        return encode_jpeg(cv2.resize(frame.image, size, interpolation=cv2.INTER_AREA))

    def alert_subject_photo(self, caller: AuditContext, alert_id: int) -> bytes:
        """The enrolled photo of the subject alert ``alert_id`` matched, as JPEG: how a
        reviewer sees an enrolment photo, only in an alert's context. Each download is
        audited as ``subject.photo`` with the alert's id (an unknown alert as refused)."""
        if self.galleries is None:
            raise RuntimeError("the video services were built without the galleries")
        try:
            alert = self.alerts.get(alert_id)
        except NotFoundError as exc:
            record_refusal(self._store(), caller, "subject.photo", {"alert_id": alert_id},
                           exc)
            raise
        return self.galleries.photo(caller, alert.gallery, alert.subject,
                                    context={"alert_id": alert_id})

    def _store(self) -> Store:
        if self.store is None:
            raise RuntimeError("the video services were built without a store")
        return self.store

    def start(self) -> None:
        """Alert sinks first (they receive), then this replica's share of the cameras:
        each enabled camera runs on exactly one replica (its lease), and the ones added,
        changed or removed while the service runs start, restart or stop at once."""
        self.start_sinks()
        runtime = self.runtime()
        self.leases.start(runtime)
        if self.leases.replica.runs_cameras:
            self.sync = CameraSync(analysed_here(self.cameras), self.leases, self.supervisor,
                                   self.runtime, self.settings.camera_sync_s)
            self.sync.start()

    def stop(self) -> None:
        """Cameras first (they produce; their leases released), then the alert sinks,
        flushed."""
        if self.sync is not None:
            self.sync.stop()
        self.leases.stop()
        for notifier in self.webhooks:
            notifier.close()
        if self.mqtt is not None:
            self.mqtt.close()


def analysed_here(cameras: CameraService) -> Callable[[], list[CameraSpec]]:
    """The registered cameras a service process runs itself: all but those an edge node
    feeds (the centre never opens their source)."""
    return lambda: [spec for spec in cameras.all() if spec.source_url != EDGE_SOURCE]


def build_video(settings: VideoSettings, store: Store, catalog: IndexCatalog,
                analyser: FaceAnalyser, clock: Clock, *,
                sources: SourcePolicy, terms: LeaseTerms | None = None,
                galleries: GalleryService | None = None) -> VideoServices:
    """The video services over ``store``; ``galleries`` serves the enrolled photos that
    alerts' reviewers see."""
    alerts = AlertService(store, clock, settings.alert_defaults())
    bus = AlertBus()
    alerts.add_notifier(bus.publish)
    attendance = AttendanceService(store)
    sightings = SightingService(store, clock)
    matcher = GalleryMatcher(store, catalog, analyser)
    router = EventRouter(store, alerts, attendance, sightings)
    supervisor = Supervisor(analyser.packs, matcher, router)
    cameras = CameraService(store, clock, sources, matcher)
    leases = CameraLeases(LeaseBook(store, clock), supervisor, analysed_here(cameras),
                          terms or LeaseTerms(), clock)
    router.fence = leases.fence  # a replica that lost a camera's lease raises no alert
    return VideoServices(settings, cameras, sightings, alerts, attendance, bus, matcher,
                         router, supervisor, sources, leases, store=store,
                         galleries=galleries)
