"""Verification on JPEGs decoded at a reduced DCT scale gives the scores of a full-size
decode: every photo of ../shared/data/pairs, every labelled pair."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from frvs.app import Application
from frvs.core.errors import NoFaceError
from frvs.core.templates import Template
from frvs.faces.service import MAX_REDUCED_CROP_SCALE, Picture, crop_scale
from frvs.imaging.decode import ScaledImage, decode_image, decode_scaled

WORST_SCORE_CHANGE = 0.06
MEAN_SCORE_CHANGE = 0.01
"""Largest and mean change of a pair's cosine score allowed. The change comes mostly from
the detector: its landmarks move by a fraction of a pixel when its input is shrunk from
the reduced image rather than the full one, and SFace templates follow them (the full
image's crop with the reduced image's landmarks moves a template as much). Measured:
0.050 at worst, decisions unchanged; the threshold is 0.363."""


def _templates(app: Application, images: dict[str, Picture]) -> dict[str, Template | None]:
    out: dict[str, Template | None] = {}
    for name, image in images.items():
        try:
            out[name] = app.engine.probe(image, name).face.template
        except NoFaceError:
            out[name] = None
    return out


@pytest.fixture(scope="module")
def both_ways(session_app: Application, data_dir: Path
              ) -> tuple[dict[str, Template | None], dict[str, Template | None],
                         dict[str, ScaledImage]]:
    root = data_dir / "pairs"
    side = session_app.engine.options.decode_side
    names = sorted(f"images/{p.name}" for p in (root / "images").iterdir())
    full: dict[str, Picture] = {n: decode_image((root / n).read_bytes(), name=n) for n in names}
    scaled = {n: decode_scaled((root / n).read_bytes(), side, name=n) for n in names}
    return (_templates(session_app, full),
            _templates(session_app, dict[str, Picture](scaled)), scaled)


def test_many_pair_photos_are_decoded_reduced_yet_cover_the_working_size(
        session_app: Application, both_ways: tuple[object, object, dict[str, ScaledImage]]
) -> None:
    scaled = both_ways[2]
    options = session_app.engine.options
    reduced = [s for s in scaled.values() if s.factor > 1]
    assert len(reduced) >= len(scaled) // 3  # 29 of the 64 photos
    for image in reduced:
        assert max(image.pixels.shape[:2]) >= options.decode_side
    # Within the slack, below the working size: decoded at half scale, detected unscaled.
    assert any(max(s.pixels.shape[:2]) < options.max_side for s in reduced)


def test_pair_scores_match_the_full_size_decode(
        session_app: Application, data_dir: Path,
        both_ways: tuple[dict[str, Template | None], dict[str, Template | None], object]
) -> None:
    full, scaled, _ = both_ways
    assert [n for n, t in full.items() if t is None] == [n for n, t in scaled.items()
                                                         if t is None]
    threshold = session_app.packs.get().info.thresholds.default
    rows = list(csv.DictReader((data_dir / "pairs/pairs.csv").open()))
    changes, decisions = [], [0, 0]
    for row in rows:
        a, b = row["image_a"], row["image_b"]
        fa, fb, sa, sb = full[a], full[b], scaled[a], scaled[b]
        if fa is None or fb is None or sa is None or sb is None:
            continue
        was, now = fa.similarity(fb), sa.similarity(sb)
        changes.append(abs(was - now))
        decisions[0] += (was >= threshold) == (row["same"] == "1")
        decisions[1] += (now >= threshold) == (row["same"] == "1")
    assert max(changes) <= WORST_SCORE_CHANGE, f"a pair's score moved by {max(changes):.4f}"
    assert float(np.mean(changes)) <= MEAN_SCORE_CHANGE, f"mean change {np.mean(changes):.4f}"
    assert decisions[1] >= decisions[0], f"right decisions {decisions}"


def test_a_small_face_is_aligned_from_the_full_size_decode(
        session_app: Application, data_dir: Path) -> None:
    """A face too small in the reduced image for a crop without magnification gets its
    crop, quality and template from every pixel: exactly the full-size result."""
    # The 600x604 group photo on a 1400x1400 canvas: decoded at 1/2, its faces are
    # half their size, too small for a crop without magnification.
    group = Image.open(data_dir / "pairs/images/selfie-many-people.jpg").convert("RGB")
    canvas = Image.new("RGB", (1400, 1400), (128, 128, 128))
    canvas.paste(group, (400, 400))
    buffer = io.BytesIO()
    canvas.save(buffer, "JPEG", quality=92)
    data = buffer.getvalue()
    scaled = decode_scaled(data, session_app.engine.options.decode_side)
    assert scaled.factor == 2
    faces = session_app.engine.detect(scaled)
    small = [f for f in faces
             if crop_scale(f.detection.scaled(1 / scaled.factor)) > MAX_REDUCED_CROP_SCALE]
    assert small, "the group photo should hold faces small in its reduced decode"
    face = small[0]
    full = decode_image(data)
    pack = session_app.packs.get()
    (from_scaled,) = session_app.engine.embed(scaled, [face])
    (expected,) = pack.embedder.embed(full, [face.detection])
    np.testing.assert_array_equal(from_scaled.template.vector, expected.vector)


@pytest.mark.parametrize("side", [1216, 2500])
def test_a_decode_short_of_the_working_size_finds_the_small_faces_a_full_one_does(
        session_app: Application, data_dir: Path, side: int) -> None:
    """A reduced decode within the slack (608 or 625 px against 640) is enlarged to the
    working size for the detector: detected as it was, it lost two thirds of 16-20 px
    faces that the full decode shrunk to 640 px finds."""
    group = Image.open(data_dir / "pairs/images/selfie-many-people.jpg").convert("RGB")
    width = round(102 * side / 1216)
    group = group.resize((width, round(width * group.height / group.width)), Image.LANCZOS)
    canvas = Image.new("RGB", (side, side), (128, 128, 128))
    step = side // 3
    for i in range(3):
        for j in range(3):
            canvas.paste(group, (side // 64 + i * step, side // 64 + j * step))
    buffer = io.BytesIO()
    canvas.save(buffer, "JPEG", quality=92)
    data = buffer.getvalue()
    options = session_app.engine.options
    scaled = decode_scaled(data, options.decode_side)
    assert options.decode_side <= max(scaled.pixels.shape[:2]) < options.max_side
    full = len(session_app.engine.detect(decode_image(data)))
    assert full >= 15
    assert len(session_app.engine.detect(scaled)) >= full - 1
