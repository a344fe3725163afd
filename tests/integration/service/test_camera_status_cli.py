"""`frvs camera status --url` asks a running service how its cameras are doing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import factories
import pytest
from service_helpers import free_port, frvs, served


@pytest.mark.slow
def test_camera_status_from_a_running_service(tmp_path: Path, data_dir: Path) -> None:
    frames = factories.photo_folder(
        tmp_path / "frames", sorted((data_dir / "identities" / "train").glob("*/*.*"))[:3])
    env = {"FRVS_DATA_DIR": str(tmp_path / "data")}
    frvs(["gallery", "create", "staff"], env)
    frvs(["camera", "add", "door", str(frames), "--fps", "0", "-g", "staff"], env)
    with served(env, tmp_path / "serve.log") as service, service.client() as admin:
        operator = admin.post("/v1/keys", json={"name": "op", "role": "operator"}).json()
        auditor = admin.post("/v1/keys", json={"name": "au", "role": "auditor"}).json()
        deadline = time.monotonic() + 60
        while True:  # the folder camera starts with the service and reads its 3 photos
            run = frvs(["camera", "status", "--url", service.base, "--json"],
                       env | {"FRVS_API_KEY": operator["token"]})
            cameras = json.loads(run.stdout)["cameras"]
            door = next((c for c in cameras if c["camera"] == "door"), None)
            if (door and door["frames_processed"] == 3) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert door is not None and door["frames_processed"] == 3, cameras
        assert door["health"] in {"online", "ended"}

        refused = frvs(["camera", "status", "--url", service.base, "--json"],
                       env | {"FRVS_API_KEY": auditor["token"]}, check=False)
        assert refused.returncode == 18, refused.stdout
        keyless = frvs(["camera", "status", "--url", service.base, "--json"],
                       {k: v for k, v in env.items()} | {"FRVS_API_KEY": ""}, check=False)
        assert keyless.returncode == 22 and "FRVS_API_KEY" in keyless.stdout
    nobody = frvs(["camera", "status", "--url", f"http://127.0.0.1:{free_port()}", "--json"],
                  env | {"FRVS_API_KEY": "x"}, check=False)
    assert nobody.returncode == 22 and "cannot reach" in nobody.stdout
