"""Crash safety (SIGKILL mid-way through a folder import) and several processes enrolling
and identifying at once."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from callers import LOCAL
from gallery_helpers import CachingAnalyser, PrecomputedAnalyser, make_service

from frvs.galleries.enrolment import EnrolItem
from frvs.galleries.models import GallerySpec, OutcomeStatus

FRVS = Path(sys.executable).with_name("frvs")
COPIES = 4


def _tree(root: Path, train: Path) -> int:
    """COPIES x identities/train as symlinks: many images, few distinct ones."""
    count = 0
    for copy in range(COPIES):
        for person in sorted(p for p in train.iterdir() if p.is_dir()):
            folder = root / f"c{copy}_{person.name}"
            folder.mkdir(parents=True)
            for image in sorted(person.iterdir()):
                (folder / image.name).symlink_to(image)
                count += 1
    return count


def _templates(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM templates").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
def test_sigkill_mid_import_leaves_a_consistent_resumable_store(
    tmp_path: Path, analyser: CachingAnalyser, data_dir: Path
) -> None:
    total = _tree(tmp_path / "tree", data_dir / "identities" / "train")
    data = tmp_path / "data"
    url = f"sqlite:///{data / 'frvs.db'}"
    make_service(url, data, analyser).create(LOCAL, GallerySpec("crash"))
    env = os.environ | {"FRVS_DATA_DIR": str(data)}
    proc = subprocess.Popen([str(FRVS), "enroll", "crash", "--from-folder",
                             str(tmp_path / "tree"), "--json"], env=env,
                            stdout=subprocess.DEVNULL, stderr=(tmp_path / "err").open("wb"))
    deadline = time.monotonic() + 180
    while _templates(data / "frvs.db") < 3 and proc.poll() is None:
        assert time.monotonic() < deadline, "the import committed nothing in 180 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, (
        f"the import ended before it was killed: {(tmp_path / 'err').read_text()[-600:]}")

    with sqlite3.connect(data / "frvs.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        orphans = conn.execute("SELECT count(*) FROM templates t LEFT JOIN subjects s "
                               "ON s.id = t.subject_id WHERE s.id IS NULL").fetchone()[0]
        assert orphans == 0
        committed = conn.execute("SELECT count(*) FROM templates").fetchone()[0]
        # Each template committed with its enrolment entry, and no entry claims one
        # that is not there.
        entered = conn.execute("SELECT count(*) FROM audit_entries WHERE action = 'enrol' "
                               "AND outcome = 'ok'").fetchone()[0]
    assert 3 <= committed < total
    assert entered == committed

    restarted = make_service(url, data, analyser)  # "restart": indexes from the store
    assert restarted.warm() == committed
    report = restarted.enrol(LOCAL, "crash", restarted.plan_folder(tmp_path / "tree"))
    assert report.count(OutcomeStatus.DUPLICATE) == committed
    assert report.count(OutcomeStatus.ENROLLED) == total - committed
    assert restarted.show("crash")[0].templates == total
    assert restarted.warm() == total
    result = restarted.identify(LOCAL, "crash", data_dir / "identities/test/obama1.jpg", top=50)
    assert {c.subject for c in result.faces[0].candidates if c.score > 0.5} == {
        f"c{i}_obama" for i in range(COPIES)}


def _writer(url: str, data: str, worker: int, images: list[str],
            analyser: PrecomputedAnalyser) -> None:
    service = make_service(url, Path(data), analyser)
    for i, image in enumerate(images):
        subject = f"w{worker}_s{i}"
        report = service.enrol(LOCAL, "busy", [EnrolItem(subject, Path(image))])
        assert report.outcomes[0].status is OutcomeStatus.ENROLLED, report.as_dict()
        # Searchable as soon as enrolment returns, whatever the other processes do.
        face = service.identify(LOCAL, "busy", Path(image), top=100).faces[0]
        assert subject in {c.subject for c in face.candidates if c.score > 0.99}, face


def _reader(url: str, data: str, probe: str, seconds: float,
            analyser: PrecomputedAnalyser) -> None:
    service = make_service(url, Path(data), analyser)
    seen = 0
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        faces = service.identify(LOCAL, "busy", Path(probe), top=100).faces
        assert len(faces) == 1
        count = len(faces[0].candidates)
        assert count >= seen, "a search lost subjects it had already seen"
        seen = count


@pytest.mark.slow
def test_processes_enrolling_and_identifying_at_once_lose_no_writes(
    store_url: str, tmp_path: Path, analyser: CachingAnalyser, data_dir: Path
) -> None:
    images = sorted(str(p) for p in (data_dir / "identities" / "train").rglob("*.jp*g"))
    service = make_service(store_url, tmp_path, analyser)
    service.create(LOCAL, GallerySpec("busy"))
    for image in images:  # fill the cache so workers never run a model
        service.identify(LOCAL, "busy", Path(image))
    cached = analyser.precomputed()
    # spawn, not fork: the parent may hold gRPC (Milvus) or ONNX Runtime threads.
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_writer, args=(store_url, str(tmp_path), w, images, cached))
               for w in range(3)]
    reader = ctx.Process(target=_reader, args=(store_url, str(tmp_path), images[0], 6.0, cached))
    for p in [*writers, reader]:
        p.start()
    for p in [*writers, reader]:
        p.join(timeout=150)
        if p.exitcode is None:
            p.kill()
        assert p.exitcode == 0, f"worker {p.name} failed with exit code {p.exitcode}"
    overview, subjects = service.show("busy")
    assert (overview.subjects, overview.templates) == (3 * len(images), 3 * len(images))
    assert {s.external_id for s in subjects} == {
        f"w{w}_s{i}" for w in range(3) for i in range(len(images))}
