"""The node registry on a real store: a node's first heartbeat and its new drops are
audited (drops once per increase), it goes offline without heartbeats, lags when its
backlog is old, shows its clock offset, and may only name cameras its key is bound to.
The centre asks for crops where a watch list needs them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from callers import LOCAL
from sqlalchemy import select
from video_app import make_app

from frvs.core.caller import AuditContext, Role
from frvs.core.errors import PermissionDeniedError
from frvs.galleries.models import GalleryKind, GallerySpec
from frvs.oversight.nodes import Heartbeat, NodeRegistry
from frvs.oversight.tables import AuditEntryRow
from frvs.video.service import CameraSpec

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _beat(at: datetime, *, crops: int = 0, reports: int = 0, cameras: tuple[str, ...] = ("gate",),
          oldest: datetime | None = None, skew: float = 0.0) -> Heartbeat:
    return Heartbeat("light-7", "1.2.3", "sface@1/128/cosine", cameras, "pole 7", 3, 4096,
                     oldest, crops, reports, at + timedelta(seconds=skew))


def test_heartbeats_registry_and_audit(tmp_path: Path) -> None:
    app = make_app(tmp_path / "data")
    app.galleries.create(LOCAL, GallerySpec("wanted", GalleryKind.WATCH_LIST, purpose="t",
                                            legal_basis="t"))
    app.galleries.create(LOCAL, GallerySpec("staff", GalleryKind.ATTENDANCE))
    app.video.cameras.add(LOCAL, CameraSpec("gate", "edge", ("wanted",)))
    app.video.cameras.add(LOCAL, CameraSpec("office", "edge", ("staff",)))
    issued = app.oversight.keys.create(LOCAL, Role.DEVICE, "light-7", cameras=["gate", "office"])
    device = AuditContext(app.oversight.keys.authenticate(issued.token).actor())
    now = [T0]
    registry = NodeRegistry(app.store, app.oversight.keys, app.video.cameras,
                            clock=lambda: now[0])

    answer = registry.heartbeat(device, _beat(T0, skew=200.0))
    assert {k: v.crops for k, v in answer.cameras.items()} == {"gate": True, "office": False}
    assert answer.clock_offset_s == pytest.approx(200.0) and not answer.clock_ok
    registry.heartbeat(device, _beat(T0, crops=2, reports=1))
    registry.heartbeat(device, _beat(T0, crops=2, reports=1))  # nothing new: no entry
    registry.heartbeat(device, _beat(T0, crops=5, reports=1, oldest=T0 - timedelta(hours=1)))
    [node] = registry.nodes()
    assert (node.name, node.status, node.lagging, node.clock_ok) == ("light-7", "online",
                                                                     True, True)
    assert (node.dropped_crops, node.dropped_reports, node.backlog) == (5, 1, 3)
    now[0] = T0 + timedelta(seconds=61)
    assert registry.nodes()[0].status == "offline"

    with pytest.raises(PermissionDeniedError):
        registry.heartbeat(device, _beat(T0, cameras=("gate", "lobby")))
    with app.store.unit() as uow:
        rows = [(r.action, r.outcome, r.result) for r in uow.session.scalars(
            select(AuditEntryRow).where(AuditEntryRow.action.like("edge.%"))
            .order_by(AuditEntryRow.seq))]
    assert [(a, o) for a, o, _ in rows] == [("edge.register", "ok"), ("edge.drops", "ok"),
                                            ("edge.drops", "ok"), ("edge.heartbeat", "refused")]
    assert [(r["crops"], r["reports"]) for a, _, r in rows if a == "edge.drops"] == [(2, 1),
                                                                                     (3, 0)]
    app.stop()
