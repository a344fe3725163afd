"""The camera cards in Chromium: before a camera has analysed a frame its card shows the
placeholder and no broken image (the stylesheet's display:block no longer overrides the
image's 'hidden')."""

from __future__ import annotations

from pathlib import Path

import pytest
from console_helpers import Console, PersonFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # frvs serve and Chromium


def test_a_camera_without_frames_shows_only_its_placeholder(
        person: PersonFactory, console: Console, data_dir: Path) -> None:
    clip = data_dir / "video" / "short_hamilton_clip.mp4"
    with console.api("operator") as api:  # disabled: it never runs, so never has a frame
        made = api.post("/v1/cameras", json={
            "name": "idle-door", "source_url": str(clip), "enabled": False})
        assert made.status_code == 201, made.text
    op = person("operator")
    op.page.get_by_role("link", name="Cameras").click()
    card = op.page.locator("article.camera[data-camera='idle-door']")
    card.wait_for()
    card.locator(".frame.placeholder").wait_for()
    image = card.locator("img.frame")
    assert image.count() == 1 and image.is_hidden()
    assert image.evaluate("img => getComputedStyle(img).display") == "none"
    box = card.bounding_box()
    placeholder = card.locator(".frame.placeholder").bounding_box()
    assert box and placeholder and placeholder["height"] > 50
    op.shot("camera-card-placeholder")
    op.assert_no_errors()
