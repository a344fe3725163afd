"""Camera nodes and the centre's intake, measured with real processes on loopback.

- **intake**: reports/s the centre accepts from 4 concurrent device clients, each report
  a new track (a real insert with its audit entries): one per ``POST /v1/sightings``
  with a template only and with template + best-shot crop (a real face crop, JPEG), and
  template-only reports 50 per ``POST /v1/sightings/batch`` (what a node sends when it
  has no crop to ship);
- **bytes per report**: the multipart request as sent, without and with the crop;
- **delivery latency**: from a track's end (its report committed to the node's outbox)
  to the centre's commit (``edge_reports.received_at``), a real ``frvs edge run`` on the
  hamilton clip over a healthy link: p50 / p95;
- **CPU per camera**: the clip scaled to 720p and looped, analysed at 5 fps by
  ``frvs edge run`` and by ``frvs watch`` (the same pipeline in one process with the
  galleries, as ``frvs serve`` runs a camera): CPU seconds per media second (1.0 = one
  core for a camera in real time; process start and model loading included);
- **1-hour outage**: the reports 2 such cameras make in an hour at the clip's rate,
  their bytes in the outbox (with crops), and whether all of them reach the centre
  once the link returns: a real outbox filled with that many reports (times spread over
  the hour) and drained by ``frvs edge run`` without cameras.

    python benchmarks/edge.py [--reports 400] [--loops 3]

Prints one JSON document on stdout (progress on stderr). Goals (issue 13): intake >= 200
reports/s without crops, p95 delivery <= 1 s. The machine is shared: the load average is
recorded; figures under load are not chased.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _serve
import httpx
import numpy as np
from _serve import SHARED, free_port, log
from PIL import Image
from sqlalchemy import select

from frvs.app import build_application
from frvs.config.settings import load_settings
from frvs.core.caller import Actor, AuditContext, Role
from frvs.edge.outbox import Outbox, OutboxLimits, Report
from frvs.galleries.enrolment import EnrolItem
from frvs.galleries.models import GalleryKind, GallerySpec
from frvs.video.service import CameraSpec
from frvs.video.tables import CameraRow

VIDEO = SHARED / "data" / "video"
CLIP = VIDEO / "short_hamilton_clip.mp4"
FRVS = _serve.FRVS


def frvs(data: Path, *args: str) -> str:
    done = subprocess.run([FRVS, *args], check=True, capture_output=True, text=True,
                          env={**os.environ, "FRVS_DATA_DIR": str(data)})
    return done.stdout


def setup_centre(data: Path) -> dict[str, str]:
    """A watch list with the two reference photos, four edge cameras and their keys."""
    app = build_application(load_settings(data_dir=data))
    app.store.open()
    me = AuditContext(Actor("cli", "benchmark"))
    app.galleries.create(me, GallerySpec("hamilton", GalleryKind.WATCH_LIST, purpose="bench",
                                         legal_basis="bench"))
    app.galleries.enrol(me, "hamilton", [EnrolItem(p, VIDEO / f"{p}.png")
                                         for p in ("lin-manuel-miranda", "alex-lacamoire")])
    cameras = ("intake", "clip", "outage-a", "outage-b")
    for camera in cameras:
        app.video.cameras.add(me, CameraSpec(camera, "edge", ("hamilton",)))
    # The simulated outage's reports date from the last hour: the cameras are dated as
    # registered before it (the centre refuses reports from before a camera existed).
    with app.store.unit(write=True) as uow:
        for row in uow.session.scalars(select(CameraRow)):
            row.created_at -= timedelta(hours=2)
    tokens = {camera: app.oversight.keys.create(
        me, Role.DEVICE, f"node-{camera}",
        cameras=[camera, "outage-b"] if camera == "outage-a" else [camera]).token
        for camera in cameras[:3]}
    app.stop()
    return tokens


def face_crop() -> bytes:
    image = Image.open(VIDEO / "lin-manuel-miranda.png").convert("RGB")
    image.thumbnail((160, 160))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def space_of(data: Path) -> tuple[str, int]:
    """The default pack's model space key and dimension ('frvs models --json')."""
    packs = json.loads(frvs(data, "models", "--json"))["packs"]
    default = next(p for p in packs if p.get("default"))
    return str(default["space"]), int(default["embedding_size"])


