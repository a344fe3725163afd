"""Helpers of the oversight tests (a module with a unique name, importable by tests): the
store of a test on SQLite or PostgreSQL, the real CLI and a real ``frvs serve`` that can
be killed with SIGKILL, and the invariants of an audited enrolment read straight from
the database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from frvs_process import FRVS, free_port, wait_until_healthy
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError


@dataclass(frozen=True)
class Backend:
    """Where a test's FRVS keeps its data: the data dir (crops under ``media/``) and the
    store's URL (a SQLite file in the data dir, or a fresh PostgreSQL database)."""

    name: str
    data: Path
    url: str

    @property
    def media(self) -> Path:
        return self.data / "media"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a CLI or service process using this store."""
        env = {"FRVS_DATA_DIR": str(self.data), **extra}
        if self.name == "postgres":
            env["FRVS_DATABASE_URL"] = self.url
        return env

    def engine(self) -> Engine:
        """An engine on the store, for reading it behind FRVS's back (dispose it)."""
        return create_engine(self.url, pool_size=1)


def frvs(args: list[str], env: dict[str, str], timeout: float = 300
         ) -> subprocess.CompletedProcess[str]:
    """Run the real CLI with ``env`` on top of this process's environment (never raises
    on a non-zero exit: the tests look at it)."""
    return subprocess.run([FRVS, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env}, check=False)


