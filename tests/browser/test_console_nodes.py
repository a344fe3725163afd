"""The console's Cameras page shows edge nodes: a camera registered with the source
``edge`` is shown as fed by its node (no Start), and the Nodes table lists the node that
called in with its status, cameras, backlog, clock offset and drops."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from console_helpers import Console, PersonFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # frvs serve and Chromium


def test_cameras_page_shows_edge_nodes(console: Console, person: PersonFactory) -> None:
    with console.api() as admin:
        made = admin.post("/v1/cameras", json={"name": "pole-7", "source_url": "edge",
                                                "galleries": []})
        assert made.status_code == 201, made.text
        key = admin.post("/v1/keys", json={"name": "street-light-7", "role": "device",
                                           "cameras": ["pole-7"]})
        assert key.status_code == 201, key.text
    token = key.json()["token"]
    with console.api() as client:
        beat = client.post("/v1/edge/heartbeat", headers={"Authorization": f"Bearer {token}"},
                           json={"name": "street-light-7", "version": "9.9.9",
                                 "cameras": ["pole-7"], "backlog": 12,
                                 "backlog_bytes": 3 * 1048576, "dropped_crops": 4,
                                 "dropped_reports": 1,
                                 "sent_at": datetime.now(UTC).isoformat()})
    assert beat.status_code == 200, beat.text

    op = person("operator")
    op.page.goto("/console/cameras")
    row = op.page.locator("#nodes tbody tr", has_text="street-light-7")
    row.wait_for()
    text = row.inner_text()
    for shown in ("online", "pole-7", "12 (3.0 MiB)", "1 reports, 4 crops", "9.9.9"):
        assert shown in text, (shown, text)
    card = op.page.locator("article.camera", has_text="pole-7")
    assert "edge node" in card.inner_text()
    assert card.get_by_role("button", name="Start pole-7").is_disabled()
    op.shot("cameras-nodes")
    op.assert_no_errors()
