"""Writing a calibrated threshold into the YAML configuration for one pack.

Here rather than in ``frvs.evaluation`` because the file is validated as a configuration
before it replaces the old one: evaluation measures, configuration is written here.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml

from frvs.config.settings import load_settings, read_config_file
from frvs.core.errors import ConfigurationError
from frvs.evaluation.calibration import FmrCalibration


def write_calibration(config: Path, calibration: FmrCalibration, as_default: bool = False) -> None:
    """Put the threshold under ``thresholds.<pack>.by_fmr`` (and ``default`` if asked) in
    ``config``, creating it if needed. The result is validated before it replaces the
    file, atomically; other keys are kept (YAML comments are not)."""
    document = read_config_file(config) if config.exists() else {}
    thresholds = document.setdefault("thresholds", {})
    if not isinstance(thresholds, dict):
        raise ConfigurationError(f"{config}: 'thresholds' must be a mapping")
    entry = thresholds.setdefault(calibration.pack, {})
    entry.setdefault("by_fmr", {})[calibration.target_fmr] = calibration.threshold
    if as_default:
        entry["default"] = calibration.threshold
    entry["source"] = calibration.source
    config.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".frvs-", suffix=".yaml", dir=config.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yaml.safe_dump(document, f, sort_keys=False, allow_unicode=True)
        load_settings(Path(tmp))  # refuse to write a configuration FRVS cannot load
        os.replace(tmp, config)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
