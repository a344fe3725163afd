"""The alert use cases: raise (one per track, with a repeat window), review with the
two-person rule, list, and per-gallery rules.

An alert is a candidate for a person to review, never an action (PRODUCT.md): it is
``new`` until reviewed; one dismissal dismisses it; a confirmation confirms it unless
the gallery's rule asks for two, in which case two different people must confirm
(EU AI Act Art. 14(5)). People, not keys or names: a review counts its key's holder,
fixed when the key was made, so a renamed key or a second key of the same holder is
the same person. Each person reviews an alert at most once.

A review locks the alert's row (``SELECT ... FOR UPDATE`` on PostgreSQL; the write
transaction's ``BEGIN IMMEDIATE`` on SQLite), so concurrent reviews are decided one
after the other and always end in the state the rule gives. Raising, reviewing and
changing a gallery's rule are audited in the same transaction as the change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from frvs.alerts.models import Alert, AlertRule, AlertStatus, Review, Verdict
from frvs.alerts.notify import AlertNotice
from frvs.alerts.repository import AlertFilter, AlertRepository, NewAlert
from frvs.core.caller import AuditContext, AuditDraft, Role, record_refusal, subject_ref
from frvs.core.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from frvs.core.metrics import ALERTS_RAISED, ALERTS_REVIEWED
from frvs.core.times import Clock
from frvs.imaging.encode import encode_jpeg
from frvs.storage.store import Store, UnitOfWork
from frvs.video.models import TrackDecision

logger = logging.getLogger(__name__)

WATCH_LIST = "watch_list"

Notifier = Callable[[AlertNotice], None]


@dataclass(frozen=True, slots=True)
class AlertDefaults:
    """Rules for galleries without their own: two-person review on, and no second
    alert for the same subject on the same camera within ``suppress_seconds``."""

    two_person: bool = True
    suppress_seconds: int = 300


def _person(review: Review) -> str:
    # Reviews from before holders existed are counted by their label, as they were.
    return review.holder or review.reviewer


class AlertService:
    """Alerts in the store, delivered to ``notifiers`` when raised or reviewed."""

    def __init__(self, store: Store, clock: Clock, defaults: AlertDefaults | None = None) -> None:
        self._store = store
        self._clock = clock
        self.defaults = defaults or AlertDefaults()
        self._notifiers: list[Notifier] = []
        self.suppressed = 0

    def add_notifier(self, notifier: Notifier) -> None:
        self._notifiers.append(notifier)

    def rule(self, gallery: str) -> AlertRule:
        with self._store.unit() as uow:
            found = uow.repo(AlertRepository).rule(gallery)
        if found is None:
            return AlertRule(gallery, self.defaults.two_person, self.defaults.suppress_seconds)
        return found

    def set_rule(self, caller: AuditContext, rule: AlertRule) -> AlertRule:
        """Set a gallery's alert rule (audited with the rule it replaces). A watch list
        always keeps the two-person rule: it cannot be turned off for one."""
        inputs = rule.as_dict()
        try:
            if rule.suppress_seconds < 0 or rule.suppress_seconds > 86_400 * 30:
                raise InvalidInputError("the repeat window must be 0 to 2592000 seconds")
            before = self.rule(rule.gallery)
            with self._store.unit(write=True) as uow:
                gallery = uow.galleries.get(rule.gallery)
                if gallery.kind.value == WATCH_LIST and not rule.two_person:
                    raise InvalidInputError(
                        f"{rule.gallery} is a watch list: its alerts always need two "
                        "different people to confirm")
                uow.repo(AlertRepository).set_rule(rule)
                uow.audit(caller, AuditDraft("alert.rule", inputs,
                                             {"before": before.as_dict()}))
        except Exception as exc:
            record_refusal(self._store, caller, "alert.rule", inputs, exc)
            raise
        return rule

    def raise_for(self, caller: AuditContext, decision: TrackDecision,
                  crop_path: str | None = None,
                  fence: Callable[[UnitOfWork], None] | None = None,
                  evidence: Callable[[], str] | None = None) -> Alert | None:
        """One alert for a track decided in a watch list; None for other galleries or
        when the same subject alerted on the same camera within the repeat window. The
        alert and its ``alert.raise`` entry (the input that led to the match: camera,
        track, time, score against threshold, where the evidence is kept) commit
        together. ``fence`` runs first in that transaction and raises to refuse it (a
        camera whose lease this replica lost writes nothing). ``evidence`` writes the
        alert's evidence and returns its path, called only once the alert is decided
        (not suppressed), inside its transaction."""
        if decision.gallery_kind != WATCH_LIST:
            return None
        with self._store.unit(write=True) as uow:
            if fence is not None:
                fence(uow)
            alert = self.raise_in(uow, caller, decision, crop_path, evidence)
        if alert is not None:
            self.announce(alert)
        return alert

    def raise_in(self, uow: UnitOfWork, caller: AuditContext, decision: TrackDecision,
                 crop_path: str | None = None,
                 evidence: Callable[[], str] | None = None) -> Alert | None:
        """``raise_for`` inside ``uow``'s transaction, for a use case whose other writes
        must commit with the alert (edge intake's idempotency key); its owner calls
        ``announce`` once that transaction has committed."""
        if decision.gallery_kind != WATCH_LIST:
            return None
        # One check-and-insert at a time per subject and camera across replicas: a
        # camera taken over mid-track yields one alert per repeat window, not two.
        uow.serialise(f"alert:{decision.gallery}:{decision.subject}:{decision.camera}")
        if uow.galleries.find(decision.gallery) is None:
            # Deleted since the track was matched: its subjects, and their alerts, are gone.
            logger.info("no alert for %s on %s: gallery %s was deleted", decision.subject,
                        decision.camera, decision.gallery)
            return None
        alerts = uow.repo(AlertRepository)
        ruled = alerts.rule(decision.gallery)
        suppress = (ruled.suppress_seconds if ruled is not None
                    else self.defaults.suppress_seconds)
        since = decision.captured_at - timedelta(seconds=suppress)
        recent = alerts.raised_between(decision.gallery, decision.subject, decision.camera,
                                       since, decision.captured_at)
        if recent and suppress > 0:
            self.suppressed += 1
            logger.info("alert for %s on %s suppressed (repeat within %d s)",
                        decision.subject, decision.camera, suppress)
            return None
        if evidence is not None:  # decided: only a raised alert has evidence written
            crop_path = evidence()
        alert = alerts.add(NewAlert(
            camera=decision.camera, track_id=decision.track_id, gallery=decision.gallery,
            subject=decision.subject, score=decision.score, threshold=decision.threshold,
            attempts=decision.attempts, at=decision.captured_at,
            frame_time=decision.timestamp, quality=decision.best_shot.quality.overall,
            crop_path=crop_path,
            # A watch list always needs two people, whatever a rule or default says.
            two_person=True), self._clock())
        uow.audit(caller, AuditDraft(
            "alert.raise", {"alert_id": alert.id, "camera": alert.camera,
                            "gallery": alert.gallery, "track": alert.track_id},
            {"subject": alert.subject, "score": round(alert.score, 6),
             "threshold": alert.threshold, "at": alert.at.isoformat(),
             "quality": round(alert.quality, 4), "evidence": alert.crop_path,
             "two_person": alert.two_person},
            [subject_ref(alert.gallery, alert.subject)]))
        # Every replica's live stream serves it from the store's event log.
        uow.publish("alert.raised", alert.as_dict(), self._clock(),
                    subject_ref(alert.gallery, alert.subject))
        return alert

    def write_evidence(self, decision: TrackDecision) -> str:
        """Write ``decision``'s best shot, the evidence its alert's reviewers compare with
        the enrolled photo (atomically, under a name derived from camera, time and
        track); returns its media path. For ``raise_for``'s ``evidence``: whoever writes
        it removes it if the alert's transaction does not commit (a crash in between
        leaves an orphan file, which the retention run sweeps)."""
        path = (f"alerts/{decision.camera}/{decision.captured_at:%Y%m%dT%H%M%S%f}-"
                f"{decision.track_id}.jpg")
        self._store.media.write(path, encode_jpeg(decision.best_shot.patch))
        return path

    def announce(self, alert: Alert) -> None:
        """Tell the notifiers (event bus, webhooks) about a raised alert, once committed."""
        ALERTS_RAISED.labels(alert.gallery, alert.camera).inc()
        self._notify(AlertNotice("raised", alert))

    def review(self, caller: AuditContext, alert_id: int, verdict: Verdict,
               note: str | None = None) -> Alert:
        """Record one person's review and move the alert on when the rule is met.

        Only a key vouches for a person: a caller without one (an OS user at the command
        line, the system) is refused. The review, the alert's new state and the
        ``alert.review`` entry commit together; a refusal (unknown alert, already
        decided, same person again) is audited with its reason.
        """
        actor = caller.actor
        inputs = {"alert_id": alert_id, "verdict": verdict.value}
        try:
            person = actor.person
            # Separation of duties: the admin who issues keys does not review with them.
            if person is None or actor.role is not Role.REVIEWER:
                raise PermissionDeniedError(
                    "an alert is reviewed by a person with a reviewer key (API, console, or "
                    "the CLI with FRVS_API_KEY); it counts the key's holder")
            # Labelled by the key, not the OS user: people sharing a shell stay apart.
            review = Review(f"key:{actor.key_id} ({actor.name})", verdict, note,
                            self._clock(), person)
            with self._store.unit(write=True) as uow:
                alerts = uow.repo(AlertRepository)
                before = alerts.get(alert_id, lock=True)
                if before is None:
                    raise NotFoundError(f"alert {alert_id} not found")
                inputs |= {"camera": before.camera, "gallery": before.gallery,
                           "track": before.track_id}
                if before.status is not AlertStatus.NEW:
                    raise ConflictError(f"alert {alert_id} is already {before.status.value}")
                if any(_person(r) == person for r in before.reviews):
                    raise ConflictError(
                        f"{person} has already reviewed alert {alert_id} (with any of their "
                        "keys); the two-person rule needs a different person")
                alerts.add_review(alert_id, review, actor.key_id)
                # Stored labels are cut to their column's width.
                reviews = (*before.reviews, replace(review, reviewer=review.reviewer[:200]))
                status = self._status(before.two_person, reviews)
                alerts.decide(alert_id, status, review.at)
                alert = replace(before, status=status, reviews=reviews)
                uow.audit(caller, AuditDraft("alert.review", inputs, {
                    "decision": alert.status.value, "verdict": verdict.value,
                    "reviewer": person, "note": (note or "")[:500],
                    "reviews": len(alert.reviews)},
                    [subject_ref(alert.gallery, alert.subject)]))
                # As with notices, only a decision is announced (see below).
                if alert.status is not AlertStatus.NEW:
                    uow.publish("alert.reviewed", alert.as_dict(), review.at,
                                subject_ref(alert.gallery, alert.subject))
        except Exception as exc:
            record_refusal(self._store, caller, "alert.review", inputs, exc)
            raise
        ALERTS_REVIEWED.labels(alert.gallery, verdict.value).inc()
        # Only a decision is announced: a notice while the alert still waits would tell
        # the next reviewer that somebody confirmed (one dismissal decides at once).
        if alert.status is not AlertStatus.NEW:
            self._notify(AlertNotice("reviewed", alert))
        return alert

    @staticmethod
    def _status(two_person: bool, reviews: Sequence[Review]) -> AlertStatus:
        if any(r.verdict is Verdict.DISMISS for r in reviews):
            return AlertStatus.DISMISSED
        confirmers = {_person(r) for r in reviews if r.verdict is Verdict.CONFIRM}
        if len(confirmers) >= (2 if two_person else 1):
            return AlertStatus.CONFIRMED
        return AlertStatus.NEW

    def evidence(self, caller: AuditContext, alert_id: int) -> bytes:
        """The best shot an alert was raised on, as JPEG bytes: what its reviewers compare
        with the enrolled photo. Each download is audited (``alert.evidence``)."""
        inputs = {"alert_id": alert_id}
        try:
            alert = self.get(alert_id)
            data = self._store.media.read(alert.crop_path) if alert.crop_path else None
            if data is None:
                raise NotFoundError(f"no picture is kept for alert {alert_id}")
            self._store.audit(caller, AuditDraft(
                "alert.evidence", inputs | {"camera": alert.camera, "gallery": alert.gallery},
                {"bytes": len(data)}, [subject_ref(alert.gallery, alert.subject)]))
        except Exception as exc:
            record_refusal(self._store, caller, "alert.evidence", inputs, exc)
            raise
        return data

    def get(self, alert_id: int) -> Alert:
        with self._store.unit() as uow:
            alert = uow.repo(AlertRepository).get(alert_id)
        if alert is None:
            raise NotFoundError(f"alert {alert_id} not found")
        return alert

    def list(self, status: AlertStatus | None = None, camera: str | None = None,
             since: datetime | None = None, limit: int = 100,
             before: tuple[datetime, int] | None = None) -> list[Alert]:
        """Newest first; ``before`` (time, id) of the last alert of a previous page."""
        with self._store.unit() as uow:
            return uow.repo(AlertRepository).newest_first(
                AlertFilter(status, camera, since, limit, before))

    def _notify(self, notice: AlertNotice) -> None:
        for notifier in self._notifiers:
            try:
                notifier(notice)
            except Exception:  # one broken notifier must not block the others
                logger.exception("alert notifier failed")