def frvs_ok(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = frvs(args, env)
    assert done.returncode == 0, f"frvs {' '.join(args)}: exit {done.returncode}\n{done.stderr}"
    return done


def json_value(value: Any) -> Any:
    """A JSON column as Python: SQLite hands back text, PostgreSQL decoded values."""
    return json.loads(value) if isinstance(value, str) else value


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL a process started with ``start_new_session=True`` and whatever it forked."""
    if proc.poll() is None:
        with suppress(ProcessLookupError):  # ended on its own meanwhile
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def count_rows(engine: Engine, table: str) -> int:
    """Rows in ``table``; 0 while the schema does not exist yet."""
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    except DBAPIError:
        return 0


class CommitWatch:
    """Follows the template count of a store while another process writes to it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.count = count_rows(engine, "templates")
        self._changes: list[float] = []

    def poll(self) -> int:
        now = count_rows(self._engine, "templates")
        if now != self.count:
            self._changes.append(time.monotonic())
            self.count = now
        return now

    def period(self) -> float:
        """Seconds between two commits lately (how long one image takes), 0.1 before two
        commits were seen."""
        if len(self._changes) < 2:
            return 0.1
        recent = self._changes[-6:]
        return (recent[-1] - recent[0]) / (len(recent) - 1)


# -- the invariants of an audited enrolment ------------------------------------------


@dataclass(frozen=True)
class Entry:
    seq: int
    action: str
    outcome: str
    key_id: str | None
    subjects: tuple[str, ...]
    inputs: dict[str, Any]
    result: dict[str, Any]


@dataclass(frozen=True)
class StoredTemplate:
    id: int
    ref: str  # gallery/subject, as audit entries name subjects
    crop_path: str | None


@dataclass(frozen=True)
class Enrolments:
    templates: dict[int, StoredTemplate]
    subjects: dict[str, int]  # gallery/subject -> templates
    entries: list[Entry] = field(default_factory=list)

    def enrol(self, outcome: str) -> list[Entry]:
        return [e for e in self.entries if e.action == "enrol" and e.outcome == outcome]

    @property
    def refs(self) -> set[str]:
        return {t.ref for t in self.templates.values()}


def read_enrolments(engine: Engine) -> Enrolments:
    """Templates, subjects and audit entries, read with plain SQL (not FRVS's code)."""
    with engine.connect() as conn:
        templates = {
            int(tid): StoredTemplate(int(tid), f"{gallery}/{subject}", crop)
            for tid, gallery, subject, crop in conn.execute(text(
                "SELECT t.id, g.name, s.external_id, t.crop_path FROM templates t "
                "JOIN subjects s ON s.id = t.subject_id JOIN galleries g ON g.id = s.gallery_id"))
        }
        subjects = {
            f"{gallery}/{subject}": int(n) for gallery, subject, n in conn.execute(text(
                "SELECT g.name, s.external_id, count(t.id) FROM subjects s "
                "JOIN galleries g ON g.id = s.gallery_id "
                "LEFT JOIN templates t ON t.subject_id = s.id GROUP BY g.name, s.external_id"))
        }
        entries = [
            Entry(int(seq), action, outcome, key_id, tuple(json_value(subs) or ()),
                  json_value(inputs) or {}, json_value(result) or {})
            for seq, action, outcome, key_id, subs, inputs, result in conn.execute(text(
                "SELECT seq, action, outcome, key_id, subjects, inputs, result "
                "FROM audit_entries ORDER BY seq"))
        ]
    return Enrolments(templates, subjects, entries)


def assert_every_enrolment_audited(backend: Backend, context: str = "") -> Enrolments:
    """Both directions of atomic audit, from the database itself:

    - every stored template has exactly one ``enrol`` entry with outcome ok whose
      ``result.template_id`` is the template and whose ``subjects`` name its
      ``gallery/subject``;
    - every ``enrol`` entry with outcome ok names a template that exists, of the subject
      it names;
    - no subject without a template (a subject is created with its first template);
    - every crop a template refers to is on disk.
    """
    engine = backend.engine()
    try:
        state = read_enrolments(engine)
    finally:
        engine.dispose()
    by_template: dict[int, list[Entry]] = {}
    problems: list[str] = []
    for entry in state.enrol("ok"):
        template_id = entry.result.get("template_id")
        if not isinstance(template_id, int):
            problems.append(f"ok enrol entry {entry.seq} names no template: {entry.result}")
            continue
        by_template.setdefault(template_id, []).append(entry)
        stored = state.templates.get(template_id)
        if stored is None:
            problems.append(f"ok enrol entry {entry.seq} claims template {template_id}, "
                            f"which is not stored ({list(entry.subjects)})")
        elif stored.ref not in entry.subjects:
            problems.append(f"ok enrol entry {entry.seq} for template {template_id} names "
                            f"{list(entry.subjects)}, the template belongs to {stored.ref}")
    for template in state.templates.values():
        found = by_template.get(template.id, [])
        if len(found) != 1:
            problems.append(f"template {template.id} of {template.ref} has {len(found)} ok "
                            "enrol entries (want exactly 1)")
        if template.crop_path and not (backend.media / template.crop_path).is_file():
            problems.append(f"template {template.id} refers to a crop that is not on disk: "
                            f"{template.crop_path}")
    problems += [f"subject {ref} has no template" for ref, n in state.subjects.items() if n == 0]
    assert not problems, (
        f"{context}: {len(state.templates)} templates, {len(state.enrol('ok'))} ok enrol "
        f"entries; {len(problems)} problems:\n" + "\n".join(problems[:30]))
    return state


def crop_files(backend: Backend) -> set[str]:
    """Crop files under ``media/`` (relative paths), without half-written ``.part`` files."""
    if not backend.media.is_dir():
        return set()
    return {p.relative_to(backend.media).as_posix() for p in backend.media.rglob("*.jpg")}


# -- an audit trail that refuses every insert ----------------------------------------

_PG_FAIL = [
    "CREATE OR REPLACE FUNCTION frvs_test_audit_down() RETURNS trigger LANGUAGE plpgsql "
    "AS $$ BEGIN RAISE EXCEPTION 'audit down'; END $$",
    "CREATE TRIGGER frvs_test_audit_down BEFORE INSERT ON audit_entries "
    "FOR EACH ROW EXECUTE FUNCTION frvs_test_audit_down()",
]
_SQLITE_FAIL = ["CREATE TRIGGER frvs_test_audit_down BEFORE INSERT ON audit_entries "
                "BEGIN SELECT RAISE(ABORT, 'audit down'); END"]


def set_audit_down(backend: Backend, down: bool) -> None:
    """Make every INSERT INTO audit_entries fail (a trigger that raises), or stop that."""
    if down:
        statements = _SQLITE_FAIL if backend.name == "sqlite" else _PG_FAIL
    else:
        statements = ["DROP TRIGGER frvs_test_audit_down" if backend.name == "sqlite"
                      else "DROP TRIGGER frvs_test_audit_down ON audit_entries"]
    engine = backend.engine()
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


# -- a watch-list alert, from the real clip ------------------------------------------


@dataclass(frozen=True)
class Alerted:
    """What a test gets with the alerted store: the alert (two-person, status new) and
    the token of the admin key ``frvs init`` made."""

    alert: int
    admin_token: str


def raise_alert(env: dict[str, str], data_dir: Path, gallery: str = "hamilton") -> int:
    """Lin-Manuel Miranda enrolled in a watch list and the Hamilton clip watched: the id
    of the first (two-person) alert it raised."""
    video = data_dir / "video"
    frvs_ok(["gallery", "create", gallery, "--kind", "watch_list", "--purpose",
             "oversight tests", "--legal-basis", "test data of public figures",
             "--keep-crops"], env)
    frvs_ok(["enroll", gallery, "--subject", "lin-manuel-miranda",
             str(video / "lin-manuel-miranda.png")], env)
    watched = frvs_ok(["watch", str(video / "short_hamilton_clip.mp4"), "--gallery", gallery,
                       "--camera", "stage", "--json"], env)
    events = [json.loads(line) for line in watched.stdout.splitlines() if line.startswith("{")]
    alerts = [e for e in events if e.get("event") == "alert"]
    assert alerts, f"the clip raised no alert: {events[-1:]}\n{watched.stderr[-1000:]}"
    assert alerts[0]["two_person"] is True, alerts[0]
    return int(alerts[0]["id"])


# -- a real frvs serve that the test may kill ----------------------------------------


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    base: str

    def client(self, token: str, timeout: float = 120) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=timeout,
                            headers={"Authorization": f"Bearer {token}"})

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no rollback, no flush."""
        kill_group(self.proc)


@contextmanager
def killable_service(env: dict[str, str], log: Path, start_timeout: float = 90
                     ) -> Iterator[Service]:
    """``frvs serve`` on a free loopback port in a session of its own (so SIGKILL
    reaches anything it forked); killed afterwards if the test did not."""
    port = free_port()
    with log.open("a") as out:
        proc = subprocess.Popen([FRVS, "serve", "--port", str(port)], stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, **env},
                                start_new_session=True)
    service = Service(proc, f"http://127.0.0.1:{port}")
    try:
        wait_until_healthy(proc, service.base, log, start_timeout)
        yield service
    finally:
        service.kill()
