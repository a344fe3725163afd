"""The command line starts light: importing it, or building one command, leaves the
modules other commands need unimported (what keeps one-shot commands fast), while
``frvs --help`` still lists every command."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from typer.testing import CliRunner

from frvs.cli.main import COMMANDS, app, load_command

# What no command needs just to start: the HTTP stack, the store and its migrations, the
# runtimes, evaluation figures, optional backends and the composition root itself.
HEAVY = ["fastapi", "uvicorn", "starlette", "sqlalchemy", "alembic", "matplotlib", "faiss",
         "pymilvus", "av", "cv2", "onnx", "onnxruntime", "frvs.app", "frvs.api",
         "frvs.config.settings", "frvs.models.dlib_pack"]
OTHER_COMMANDS = ["frvs.cli.video", "frvs.cli.edge", "frvs.cli.evaluation", "frvs.cli.admin",
                  "frvs.cli.galleries", "frvs.cli.serve", "frvs.cli.webhooks"]


def _imported_after(code: str, names: list[str]) -> list[str]:
    """The modules of ``names`` that a fresh interpreter has imported after ``code``."""
    script = f"import json, sys\n{code}\nprint(json.dumps([n for n in {names!r} "\
             "if n in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    imported: list[str] = json.loads(out.stdout)
    return imported


def test_importing_the_command_line_imports_no_heavy_module() -> None:
    assert _imported_after("import frvs.cli.main", HEAVY + OTHER_COMMANDS) == []


def test_building_verify_imports_only_its_own_command_module() -> None:
    code = "from frvs.cli.main import load_command\nload_command('verify')"
    watched = [m for m in HEAVY if m != "cv2"]  # images are read with it
    assert _imported_after(code, [*watched, *OTHER_COMMANDS, "frvs.cli.faces"]) == [
        "frvs.cli.faces"]


def test_every_command_is_built_under_its_name_and_listed_in_order() -> None:
    assert all(load_command(name).name == name for name in COMMANDS)
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = (re.match(r"│ (\S+)  ", line) for line in result.output.splitlines())
    assert [row[1] for row in rows if row and row[1] in COMMANDS] == list(COMMANDS)
