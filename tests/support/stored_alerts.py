"""Alerts stored directly in a test's store (no camera, no audit entry), through the
alerts' repository: what review, retention and authorization tests start from."""

from __future__ import annotations

from datetime import UTC, datetime

from frvs.alerts.models import AlertStatus
from frvs.alerts.repository import AlertRepository, NewAlert
from frvs.storage.store import Store


def stored_alert(store: Store, gallery: str, subject: str = "anchor", *,
                 camera: str = "gate", at: datetime | None = None, score: float = 0.9,
                 crop_path: str | None = None, status: AlertStatus = AlertStatus.NEW,
                 two_person: bool = True) -> int:
    """Store an alert about ``subject`` of the existing ``gallery``: its id."""
    at = at or datetime.now(UTC)
    with store.unit(write=True) as uow:
        alerts = uow.repo(AlertRepository)
        alert = alerts.add(NewAlert(camera, 1, gallery, subject, score, 0.4, 1, at, 0.0, 0.9,
                                    crop_path, two_person), at)
        if status is not AlertStatus.NEW:
            alerts.decide(alert.id, status, at)
        return alert.id
