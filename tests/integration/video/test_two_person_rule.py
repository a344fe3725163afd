"""The two-person rule tried as an attacker would (issue 11, "Reviewers are people"), on
SQLite and on PostgreSQL.

One person must not count twice: not under two ``--reviewer`` names at the command line,
not with a renamed key, not with two keys minted for them. Without a key nobody reviews.
Concurrent reviews end in the state the rule gives (20 races of each kind on
PostgreSQL): confirm + dismiss ends dismissed, confirm + confirm by two people ends
confirmed, the same person twice leaves one review. Reviews are independent: the second
reviewer does not see the first one's verdict or note before deciding. Gallery alert
rules are set from the CLI and the API, audited, and a watch list keeps two people.
Every review, and every refused one, is on the audit trail with the reviewer's holder.

Alerts come from the application itself (a track decision of a watch list), except in
the reproduction of ``../shared/checks/oversight`` part 2, which watches the real clip
with the real ``frvs`` command.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import factories
import pytest
from callers import LOCAL, key_caller
from fastapi.testclient import TestClient
from frvs_process import FRVS
from postgres import fresh_database
from sqlalchemy import text
from typer.testing import CliRunner

from frvs.alerts.models import Alert, AlertStatus, Verdict
from frvs.api.app import create_api
from frvs.app import Application, build_application
from frvs.cli.main import app as cli
from frvs.config.settings import load_settings
from frvs.core.caller import AuditContext, Role, system_caller
from frvs.core.errors import ConflictError
from frvs.galleries.models import GalleryKind, GallerySpec
from frvs.video.models import TrackDecision

WATCH_LIST = "wl"
T0 = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
CAMERAS = system_caller("test cameras")
RACES = {"sqlite": 5, "postgres": 20}


# -- a store per test, and alerts in it -----------------------------------------------


@dataclass(frozen=True)
class Backend:
    """A test's data dir and, on PostgreSQL, the URL of its own fresh database."""

    name: str
    data: Path
    url: str | None

    def env(self, **extra: str | None) -> dict[str, str | None]:
        """The environment of a CLI run against this store (None unsets a variable)."""
        env: dict[str, str | None] = {"FRVS_DATA_DIR": str(self.data),
                                      "FRVS_DATABASE_URL": self.url, "FRVS_API_KEY": None}
        return env | extra


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    data = tmp_path / "data"
    if request.param == "sqlite":
        yield Backend("sqlite", data, None)
        return
    with fresh_database("frvs_two_person") as url:
        yield Backend("postgres", data, url)


@pytest.fixture
def app(backend: Backend) -> Iterator[Application]:
    """The application on the test's store, with an empty watch list ``wl``."""
    application = build_application(load_settings(data_dir=backend.data,
                                                  database_url=backend.url))
    application.store.open()
    application.galleries.create(LOCAL, GallerySpec(WATCH_LIST, GalleryKind.WATCH_LIST,
                                                    purpose="test", legal_basis="test"))
    yield application
    application.stop()


def _decision(camera: str, at: datetime = T0) -> TrackDecision:
    return factories.decision(camera, gallery=WATCH_LIST, at=at)


def _raise(app: Application, camera: str, at: datetime = T0) -> int:
    """A new two-person alert of the watch list (one camera per alert: no repeat window)."""
    alert = app.video.alerts.raise_for(CAMERAS, _decision(camera, at))
    assert alert is not None and alert.status is AlertStatus.NEW and alert.two_person
    return alert.id


def _people(alert: Alert) -> list[tuple[str | None, str]]:
    """(holder, verdict) of each stored review, in order."""
    return [(r.holder, r.verdict.value) for r in alert.reviews]


@dataclass(frozen=True)
class Entry:
    key_id: str | None
    holder: str | None
    outcome: str
    inputs: dict[str, Any]
    result: dict[str, Any]


def _entries(app: Application, action: str) -> list[Entry]:
    """The trail's ``action`` entries, oldest first, read straight from the database."""
    def as_json(value: Any) -> dict[str, Any]:
        return dict(json.loads(value) if isinstance(value, str) else value)

    with app.store.database.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT key_id, actor_holder, outcome, inputs, result FROM audit_entries "
            "WHERE action = :action ORDER BY seq"), {"action": action}).all()
    return [Entry(r[0], r[1], r[2], as_json(r[3]), as_json(r[4])) for r in rows]


