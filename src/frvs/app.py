"""Composition root: build every service from the configuration, start and stop them."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from frvs.alerts.webhooks import WebhookService, WebhookWorker
from frvs.checks.models import CheckPolicy, Move
from frvs.checks.service import IdentityChecks
from frvs.config.settings import Settings
from frvs.core.times import utc_now
from frvs.faces.service import EngineOptions, FaceEngine
from frvs.galleries.enrolment import EnrolContext
from frvs.galleries.service import GalleryService
from frvs.imaging.budget import PixelBudget
from frvs.imaging.decode import ImageLimits
from frvs.models.registry import PackRegistry
from frvs.oversight.audit import AuditTrail
from frvs.oversight.edge import DevicePolicy, EdgeIntake
from frvs.oversight.export import SubjectRights
from frvs.oversight.keys import KeyService
from frvs.oversight.retention import Retention, RetentionSchedule
from frvs.oversight.service import Oversight
from frvs.oversight.sightings import SightingSearch
from frvs.oversight.stats import StatsService
from frvs.pipeline.audit import CameraRunAuditor
from frvs.pipeline.leases import Replica
from frvs.pipeline.services import VideoServices, build_video
from frvs.storage.index.catalog import IndexCatalog
from frvs.storage.store import Store

logger = logging.getLogger(__name__)


@dataclass
class Application:
    """Everything one FRVS process runs, built from one ``Settings``."""

    settings: Settings
    packs: PackRegistry
    engine: FaceEngine
    image_limits: ImageLimits
    store: Store
    galleries: GalleryService
    oversight: Oversight
    video: VideoServices
    retention: Retention
    retention_schedule: RetentionSchedule
    edge: EdgeIntake
    pixel_budget: PixelBudget
    webhooks: WebhookService
    webhook_queue: WebhookWorker
    checks: IdentityChecks

    def start(self) -> None:
        """Open the store (migrating it) and rebuild the vector indexes from it."""
        logger.info("FRVS starting with data dir %s", self.settings.data_dir)
        self.store.open()
        self.galleries.warm()
        self.webhook_queue.start()  # any replica delivers the store's queued webhooks
        self.video.start()  # each camera run is audited by the supervisor's run listener
        self.retention_schedule.start()  # every retention.interval_s, as system:retention

    def stop(self) -> None:
        """Stop background work in reverse order, then close the store."""
        self.retention_schedule.stop()
        self.video.stop()
        self.webhook_queue.stop()
        try:
            self.galleries.save_snapshots()
        except Exception:  # a snapshot is an optimisation: never let it block a clean stop
            logger.exception("could not save index snapshots at shutdown")
        self.store.close()
        logger.info("FRVS stopped")


def build_application(settings: Settings) -> Application:
    """Wire the services; model packs load lazily on first use."""
    packs = PackRegistry(settings.packs, settings.default_pack,
                         {name: t.override() for name, t in settings.thresholds.items()})
    limits = settings.limits.image_limits()
    # Nothing below touches the disk or a model until used: 'frvs gallery list' stays fast.
    store = Store(settings.store_url(), settings.data_dir / "media")
    # Every use case takes its caller explicitly; operations that write record their
    # entry through the store's journal, in the same transaction as their writes.
    trail = AuditTrail(store, utc_now, settings.audit.retention_days)
    store.attach_journal(trail)
    engine = FaceEngine(packs, EngineOptions(settings.detection.max_side,
                                             settings.detection.reduced_decode), store)
    catalog = IndexCatalog(store, settings.index, settings.data_dir)
    # One pixel budget for the process: every upload's decode and analysis share it.
    budget = settings.limits.pixel_budget()
    context = EnrolContext(engine, settings.quality.minimums(), limits, utc_now, budget)
    galleries = GalleryService(store, catalog, context)
    oversight = Oversight(trail, KeyService(store, utc_now),
                          SubjectRights(store, galleries, trail), StatsService(trail),
                          SightingSearch(store, trail, engine, utc_now))
    sources = settings.video.source_policy(settings.data_dir, settings.store_url())
    video = build_video(settings.video, store, catalog, engine, utc_now, sources=sources,
                        terms=settings.replica.terms(), galleries=galleries)
    oversight.attach_video(store)
    replica = settings.replica
    video.leases.bind(Replica(replica.name or f"{settings.server.host}:{settings.server.port}",
                              replica.role))
    # Each camera run's start and end, 'frvs watch' included (EU AI Act Art. 12(3)).
    video.supervisor.add_run_listener(CameraRunAuditor(store))
    check_settings = settings.checks.model_dump()
    moves = tuple(Move(m) for m in check_settings["moves"])
    checks = IdentityChecks(engine, store, CheckPolicy(**check_settings | {"moves": moves}),
                            utc_now)
    # Kept images of identity checks (only if checks.keep_images) go with each run.
    retention = Retention(store, galleries, video.sightings, utc_now,
                          event_log_hours=settings.retention.event_log_hours,
                          purgers=(checks.purge_expired,))
    schedule = RetentionSchedule(retention, settings.retention.interval_s, utc_now)
    edge = EdgeIntake(video, store, engine, oversight.keys, clock=utc_now,
                      policy=DevicePolicy(settings.devices.clock_skew_s))
    # Webhooks managed over the API and CLI, delivered from the store by any replica.
    webhooks = WebhookService(store, utc_now, sources)
    queue = WebhookWorker(store, utc_now, sources)
    return Application(settings, packs, engine, limits, store, galleries, oversight, video,
                       retention, schedule, edge, budget, webhooks, queue, checks)
