"""Faces in the console, in Chromium: the enrolment preview calls a face enrolment will
refuse what it is, with the reasons (not "usable"), and identify results show each face
of the probe, numbered on the photo and cropped beside its candidates."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import pytest
from console_helpers import Console, PersonFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # frvs serve and Chromium


def test_enrolment_preview_gives_the_reasons_a_face_is_refused(
        person: PersonFactory, console: Console, data_dir: Path, tmp_path: Path) -> None:
    # A real photo shrunk until its face is too small to enrol (still detected).
    photo = cv2.imread(str(data_dir / "identities" / "train" / "obama" / "obama.jpg"))
    small = tmp_path / "obama-small.png"
    cv2.imwrite(str(small), cv2.resize(photo, None, fx=0.1, fy=0.1,
                                       interpolation=cv2.INTER_AREA))
    with console.api("operator") as api:
        made = api.post("/v1/galleries", json={"name": "preview-g", "kind": "general"})
        assert made.status_code == 201, made.text
    op = person("operator")
    page = op.page
    page.get_by_role("link", name="Galleries").click()
    page.get_by_label("Gallery", exact=True).select_option("preview-g")
    page.get_by_label("Subject id").fill("obama")
    page.get_by_label("Photos (one face each)").set_input_files(str(small))
    preview = page.locator("figure.face-preview")
    preview.get_by_text("below the quality minimums").wait_for()
    text = preview.inner_text()
    assert "usable" not in text, text
    assert "face size 27" in text and "needs >= 40.0 px" in text, text
    assert preview.get_attribute("data-usable") == "false"
    assert page.get_by_role("button", name="Confirm enrolment").is_disabled()
    op.shot("enrol-preview-refused")

    # A good photo is still "usable", and can be confirmed.
    page.get_by_label("Photos (one face each)").set_input_files(
        str(data_dir / "identities" / "train" / "obama" / "obama.jpg"))
    page.locator("figure.face-preview[data-usable='true']").get_by_text(
        "One face: usable").wait_for()
    assert page.get_by_role("button", name="Confirm enrolment").is_enabled()
    op.assert_no_errors()


def test_identify_results_show_each_face_numbered_and_cropped(
        person: PersonFactory, console: Console, data_dir: Path) -> None:
    ids = data_dir / "identities"
    with console.api("operator") as api:
        made = api.post("/v1/galleries", json={"name": "two-faces", "kind": "general"})
        assert made.status_code == 201, made.text
        for subject, photo in (("obama", ids / "train/obama/obama.jpg"),
                               ("biden", next((ids / "train/biden").iterdir()))):
            with photo.open("rb") as f:
                enrolled = api.post(f"/v1/galleries/two-faces/subjects/{subject}/templates",
                                    files=[("images", (photo.name, f, "image/jpeg"))])
            assert enrolled.json()["enrolled"] == 1, enrolled.text
    inv = person("investigator")
    form = inv.page.locator("#identify-form")
    form.get_by_label("Gallery").select_option("two-faces")
    form.get_by_label("Probe photo").set_input_files(str(ids / "test" / "obama_and_biden.jpg"))
    form.get_by_label("Case reference").fill("CASE-8")
    form.get_by_label("Purpose").fill("console test: which face is whose")
    form.get_by_role("button", name="Search").click()
    results = inv.page.locator("#results")
    # Obama, Biden and a third person at the edge of the photo.
    results.get_by_role("img", name=re.compile(r"Probe photo with \d+ numbered")).wait_for()
    count = results.locator(".face-result").count()
    assert count >= 2
    for n in range(1, count + 1):
        crop = results.locator(f".face-result[data-face='{n}']").get_by_role(
            "img", name=f"Face {n} of the probe")
        assert crop.count() == 1
        size = crop.evaluate("c => [c.width, c.height]")
        assert size[0] == 112 and size[1] > 50, size
    # Each crop is a different face (the pixels differ).
    pixels = results.locator("canvas.face-crop").evaluate_all(
        "cs => cs.map(c => c.toDataURL())")
    assert len(pixels) == count and len(set(pixels)) == count
    matches = sorted(results.locator(".face-result").evaluate_all(
        "rs => rs.map(r => r.querySelector('p:last-child').textContent)"))
    assert any("obama" in m for m in matches) and any("biden" in m for m in matches), matches
    inv.shot("identify-faces-numbered")
    inv.assert_no_errors()