# -- 1. the command line: reviews only with a key, one person counts once --------------


def _cli(backend: Backend, *args: str, key: str | None = None) -> tuple[int, Any]:
    """``frvs ARGS`` in-process (FRVS_API_KEY = ``key``): its exit code and its last JSON
    document on stdout (without one, what went wrong, for the assertion message)."""
    result = CliRunner().invoke(cli, list(args), env=backend.env(FRVS_API_KEY=key))
    docs = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    if docs:
        return result.exit_code, docs[-1]
    return result.exit_code, {"exception": repr(result.exception),
                              "output": (result.stdout + result.stderr)[-600:]}


def test_cli_reviews_count_key_holders_not_names(backend: Backend,
                                                  app: Application) -> None:
    alert = _raise(app, "door")
    a = str(alert)

    # The bypass of issue 11: one person confirming under two free-text names.
    for name in ("alice", "bob"):
        code, _ = _cli(backend, "alerts", "review", a, "confirm", "--reviewer", name,
                       "--note", name)
        assert code != 0, f"--reviewer {name} was accepted"
    assert app.video.alerts.get(alert).status is AlertStatus.NEW
    assert app.video.alerts.get(alert).reviews == ()

    # Without a key nobody vouches for a person: refused, and audited as refused.
    code, error = _cli(backend, "alerts", "review", a, "confirm", "--json")
    assert (code, error["error"]) == (18, "permission_denied"), error
    # A key of a role that does not review is refused as well.
    code, operator = _cli(backend, "key", "create", "olga", "--role", "operator", "--json")
    assert code == 0, operator
    code, error = _cli(backend, "alerts", "review", a, "confirm", "--json",
                       key=operator["token"])
    assert (code, error["error"]) == (18, "permission_denied"), error

    # Two keys of one person (the holder compares case- and space-insensitively).
    code, laptop = _cli(backend, "key", "create", "ann laptop", "--role", "reviewer",
                        "--holder", "ann", "--json")
    assert code == 0, laptop
    code, phone = _cli(backend, "key", "create", "ann phone", "--role", "reviewer",
                       "--holder", " ANN ", "--json")
    assert code == 0, phone
    assert laptop["holder"] == phone["holder"] == "ann"
    code, done = _cli(backend, "alerts", "review", a, "confirm", "--note", "from the laptop",
                      "--json", key=laptop["token"])
    assert (code, done["status"]) == (0, "new"), done
    code, error = _cli(backend, "alerts", "review", a, "confirm", "--note", "from the phone",
                       "--json", key=phone["token"])
    assert (code, error["error"]) == (17, "conflict"), error
    # The adversary's spelling: marks and letters that render as nothing.
    code, tablet = _cli(backend, "key", "create", "ann tablet", "--role", "reviewer",
                        "--holder", "ann\u034f\ufe0f\u3164\u2800", "--json")
    assert (code, tablet["holder"]) == (0, "ann"), tablet
    code, error = _cli(backend, "alerts", "review", a, "confirm", "--note", "from the tablet",
                       "--json", key=tablet["token"])
    assert (code, error["error"]) == (17, "conflict"), error
    assert _people(app.video.alerts.get(alert)) == [("ann", "confirm")]

    # A second person (holder = the key's name by default) confirms it.
    code, bob = _cli(backend, "key", "create", "Bob", "--role", "reviewer", "--json")
    assert (code, bob["holder"]) == (0, "bob"), bob
    code, done = _cli(backend, "alerts", "review", a, "confirm", "--note", "agreed",
                      "--json", key=bob["token"])
    assert (code, done.get("status")) == (0, "confirmed"), done
    assert _people(app.video.alerts.get(alert)) == [("ann", "confirm"), ("bob", "confirm")]

    # The trail, as an auditor reads it, shows each reviewer's holder and key.
    code, listed = _cli(backend, "audit", "list", "--action", "alert.review", "--json")
    assert code == 0, listed
    reviewers = {laptop["key_id"], phone["key_id"], bob["key_id"]}
    seen = [(e["outcome"], e["actor"]["key_id"], e["actor"]["holder"],
             e["result"].get("reviewer"), e["result"].get("error"))
            for e in reversed(listed["entries"]) if e["actor"]["key_id"] in reviewers]
    assert seen == [
        ("ok", laptop["key_id"], "ann", "ann", None),
        ("refused", phone["key_id"], "ann", None, "conflict"),
        ("ok", bob["key_id"], "bob", "bob", None),
    ], seen
    # The attempts without a reviewer key are refused before the review; if they are on
    # the trail, then as refusals.
    assert all(e["outcome"] != "ok" for e in listed["entries"]
               if e["actor"]["key_id"] not in reviewers), listed


