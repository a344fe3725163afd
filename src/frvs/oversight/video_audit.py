"""The video side of the audit trail: alerts raised (with the input that led to the
match) and reviewed (with who verified it). Camera runs (EU AI Act Art. 12(3): start
and end of each use) are audited by ``frvs.pipeline.audit.CameraRunAuditor``.

Alerts are audited by a notifier on ``AlertService``, so every path that raises or
reviews one is covered. Whoever reviews through the API is bound in ``acting``: the
route sets the caller's context, the notifier reads it (context variables follow the
call into the worker thread); otherwise the local user (CLI) is the actor.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from frvs.alerts.notify import AlertNotice
from frvs.oversight.audit import AuditDraft, AuditTrail, subject_ref
from frvs.oversight.models import AuditContext
from frvs.oversight.service import SYSTEM

_acting: ContextVar[AuditContext | None] = ContextVar("frvs_audit_acting", default=None)


@contextmanager
def acting(context: AuditContext) -> Iterator[None]:
    """Attribute what notifiers audit inside the block to ``context``."""
    token = _acting.set(context)
    try:
        yield
    finally:
        _acting.reset(token)


class AlertAuditor:
    """An ``AlertService`` notifier appending ``alert.raise`` / ``alert.review``."""

    def __init__(self, trail: AuditTrail, local: AuditContext) -> None:
        self._trail = trail
        self._local = local

    def __call__(self, notice: AlertNotice) -> None:
        alert = notice.alert
        ref = subject_ref(alert.gallery, alert.subject)
        inputs = {"alert_id": alert.id, "camera": alert.camera, "gallery": alert.gallery,
                  "track": alert.track_id}
        if notice.kind == "raised":
            # The input that led to the match: camera, track, time, score vs threshold
            # and where the best shot (the evidence) is kept; never the image itself.
            result = {"subject": alert.subject, "score": round(alert.score, 6),
                      "threshold": alert.threshold, "at": alert.at.isoformat(),
                      "quality": round(alert.quality, 4), "evidence": alert.crop_path,
                      "two_person": alert.two_person}
            self._trail.append(SYSTEM, AuditDraft("alert.raise", inputs, result, [ref]))
            return
        last = alert.reviews[-1] if alert.reviews else None
        result = {"decision": alert.status.value,
                  "verdict": last.verdict.value if last else None,
                  "reviewer": last.reviewer if last else None,
                  "note": (last.note or "")[:500] if last else None,
                  "reviews": len(alert.reviews)}
        context = _acting.get() or self._local
        self._trail.append(context, AuditDraft("alert.review", inputs, result, [ref]))