def measure_intake(base: str, token: str, space: tuple[str, int], *, reports: int,
                   crop: bytes | None, first_track: int, batch: int = 1) -> dict[str, Any]:
    """Reports/s the centre takes from 4 concurrent clients: one report per request
    (multipart), or ``batch`` template-only reports per POST /v1/sightings/batch."""
    space_key, dim = space
    rng = np.random.default_rng(first_track)
    now = datetime.now(UTC)
    forms = []
    for i in range(reports):
        v = rng.standard_normal(dim).astype("<f4")
        v /= np.linalg.norm(v)
        forms.append({"camera": "intake", "track_id": str(first_track + i),
                      "first_seen": (now - timedelta(seconds=3)).isoformat(),
                      "last_seen": now.isoformat(), "frames": "12", "space": space_key,
                      "template": base64.b64encode(v.tobytes()).decode(),
                      "quality": json.dumps({"overall": 0.6, "detector_score": 0.9})})
    files = {"image": ("best-shot.jpg", crop, "image/jpeg")} if crop else None
    sample = httpx.Request("POST", f"{base}/v1/sightings", data=forms[0], files=files,
                           headers={"Authorization": f"Bearer {token}"})
    size = len(sample.read())
    codes: list[int] = []
    lock = threading.Lock()
    queue = list(range(reports))

    if batch > 1:
        size = len(json.dumps({"reports": [_batched(f) for f in forms[:batch]]})) // batch

    def worker() -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"},
                          timeout=60) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    take = [queue.pop() for _ in range(min(batch, len(queue)))]
                if batch > 1:
                    answer = client.post("/v1/sightings/batch", json={
                        "reports": [_batched(forms[i]) for i in take]})
                    got = ([int(item["status"]) for item in answer.json()]
                           if answer.status_code == 200 else [answer.status_code] * len(take))
                else:
                    got = [client.post("/v1/sightings", data=forms[take[0]],
                                       files=files).status_code]
                with lock:
                    codes.extend(got)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {"reports": reports, "per_request": batch, "seconds": round(elapsed, 2),
            "reports_per_s": round(reports / elapsed, 1), "bytes_per_report": size,
            "accepted": codes.count(201), "other": sorted(set(codes) - {201})}


def _batched(form: dict[str, str]) -> dict[str, object]:
    return form | {"track_id": int(form["track_id"]), "frames": int(form["frames"]),
                   "quality": json.loads(form["quality"])}


def run_node(data: Path, base: str, token: str, *args: str) -> tuple[float, float]:
    """Run ``frvs edge run --once`` to the end: (wall seconds, CPU seconds)."""
    started = time.perf_counter()
    proc = subprocess.Popen([FRVS, "edge", "run", "--once", "--centre", base,
                             "--retry-max-s", "1", "--heartbeat-s", "2", *args],
                            env={**os.environ, "FRVS_DATA_DIR": str(data),
                                 "FRVS_DEVICE_KEY": token},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"frvs edge run exited {proc.returncode}")
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def latency(node: Path, centre: Path) -> dict[str, Any]:
    with sqlite3.connect(node / "edge" / "outbox.db") as db:
        made = {(t, f): m for t, f, m in db.execute(
            "select track_id, first_seen, made_at from reports where camera = 'clip'")}
    with sqlite3.connect(centre / "frvs.db") as db:
        received = db.execute("select track_id, first_seen, received_at from edge_reports "
                              "where camera = 'clip'").fetchall()
    waits = []
    for track, first, at in received:
        first_utc = datetime.fromisoformat(first).replace(tzinfo=UTC)
        key = (track, first_utc.isoformat())
        if key in made:
            got = datetime.fromisoformat(at).replace(tzinfo=UTC).timestamp()
            waits.append(got - made[key])
    waits.sort()
    if not waits:
        return {"reports": 0}
    return {"reports": len(waits), "p50_s": round(statistics.median(waits), 3),
            "p95_s": round(waits[min(len(waits) - 1, int(0.95 * len(waits)))], 3),
            "max_s": round(waits[-1], 3)}


def clip_720p(folder: Path, loops: int) -> Path:
    out = folder / "clip720.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-stream_loop", str(loops - 1),
                    "-i", str(CLIP), "-an", "-vf", "scale=1280:720", "-c:v", "libx264",
                    "-preset", "veryfast", str(out)], check=True)
    return out