@pytest.mark.slow
def test_oversight_check_part_2_with_the_real_clip(tmp_path: Path, data_dir: Path) -> None:
    """``../shared/checks/oversight`` part 2, as it runs: a real alert from the clip, then
    two confirmations under two ``--reviewer`` names; the alert must stay new."""
    env = {**os.environ, "FRVS_DATA_DIR": str(tmp_path / "data")}
    env.pop("FRVS_API_KEY", None)
    env.pop("FRVS_DATABASE_URL", None)

    def frvs(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([FRVS, *args], capture_output=True, text=True, env=env,
                              timeout=300, check=False)

    video = data_dir / "video"
    assert frvs("gallery", "create", "hamilton", "--kind", "watchlist", "--purpose", "check",
                "--legal-basis", "test").returncode == 0
    assert frvs("enroll", "hamilton", "--subject", "lin-manuel-miranda",
                str(video / "lin-manuel-miranda.png")).returncode == 0
    watched = frvs("watch", str(video / "short_hamilton_clip.mp4"), "--gallery", "hamilton",
                   "--camera", "stage", "--json")
    events = [json.loads(line) for line in watched.stdout.splitlines() if line.startswith("{")]
    alerts = [e for e in events if e.get("event") == "alert"]
    assert alerts, f"the clip raised no alert: {watched.stderr[-800:]}"
    alert = str(alerts[0]["id"])
    for name in ("alice", "bob"):
        done = frvs("alerts", "review", alert, "confirm", "--reviewer", name, "--note", name)
        assert done.returncode != 0, f"--reviewer {name}: {done.stdout}"
    listed = json.loads(frvs("alerts", "list", "--json").stdout)
    status = {a["id"]: (a["status"], a["reviews"]) for a in listed["alerts"]}
    assert status[int(alert)] == ("new", [])


# -- 2. the API: a renamed key and a second key are the same person -------------------


@pytest.fixture
def api(app: Application) -> Iterator[TestClient]:
    """The API over ``app``, with an admin key (the one minting and renaming keys)."""
    admin = app.oversight.keys.create(LOCAL, Role.ADMIN, "admin")
    with TestClient(create_api(app), headers=_bearer(admin.token)) as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _mint(api: TestClient, name: str, holder: str | None = None) -> dict[str, Any]:
    body = {"name": name, "role": "reviewer"} | ({"holder": holder} if holder else {})
    r = api.post("/v1/keys", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _review(api: TestClient, key: dict[str, Any], alert: int, verdict: str,
            note: str | None = None) -> Any:
    return api.post(f"/v1/alerts/{alert}/review", headers=_bearer(key["token"]),
                    json={"verdict": verdict, "note": note})


def test_api_renamed_key_and_second_key_are_the_same_person(
    app: Application, api: TestClient
) -> None:
    renamed, minted, dismissed = (_raise(app, c) for c in ("gate", "hall", "yard"))

    # A reviewer whose key is renamed between two confirmations.
    rita = _mint(api, "rita")
    assert rita["holder"] == "rita"
    r = _review(api, rita, renamed, "confirm", "first look")
    assert (r.status_code, r.json()["status"]) == (200, "new"), r.text
    r = api.patch(f"/v1/keys/{rita['key_id']}", json={"name": "someone else"})
    assert (r.status_code, r.json()["name"], r.json()["holder"]) == (
        200, "someone else", "rita"), r.text
    r = api.patch(f"/v1/keys/{rita['key_id']}", json={"holder": "rosa"})
    assert r.status_code == 422, r.text  # the holder never changes
    r = _review(api, rita, renamed, "confirm", "second look")
    assert (r.status_code, r.json()["code"]) == (409, "conflict"), r.text
    assert _people(app.video.alerts.get(renamed)) == [("rita", "confirm")]

    # Two keys an admin minted for one person count once.
    desk, laptop = _mint(api, "sam desk", "sam"), _mint(api, "sam laptop", "Sam")
    assert desk["holder"] == laptop["holder"] == "sam"
    assert _review(api, desk, minted, "confirm").json()["status"] == "new"
    r = _review(api, laptop, minted, "confirm")
    assert (r.status_code, r.json()["code"]) == (409, "conflict"), r.text
    assert _people(app.video.alerts.get(minted)) == [("sam", "confirm")]

    # A dismissal by the first of two people dismisses; nobody can confirm it afterwards.
    uma, vic = _mint(api, "uma"), _mint(api, "vic")
    r = _review(api, uma, dismissed, "dismiss", "not him")
    assert (r.status_code, r.json()["status"]) == (200, "dismissed"), r.text
    r = _review(api, vic, dismissed, "confirm")
    assert (r.status_code, r.json()["code"]) == (409, "conflict"), r.text
    assert app.video.alerts.get(dismissed).status is AlertStatus.DISMISSED

    # A different person completes the renamed key's alert.
    r = _review(api, vic, renamed, "confirm")
    assert (r.status_code, r.json()["status"]) == (200, "confirmed"), r.text

    # Each review on the trail with the key that made it and the person holding it.
    seen = [(e.inputs["alert_id"], e.outcome, e.key_id, e.holder, e.result.get("reviewer"))
            for e in _entries(app, "alert.review")]
    assert seen == [
        (renamed, "ok", rita["key_id"], "rita", "rita"),
        (renamed, "refused", rita["key_id"], "rita", None),
        (minted, "ok", desk["key_id"], "sam", "sam"),
        (minted, "refused", laptop["key_id"], "sam", None),
        (dismissed, "ok", uma["key_id"], "uma", "uma"),
        (dismissed, "refused", vic["key_id"], "vic", None),
        (renamed, "ok", vic["key_id"], "vic", "vic"),
    ], seen
    renames = _entries(app, "key.update")
    assert [(e.inputs["key_id"], e.result["holder"]) for e in renames] == [
        (rita["key_id"], "rita")]


# -- 3. independent reviews ------------------------------------------------------------


def test_second_reviewer_does_not_see_the_first_review_before_deciding(
    backend: Backend, app: Application, api: TestClient
) -> None:
    alert = _raise(app, "door")
    ann, bob = _mint(api, "ann"), _mint(api, "bob")

    def shown(key: dict[str, Any]) -> list[tuple[str, str, str | None]]:
        one = api.get(f"/v1/alerts/{alert}", headers=_bearer(key["token"]))
        assert one.status_code == 200, one.text
        listed = api.get("/v1/alerts", headers=_bearer(key["token"]))
        assert listed.status_code == 200, listed.text
        [item] = [a for a in listed.json()["items"] if a["id"] == alert]
        assert item["reviews"] == one.json()["reviews"], (item, one.json())
        return [(r["reviewer"], r["verdict"], r["note"]) for r in one.json()["reviews"]]

    assert _review(api, ann, alert, "confirm", "it is him").status_code == 200
    assert shown(bob) == []
    [(_, verdict, note)] = shown(ann)
    assert (verdict, note) == ("confirm", "it is him")
    # The command line, with bob's key, shows him no more than the API.
    code, listed = _cli(backend, "alerts", "list", "--json", key=bob["token"])
    assert code == 0, listed
    [item] = [a for a in listed["alerts"] if a["id"] == alert]
    assert (item["status"], item["reviews"]) == ("new", []), item
    assert "it is him" not in json.dumps(listed)

    r = _review(api, bob, alert, "dismiss", "not him")
    assert (r.status_code, r.json()["status"]) == (200, "dismissed"), r.text
    for key in (ann, bob):
        assert [(v, n) for _, v, n in shown(key)] == [("confirm", "it is him"),
                                                      ("dismiss", "not him")]


def test_event_stream_does_not_show_a_review_before_the_decision(
    app: Application, api: TestClient
) -> None:
    """Reviewers may follow ``/v1/events``; what it says about an undecided alert must
    not tell the second reviewer how the first one decided, or why. The stream replays
    the durable log from the start (``Last-Event-ID: 0``), so everything recorded about
    the alert after ann's review is in what bob receives."""
    alert = _raise(app, "door")
    ann, bob = _mint(api, "ann"), _mint(api, "bob")
    ann_caller = AuditContext(app.oversight.keys.get(ann["key_id"]).actor())
    reviewed = app.video.alerts.review(ann_caller, alert, Verdict.CONFIRM, "it is him")
    assert reviewed.status is AlertStatus.NEW
    # The test client hands over the body once the stream ends (after max_seconds).
    r = api.get("/v1/events", headers=_bearer(bob["token"]) | {"Last-Event-ID": "0"},
                params={"max_seconds": 2, "status_every": 300})
    assert r.status_code == 200, r.text
    events = [json.loads(line[len("data: "):]) for line in r.text.splitlines()
              if line.startswith("data: ")]
    about = [e for e in events if isinstance(e, dict) and e.get("id") == alert]
    # Only the raise: a review that leaves the alert undecided is not announced at all
    # (even an empty notice would tell bob that somebody confirmed).
    assert [(e["status"], e["reviews"]) for e in about] == [("new", [])], about
    assert "alert.reviewed" not in r.text
    assert "it is him" not in r.text


# -- 4. concurrent reviews end in the state the rule gives ------------------------------


def _race(app: Application, alert: int,
          calls: list[tuple[AuditContext, Verdict]]) -> list[Alert | ConflictError]:
    """The reviews of ``calls`` started together, one thread each: what each returned
    (anything but a conflict, an integrity error for instance, fails the test)."""
    start = threading.Barrier(len(calls))

    def review(index: int) -> Alert | ConflictError:
        caller, verdict = calls[index]
        start.wait(30)
        try:
            return app.video.alerts.review(caller, alert, verdict, f"call {index}")
        except ConflictError as exc:
            return exc

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(review, range(len(calls))))


@pytest.mark.parametrize("race", ["confirm+dismiss", "confirm+confirm", "one person twice"])
def test_concurrent_reviews_end_in_the_state_the_rule_gives(
    backend: Backend, app: Application, race: str
) -> None:
    runs = RACES[backend.name]
    _, ann = key_caller(app, Role.REVIEWER, "ann", "ann")
    _, ann_again = key_caller(app, Role.REVIEWER, "ann's second key", "ann")
    _, bob = key_caller(app, Role.REVIEWER, "bob", "bob")
    calls = {"confirm+dismiss": [(ann, Verdict.CONFIRM), (bob, Verdict.DISMISS)],
             "confirm+confirm": [(ann, Verdict.CONFIRM), (bob, Verdict.CONFIRM)],
             "one person twice": [(ann, Verdict.CONFIRM), (ann_again, Verdict.CONFIRM)],
             }[race]
    orders: Counter[str] = Counter()
    for run in range(runs):
        alert = _raise(app, f"camera-{run}")
        results = _race(app, alert, calls)
        final = app.video.alerts.get(alert)
        done = [r for r in results if isinstance(r, Alert)]
        refused = [r for r in results if isinstance(r, ConflictError)]
        where = f"run {run + 1} of {runs}: {results}; stored {_people(final)}"
        if race == "confirm+dismiss":
            # Dismissed whatever the order; the confirmation counts only if it came first.
            assert final.status is AlertStatus.DISMISSED, where
            confirmed_first = isinstance(results[0], Alert)
            assert isinstance(results[1], Alert), where
            expected = ([("ann", "confirm")] if confirmed_first else []) + [("bob", "dismiss")]
            assert _people(final) == expected, where
            orders["confirm first" if confirmed_first else "dismiss first"] += 1
        elif race == "confirm+confirm":
            assert final.status is AlertStatus.CONFIRMED, where
            assert not refused and sorted(a.status.value for a in done) == ["confirmed", "new"]
            assert sorted(_people(final)) == [("ann", "confirm"), ("bob", "confirm")], where
        else:
            assert final.status is AlertStatus.NEW, where
            assert len(done) == 1 and len(refused) == 1, where
            assert _people(final) == [("ann", "confirm")], where
            orders[f"key {[isinstance(r, Alert) for r in results].index(True) + 1} first"] += 1
    print(f"{backend.name} {race}: {runs} races, {dict(orders)}")

    # The trail has every review that happened and every one refused, with its holder.
    entries = _entries(app, "alert.review")
    ok = [e for e in entries if e.outcome == "ok"]
    assert all(e.result["reviewer"] == e.holder and e.holder in ("ann", "bob") for e in ok)
    stored = sum(len(app.video.alerts.get(a.id).reviews) for a in app.video.alerts.list())
    assert len(ok) == stored
    assert len(entries) == 2 * runs
    assert all(e.result["error"] == "conflict" for e in entries if e.outcome != "ok")


# -- 5. per-gallery alert rules: settable, audited, a watch list keeps two people -------


def test_cli_alert_rule_is_audited_and_a_watch_list_keeps_two_people(
    backend: Backend, app: Application
) -> None:
    app.galleries.create(LOCAL, GallerySpec("staff", GalleryKind.GENERAL))
    code, rule = _cli(backend, "alerts", "rule", WATCH_LIST, "--json")
    assert (code, rule) == (0, {"gallery": WATCH_LIST, "two_person": True,
                                "suppress_seconds": 300})
    code, error = _cli(backend, "alerts", "rule", WATCH_LIST, "--one-person", "--json")
    assert (code, error["error"]) == (22, "invalid_input"), error
    code, rule = _cli(backend, "alerts", "rule", WATCH_LIST, "--suppress-seconds", "60",
                      "--json")
    assert (code, rule["two_person"], rule["suppress_seconds"]) == (0, True, 60), rule
    code, rule = _cli(backend, "alerts", "rule", "staff", "--one-person", "--json")
    assert (code, rule["two_person"]) == (0, False), rule
    assert _cli(backend, "alerts", "rule", WATCH_LIST, "--json")[1]["suppress_seconds"] == 60

    # The new window applies: a second alert 61 s later on the same camera is raised.
    _raise(app, "door")
    _raise(app, "door", T0 + timedelta(seconds=61))
    assert app.video.alerts.raise_for(CAMERAS, _decision("door", T0 + timedelta(seconds=90))
                                      ) is None

    seen = [(e.outcome, e.inputs["gallery"], e.inputs["two_person"],
             e.inputs["suppress_seconds"], e.result.get("error"),
             e.result.get("before", {}).get("suppress_seconds"))
            for e in _entries(app, "alert.rule")]
    assert seen == [
        ("refused", WATCH_LIST, False, 300, "invalid_input", None),
        ("ok", WATCH_LIST, True, 60, None, 300),
        ("ok", "staff", False, 300, None, 300),
    ], seen


def test_api_alert_rule_is_audited_and_a_watch_list_keeps_two_people(
    app: Application, api: TestClient
) -> None:
    r = api.post("/v1/keys", json={"name": "otto", "role": "operator"})
    operator = r.json()
    reviewer = _mint(api, "rita")
    url = f"/v1/galleries/{WATCH_LIST}/alert-rule"
    as_operator = _bearer(operator["token"])
    assert api.get(url, headers=as_operator).json() == {"two_person": True,
                                                        "suppress_seconds": 300}
    r = api.put(url, headers=as_operator, json={"two_person": False, "suppress_seconds": 300})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_input"), r.text
    r = api.put(url, headers=_bearer(reviewer["token"]),
                json={"two_person": True, "suppress_seconds": 0})
    assert r.status_code == 403, r.text  # reviewers review; they do not set the rules
    r = api.put(url, headers=as_operator, json={"two_person": True, "suppress_seconds": 60})
    assert (r.status_code, r.json()) == (200, {"two_person": True, "suppress_seconds": 60})
    assert api.get(url, headers=as_operator).json()["suppress_seconds"] == 60
    r = api.put("/v1/galleries/nowhere/alert-rule", headers=as_operator,
                json={"two_person": True, "suppress_seconds": 60})
    assert r.status_code == 404, r.text

    seen = [(e.outcome, e.key_id, e.inputs["gallery"], e.inputs["two_person"],
             e.result.get("error"), e.result.get("before"))
            for e in _entries(app, "alert.rule")]
    assert seen == [
        ("refused", operator["key_id"], WATCH_LIST, False, "invalid_input", None),
        ("ok", operator["key_id"], WATCH_LIST, True, None,
         {"gallery": WATCH_LIST, "two_person": True, "suppress_seconds": 300}),
        ("refused", operator["key_id"], "nowhere", True, "not_found", None),
    ], seen
