"""Identity check speed: one check with 20 live frames, end to end.

Prints one JSON document on stdout (progress goes to stderr):

- ``http``: ``POST /v1/checks`` to a real ``frvs serve`` on 127.0.0.1 (upload of the
  document and 20 JPEG frames of 640x360, decoding, detection and embedding of every
  frame, liveness, the row and its audit entry committed): median and max wall time
  in ms, and the server process's CPU seconds per check (user + system, from
  ``/proc/<pid>/stat``);
- ``in_process``: ``IdentityChecks.run`` on decoded frames (no HTTP, no JPEG decoding);
- ``goal_ms``: 1500; ``machine``: cores and load average at the start and the end.

The frames are the real head turn of the shared clip (3.70-7.85 s of
``short_hamilton_clip.mp4`` at 20 frames), the document an ID card made from the clip's
reference photo of the same person (``tests/support/check_media.py``).

    python benchmarks/check.py [--repeat N] [--port P]

The machine may be shared: read the figures with the load average beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
import check_media as cm
from _serve import FRVS, cpu_seconds, log, start

from frvs.app import build_application
from frvs.checks.models import LiveFrame, parse_challenge
from frvs.config.settings import load_settings
from frvs.core.caller import Actor, AuditContext
from frvs.imaging.decode import decode_image

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FRVS_SHARED", REPO.parent / "shared")) / "data"
FRAMES = 20
GOAL_MS = 1500.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--port", type=int, default=18810)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="frvs-bench-check-") as tmp:
        root = Path(tmp)
        app = build_application(load_settings(data_dir=root / "inproc"))
        card = cm.id_card(cm.portrait(app, DATA / "video" / "lin-manuel-miranda.png"))
        span = cm.TURN_END - cm.TURN_START
        paths = cm.turn_frames(DATA, root / "frames", fps=FRAMES / span)[:FRAMES]
        frames = [p.read_bytes() for p in paths]
        assert len(frames) == FRAMES, len(frames)
        challenge = "left,right"

        log("in process ...")
        caller = AuditContext(Actor("cli", "bench"))
        live = [LiveFrame(decode_image(f), i * span / FRAMES, str(i))
                for i, f in enumerate(frames)]
        document = decode_image(card)
        moves = parse_challenge(challenge)
        app.checks.run(caller, document, live, moves)  # warm-up: loads the models
        inproc = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = app.checks.run(caller, document, live, moves)
            inproc.append((time.perf_counter() - t0) * 1000)
        assert result.passed, result.as_dict()
        app.stop()

        log("over HTTP ...")
        env = {**os.environ, "FRVS_DATA_DIR": str(root / "served"),
               "FRVS_CHECKS__REQUIRE_ISSUED_CHALLENGE": "false"}  # a fixed challenge
        admin = json.loads(subprocess.run([FRVS, "init", "--json"], capture_output=True,
                                          text=True, env=env, check=True).stdout)["admin_key"]
        proc = start(root / "served", args.port)
        try:
            base = f"http://127.0.0.1:{args.port}"
            with httpx.Client(base_url=base, timeout=120) as client:
                key = client.post("/v1/keys", json={"name": "bench", "role": "verifier"},
                                  headers={"Authorization": f"Bearer {admin}"}).json()["token"]
                files = [("document", ("card.jpg", card, "image/jpeg"))] + [
                    ("live", (f"f{i:02d}.jpg", f, "image/jpeg")) for i, f in enumerate(frames)]
                times = ",".join(f"{i * span / FRAMES:.3f}" for i in range(FRAMES))
                data = {"challenge": challenge, "times": times}
                headers = {"Authorization": f"Bearer {key}"}

                def post() -> float:
                    t0 = time.perf_counter()
                    r = client.post("/v1/checks", files=files, data=data, headers=headers)
                    assert r.status_code == 201 and r.json()["passed"], r.text
                    return (time.perf_counter() - t0) * 1000

                post()  # warm-up
                cpu0 = cpu_seconds(proc.pid)
                wall = [post() for _ in range(args.repeat)]
                cpu = (cpu_seconds(proc.pid) - cpu0) / args.repeat
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    report = {
        "frames": FRAMES,
        "frame_size": "640x360 JPEG",
        "goal_ms": GOAL_MS,
        "http": {"median_ms": round(statistics.median(wall), 1), "max_ms": round(max(wall), 1),
                 "cpu_s_per_check": round(cpu, 3),
                 "meets_goal": statistics.median(wall) < GOAL_MS},
        "in_process": {"median_ms": round(statistics.median(inproc), 1),
                       "max_ms": round(max(inproc), 1)},
        "repeat": args.repeat,
        "machine": {"cores": os.cpu_count(), "load_average_start": load_before,
                    "load_average_end": os.getloadavg()},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
