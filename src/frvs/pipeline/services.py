"""Everything video in one bundle, built by the composition root."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from frvs.alerts.notify import AlertBus, WebhookNotifier
from frvs.alerts.service import AlertService, Clock
from frvs.attendance.service import AttendanceService
from frvs.core.caller import AuditContext
from frvs.galleries.ports import FaceAnalyser
from frvs.pipeline.camera import CAMERA_RUNNER, CameraRuntime
from frvs.pipeline.config import VideoSettings
from frvs.pipeline.events import EventRouter
from frvs.pipeline.matching import GalleryMatcher
from frvs.pipeline.supervisor import Supervisor
from frvs.storage.index.catalog import IndexCatalog
from frvs.storage.store import Store
from frvs.video.service import CameraService, SightingService
from frvs.video.source_policy import SourceOrigin, SourcePolicy
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
    webhooks: list[WebhookNotifier] = field(default_factory=list)

    def runtime(self, caller: AuditContext = CAMERA_RUNNER) -> CameraRuntime:
        """How cameras run here, recorded for ``caller`` (the service's camera runner
        unless a person runs the camera, as with 'frvs watch')."""
        return CameraRuntime(processor=self.settings.processor(), caller=caller,
                             source=SourceOptions(policy=self.sources,
                                                  origin=SourceOrigin.of(caller),
                                                  decoder_threads=self.settings.decoder_threads))

    def start(self) -> None:
        """Webhooks first (they receive), then the configured cameras."""
        for target in self.settings.webhook_targets():
            notifier = WebhookNotifier(target, self.sources)
            self.webhooks.append(notifier)
            self.alerts.add_notifier(notifier)
        self.supervisor.start(self.cameras.all(), self.runtime())

    def stop(self) -> None:
        """Cameras first (they produce), then webhooks, flushed."""
        self.supervisor.stop()
        for notifier in self.webhooks:
            notifier.close()


def build_video(settings: VideoSettings, store: Store, catalog: IndexCatalog,
                analyser: FaceAnalyser, clock: Clock, *,
                sources: SourcePolicy) -> VideoServices:
    alerts = AlertService(store, clock, settings.alert_defaults())
    bus = AlertBus()
    alerts.add_notifier(bus.publish)
    attendance = AttendanceService(store)
    sightings = SightingService(store, clock)
    matcher = GalleryMatcher(store, catalog, analyser)
    router = EventRouter(store, alerts, attendance, sightings)
    supervisor = Supervisor(analyser.packs, matcher, router)
    return VideoServices(settings, CameraService(store, clock, sources), sightings, alerts,
                         attendance, bus, matcher, router, supervisor, sources)
