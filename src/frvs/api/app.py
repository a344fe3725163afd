"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import Depends, FastAPI

from frvs.api.docs import mount_offline_docs
from frvs.api.limits import HardeningMiddleware, Rate, RateLimits
from frvs.api.metrics import router as metrics_router
from frvs.api.problems import install_problem_handlers
from frvs.api.query import refuse_unknown_query
from frvs.api.routes import (
    audit,
    cameras,
    checks,
    edge,
    events,
    evidence,
    faces,
    galleries,
    keys,
    search,
    stats,
    subjects,
    video,
    webhooks,
)
from frvs.api.schemas import Health
from frvs.app import Application
from frvs.storage.rates import SharedBuckets
from frvs.web import mount_console


def frvs_version() -> str:
    try:
        return version("frvs")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def create_api(application: Application) -> FastAPI:
    """An ASGI app serving ``application``; its lifespan starts and stops it."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        application.start()
        try:
            yield
        finally:
            application.stop()

    api = FastAPI(
        title="FRVS",
        version=frvs_version(),
        description="Face recognition for visual surveillance, with oversight: every "
        "biometric operation audited, every alert reviewed by a person.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load from a CDN; mount_offline_docs below
        redoc_url=None,
        dependencies=[Depends(refuse_unknown_query)],  # ?typo=1 is a 400, not ignored
    )
    api.state.frvs = application
    limits = application.settings.api
    devices = application.settings.devices  # one bucket per device key, for submissions
    api.state.rate_limits = RateLimits({
        "search": Rate(limits.search_rate_per_minute, limits.search_burst),
        "detect": Rate(limits.detect_rate_per_minute, limits.detect_burst),
        "verify": Rate(limits.verify_rate_per_minute, limits.verify_burst),
        "enrol": Rate(limits.enrol_rate_per_minute, limits.enrol_burst),
        "submit": Rate(devices.submit_rate_per_minute, devices.submit_burst),
    }, shared=SharedBuckets(application.store)
        if application.store.database.dialect == "postgresql" else None)
    api.add_middleware(HardeningMiddleware, max_body=limits.max_request_bytes,
                       timeout_s=limits.request_timeout_s)
    install_problem_handlers(api)
    mount_offline_docs(api)

    @api.get("/healthz", operation_id="health", response_model=Health, tags=["service"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok", "version": frvs_version()}

    if not application.video.leases.replica.serves_api:
        # A replica for cameras only (--role cameras) answers for its health alone.
        api.include_router(cameras.status_only())
        return api
    api.include_router(faces.router)
    for module in (galleries, subjects, search, cameras, video, events, keys, audit, stats):
        api.include_router(module.router)
    api.include_router(metrics_router)  # GET /metrics, Prometheus text
    api.include_router(evidence.router)  # pictures and camera start, added for the console
    api.include_router(edge.router)  # edge nodes: heartbeats and the node registry
    api.include_router(webhooks.router)  # managed webhooks, delivered by any replica
    api.include_router(checks.router)  # identity checks at a counter (verifier keys)
    # The web console (GET /, /console/...): HTML for people over the same /v1 routes.
    mount_console(api)
    return api
