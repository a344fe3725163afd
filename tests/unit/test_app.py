"""Building the application imports what its services need up front, and leaves
libraries only some operations use (PyAV, httpx, Alembic) until those run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LATER = ["av", "httpx", "alembic", "onnx", "onnxruntime", "fastapi", "uvicorn", "matplotlib"]


def test_building_the_application_leaves_optional_libraries_unimported(tmp_path: Path) -> None:
    script = (
        "import json, sys\n"
        "from frvs.app import build_application\n"
        "from frvs.config.settings import load_settings\n"
        f"build_application(load_settings(data_dir={str(tmp_path)!r}))\n"
        f"print(json.dumps([n for n in {LATER!r} if n in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []
    assert not any(tmp_path.iterdir())  # nor touches the data directory
