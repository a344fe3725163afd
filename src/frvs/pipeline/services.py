"""Everything video in one bundle, built by the composition root."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from frvs.alerts.mqtt import MqttPublisher
from frvs.alerts.notify import AlertBus, WebhookNotifier
from frvs.alerts.service import AlertService
from frvs.attendance.service import AttendanceService
from frvs.core.caller import AuditContext
from frvs.core.times import Clock
from frvs.galleries.ports import FaceAnalyser
from frvs.pipeline.camera import CAMERA_RUNNER, CameraRuntime
from frvs.pipeline.config import VideoSettings
from frvs.pipeline.events import EventRouter
from frvs.pipeline.gallery_matcher import GalleryMatcher
from frvs.pipeline.leases import CameraLeases, LeaseBook, LeaseTerms
from frvs.pipeline.supervisor import Supervisor
from frvs.pipeline.sync import CameraSync
from frvs.storage.index.catalog import IndexCatalog
from frvs.storage.store import Store
from frvs.video.service import CameraService, CameraSpec, SightingService
from frvs.video.source_policy import EDGE_SOURCE, SourceOrigin, SourcePolicy
from frvs.video.sources import SourceOptions

logger = logging.getLogger(__name__)


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
        media = self.store.media if self.store is not None else None
        if media is None or not media.exists(path):
            return None
        return (media.root / path).read_bytes()

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
                sources: SourcePolicy, terms: LeaseTerms | None = None) -> VideoServices:
    alerts = AlertService(store, clock, settings.alert_defaults())
    bus = AlertBus()
    alerts.add_notifier(bus.publish)
    attendance = AttendanceService(store)
    sightings = SightingService(store, clock)
    matcher = GalleryMatcher(store, catalog, analyser)
    router = EventRouter(store, alerts, attendance, sightings)
    supervisor = Supervisor(analyser.packs, matcher, router)
    cameras = CameraService(store, clock, sources)
    leases = CameraLeases(LeaseBook(store, clock), supervisor, analysed_here(cameras),
                          terms or LeaseTerms(), clock)
    router.fence = leases.fence  # a replica that lost a camera's lease raises no alert
    return VideoServices(settings, cameras, sightings, alerts, attendance, bus, matcher,
                         router, supervisor, sources, leases, store=store)