def watch_cpu(data: Path, clip: Path) -> tuple[float, float]:
    started = time.perf_counter()
    proc = subprocess.Popen([FRVS, "watch", str(clip), "--gallery", "hamilton", "--fps", "5",
                             "--json"], env={**os.environ, "FRVS_DATA_DIR": str(data)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def outage(folder: Path, base: str, token: str, space: tuple[str, int], *,
           reports_per_hour_per_camera: float, crop: bytes) -> dict[str, Any]:
    """Fill a node's outbox with an hour of two cameras' reports, then drain it."""
    space_key, dim = space
    node = folder / "outage-node"
    box = Outbox(node / "edge" / "outbox.db", OutboxLimits())
    count = round(2 * reports_per_hour_per_camera)
    start = datetime.now(UTC) - timedelta(hours=1)
    rng = np.random.default_rng(7)
    batch: list[tuple[Report, float]] = []
    for i in range(count):
        camera = "outage-a" if i % 2 == 0 else "outage-b"
        v = rng.standard_normal(dim).astype("<f4")
        v /= np.linalg.norm(v)
        seen = start + timedelta(seconds=3600 * i / max(1, count))
        batch.append((Report(camera, i, seen, seen + timedelta(seconds=2), 10, space_key,
                             v.tobytes(), {"overall": 0.6}, crop), seen.timestamp()))
        if len(batch) == 500:  # the node adds one by one; the simulation in batches
            box.add_all(batch)
            batch = []
    box.add_all(batch)
    status = box.status()
    box.set_meta("cameras", ["outage-a", "outage-b"])
    box.close()
    wall, _ = run_node(node, base, token)
    box = Outbox(node / "edge" / "outbox.db")
    after = box.status()
    box.close()
    return {"cameras": 2, "reports": count, "outbox_bytes": status.backlog_bytes,
            "outbox_mb": round(status.backlog_bytes / 2**20, 2),
            "dropped": status.counters["dropped_crops"] + status.counters["dropped_reports"],
            "delivered": after.delivered, "refused": after.refused, "left": after.backlog,
            "drain_seconds": round(wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=400)
    parser.add_argument("--loops", type=int, default=3)
    parser.add_argument("--parts", default="intake,latency,cpu,outage",
                        help="which measurements to run (comma-separated)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    folder = Path(tempfile.mkdtemp(prefix="frvs-edge-bench-"))
    centre = folder / "centre"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {"load_avg_before": [round(x, 2) for x in os.getloadavg()]}
    log("setting up the centre")
    tokens = setup_centre(centre)
    space = space_of(centre)
    proc = _serve.start(centre, port, {"FRVS_DEVICES__SUBMIT_RATE_PER_MINUTE": "1000000",
                                       "FRVS_DEVICES__SUBMIT_BURST": "100000"})
    try:
        crop = face_crop()
        made = 0
        if "intake" in parts:
            intake(result, base, tokens["intake"], space, reports=args.reports, crop=crop)
        if "latency" in parts or "outage" in parts:
            log("delivery latency: a node on the clip over a healthy link")
            node = folder / "latency-node"
            wall, _ = run_node(node, base, tokens["clip"], "--camera", f"clip={CLIP}")
            result["delivery_latency"] = latency(node, centre) | {
                "run_seconds": round(wall, 1)}
            log(json.dumps(result["delivery_latency"]))
            with sqlite3.connect(node / "edge" / "outbox.db") as db:
                made = db.execute("select count(*) from reports").fetchone()[0]
        clip_s = 10.0
        if "cpu" in parts:
            cpu(result, folder, base, tokens["clip"], centre=centre, loops=args.loops)
        if "outage" in parts:
            per_hour = made / clip_s * 3600
            log(f"1-hour outage: 2 cameras at {per_hour:.0f} reports/h each")
            result["outage_1h"] = outage(folder, base, tokens["outage-a"], space,
                                         reports_per_hour_per_camera=per_hour, crop=crop) | {
                "reports_per_hour_per_camera": round(per_hour)}
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(folder, ignore_errors=True)
    result["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    goals: dict[str, bool] = {}
    if "intake" in parts:
        goals["intake_200_per_s"] = max(
            result["intake_template_only"]["reports_per_s"],
            result["intake_template_only_batched"]["reports_per_s"]) >= 200
    if "delivery_latency" in result:
        goals["p95_delivery_1s"] = result["delivery_latency"].get("p95_s", 99) <= 1.0
    if "outage_1h" in result:
        goals["outage_nothing_lost"] = (result["outage_1h"]["delivered"]
                                        == result["outage_1h"]["reports"])
    result["goals"] = goals
    print(json.dumps(result, indent=2))


def intake(result: dict[str, Any], base: str, token: str, space: tuple[str, int], *,
           reports: int, crop: bytes) -> None:
    """The three intake figures into ``result``."""
    log("intake without crops")
    result["intake_template_only"] = measure_intake(
        base, token, space, reports=reports, crop=None, first_track=1)
    log(json.dumps(result["intake_template_only"]))
    log("intake without crops, batched 50 per request (how a node drains a backlog)")
    result["intake_template_only_batched"] = measure_intake(
        base, token, space, reports=reports * 3, crop=None, first_track=5 * 10**5, batch=50)
    log(json.dumps(result["intake_template_only_batched"]))
    log("intake with crops")
    result["intake_with_crop"] = measure_intake(
        base, token, space, reports=reports, crop=crop, first_track=10**6)
    log(json.dumps(result["intake_with_crop"]))


def cpu(result: dict[str, Any], folder: Path, base: str, token: str, *, centre: Path,
        loops: int) -> None:
    """CPU per 720p camera at 5 fps, on the node and in one process, into ``result``."""
    log(f"CPU per 720p camera at 5 fps ({loops} loops of the clip)")
    big = clip_720p(folder, loops)
    media_s = 10.0 * loops
    wall_e, cpu_e = run_node(folder / "cpu-node", base, token, "--camera", f"clip={big}")
    wall_w, cpu_w = watch_cpu(centre, big)
    result["cpu_per_720p_camera_5fps"] = {
        "media_seconds": media_s,
        "edge_cpu_s": round(cpu_e, 1), "edge_cpu_per_media_s": round(cpu_e / media_s, 3),
        "in_process_cpu_s": round(cpu_w, 1),
        "in_process_cpu_per_media_s": round(cpu_w / media_s, 3),
        "edge_wall_s": round(wall_e, 1), "in_process_wall_s": round(wall_w, 1),
        "note": "in-process = 'frvs watch', the serve pipeline with galleries in one "
                "process; both include process start and model loading"}
    log(json.dumps(result["cpu_per_720p_camera_5fps"]))


if __name__ == "__main__":
    main()
