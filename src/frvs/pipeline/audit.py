"""Camera runs in the audit trail: one entry when a run starts and one when it ends
(EU AI Act Art. 12(3)(a): start and end of each use; (b) the galleries searched).

Alerts raised and reviewed are audited by ``frvs.alerts.service.AlertService`` in the
same transaction as the alert; together they record each use, the reference data
searched, the input that led to a match and who verified it. Each run is recorded for
its caller: the service's camera runner, or the person running ``frvs watch``.
"""

from __future__ import annotations

from typing import Any

from frvs.core.caller import AuditDraft, AuditLog
from frvs.pipeline.camera import CameraRun


class CameraRunAuditor:
    """A supervisor run listener appending ``camera.start`` / ``camera.stop``."""

    def __init__(self, log: AuditLog) -> None:
        self._log = log

    def __call__(self, run: CameraRun) -> None:
        inputs: dict[str, Any] = {"camera": run.camera, "galleries": list(run.galleries),
                                  "source": run.source, "sample_fps": run.sample_fps}
        if run.status is None:
            self._log.audit(run.caller, AuditDraft(
                "camera.start", inputs, {"started_at": run.at.isoformat()}))
            return
        s = run.status
        result = {"ended_at": run.at.isoformat(), "reason": run.reason,
                  "health": s.health.value, "frames_read": s.frames_read,
                  "frames_processed": s.frames_processed, "skipped": s.skipped,
                  "dropped": s.dropped, "reconnects": s.reconnects, "gaps": len(s.gaps),
                  "embeddings": run.embeddings, "last_error": s.last_error}
        self._log.audit(run.caller, AuditDraft(
            "camera.stop", inputs, result, outcome="ok" if run.reason != "failed" else "failed"))
