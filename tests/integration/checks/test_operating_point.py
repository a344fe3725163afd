"""Where an identity check's threshold comes from: the pack's threshold calibrated for the
declared FMR (written by 'frvs calibrate --write' into the configuration), else the
pack's default, said so; and a deployment that requires calibration refuses without."""

from __future__ import annotations

from pathlib import Path

import pytest
from callers import LOCAL

from frvs.app import build_application
from frvs.checks.models import LiveFrame, parse_challenge
from frvs.config.settings import load_settings
from frvs.core.errors import ConfigurationError
from frvs.imaging.decode import read_image


def test_a_calibrated_threshold_for_the_declared_fmr_is_used(tmp_path: Path) -> None:
    config = tmp_path / "frvs.yaml"
    config.write_text("thresholds:\n  yunet_sface:\n    by_fmr: {0.0001: 0.52, 0.001: 0.45}\n"
                      "    source: frvs calibrate on our counter pairs\n"
                      "checks:\n  target_fmr: 0.0001\n")
    app = build_application(load_settings(config, data_dir=tmp_path / "data"))
    point = app.checks.operating_point()
    assert (point.threshold, point.calibrated, point.target_fmr) == (0.52, True, 0.0001)
    assert point.source == "frvs calibrate on our counter pairs"


def test_without_calibration_the_default_is_used_and_said(tmp_path: Path) -> None:
    app = build_application(load_settings(data_dir=tmp_path / "data"))
    point = app.checks.operating_point()
    assert (point.threshold, point.calibrated) == (0.363, False)
    assert point.source.startswith("not calibrated for FMR 0.001 on this deployment")


def test_a_deployment_requiring_calibration_refuses_without(tmp_path: Path,
                                                            data_dir: Path) -> None:
    app = build_application(load_settings(data_dir=tmp_path / "data",
                                          checks={"require_calibrated": True}))
    with pytest.raises(ConfigurationError, match=r"need a threshold calibrated for FMR 0\.001"):
        app.checks.operating_point()
    image = read_image(data_dir / "pairs" / "images" / "img38.jpg")
    with pytest.raises(ConfigurationError):
        app.checks.run(LOCAL, image, [LiveFrame(image, i / 5, str(i)) for i in range(5)],
                       parse_challenge("left"))
    app.stop()
