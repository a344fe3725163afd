"""/metrics answers loopback clients without a key; any other client only with
``Authorization: Bearer <api.metrics_key>`` (401 without one, 403 with a wrong one)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from frvs.api.app import create_api
from frvs.app import build_application
from frvs.config.settings import load_settings

KEY = "metrics-key-0123456789"


@pytest.mark.parametrize("key", [None, KEY])
def test_metrics_from_another_host_need_the_metrics_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str | None) -> None:
    if key:
        monkeypatch.setenv("FRVS_API__METRICS_KEY", key)
    app = build_application(load_settings(data_dir=tmp_path / "data"))
    # Starlette's test client calls from the host "testclient": not loopback.
    remote = TestClient(create_api(app))
    assert remote.get("/metrics").status_code == 401
    assert remote.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    allowed = remote.get("/metrics", headers={"Authorization": f"Bearer {KEY}"})
    if key is None:  # no key configured: nobody off the machine
        assert allowed.status_code == 403
        return
    assert allowed.status_code == 200
    names = {f.name for f in text_string_to_metric_families(allowed.text)}
    assert {"frvs_search_seconds", "frvs_audit_append_seconds", "frvs_alerts_raised",
            "frvs_notifications", "frvs_embed_batch_size"} <= names
    local = TestClient(create_api(app), client=("127.0.0.1", 50000))
    assert local.get("/metrics").status_code == 200
