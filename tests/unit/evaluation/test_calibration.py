"""Calibration: the threshold for a target FMR, written into YAML, read back by the registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from frvs.app import build_application
from frvs.config.settings import load_settings
from frvs.config.thresholds_file import write_calibration
from frvs.core.errors import ConfigurationError, InvalidInputError
from frvs.evaluation.calibration import calibrate
from frvs.evaluation.metrics import ScoreSets

SCORES = ScoreSets.of([0.9, 0.8, 0.6, 0.4], [0.7, 0.5, 0.3, 0.2])


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    path = tmp_path / "cal.csv"
    path.write_text("image_a,image_b,same\n")
    return path


def test_threshold_for_target(pairs_file: Path) -> None:
    c = calibrate(SCORES, 0.25, "yunet_sface", pairs_file)
    # Lowest threshold with FMR <= 1/4 on these 4 impostors is 0.6 (FNMR 1/4 there).
    assert (c.threshold, c.fmr, c.fnmr) == (0.6, 0.25, 0.25)
    assert "FMR 0.25" in c.source and c.dataset_sha256[:12] in c.source


def test_unreachable_target_is_refused(pairs_file: Path) -> None:
    with pytest.raises(InvalidInputError, match="not reachable with 4 impostor"):
        calibrate(SCORES, 0.1, "yunet_sface", pairs_file)


def test_written_threshold_reaches_the_pack(pairs_file: Path, tmp_path: Path) -> None:
    config = tmp_path / "frvs.yaml"
    config.write_text("detection:\n  max_side: 800\n")
    c = calibrate(SCORES, 0.25, "yunet_sface", pairs_file)
    write_calibration(config, c)
    settings = load_settings(config, data_dir=tmp_path / "data")
    assert settings.detection.max_side == 800  # other keys kept
    info = build_application(settings).packs.info("yunet_sface")
    assert info.thresholds.for_fmr(0.25) == 0.6
    assert info.thresholds.default == 0.363  # not the default unless asked
    write_calibration(config, c, as_default=True)
    info = build_application(load_settings(config, data_dir=tmp_path)).packs.info("yunet_sface")
    assert info.thresholds.default == 0.6
    assert info.thresholds.source.startswith("frvs calibrate at FMR 0.25")


def test_thresholds_for_an_unknown_pack_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "frvs.yaml"
    config.write_text("thresholds:\n  nosuchpack:\n    default: 0.5\n")
    with pytest.raises(ConfigurationError, match="nosuchpack"):
        build_application(load_settings(config, data_dir=tmp_path))
