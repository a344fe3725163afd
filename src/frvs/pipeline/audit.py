"""Camera runs in the audit trail: one entry when a run starts and one when it ends
(EU AI Act Art. 12(3)(a): start and end of each use; (b) the galleries searched).

Alerts raised and reviewed are audited by ``frvs.oversight.video_audit.AlertAuditor``;
together they record each use, the reference data searched, the input that led to a
match and who verified it.
"""

from __future__ import annotations

from typing import Any

from frvs.oversight.audit import AuditDraft, AuditTrail
from frvs.oversight.models import AuditContext
from frvs.pipeline.camera import CameraRun


class CameraRunAuditor:
    """A supervisor run listener appending ``camera.start`` / ``camera.stop``."""

    def __init__(self, trail: AuditTrail, context: AuditContext) -> None:
        self._trail = trail
        self._context = context

    def __call__(self, run: CameraRun) -> None:
        inputs: dict[str, Any] = {"camera": run.camera, "galleries": list(run.galleries),
                                  "source": run.source, "sample_fps": run.sample_fps}
        if run.status is None:
            self._trail.append(self._context, AuditDraft(
                "camera.start", inputs, {"started_at": run.at.isoformat()}))
            return
        s = run.status
        result = {"ended_at": run.at.isoformat(), "reason": run.reason,
                  "health": s.health.value, "frames_read": s.frames_read,
                  "frames_processed": s.frames_processed, "skipped": s.skipped,
                  "dropped": s.dropped, "reconnects": s.reconnects, "gaps": len(s.gaps),
                  "embeddings": run.embeddings, "last_error": s.last_error}
        self._trail.append(self._context, AuditDraft(
            "camera.stop", inputs, result, outcome="ok" if run.reason != "failed" else "failed"))
