"""The README's way in without make: its pip commands in a fresh venv, then a notebook executed with them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

RUN_FIRST_CELL = """
import sys
import nbformat
from grader.execute import SlicedClient
notebook = nbformat.read(sys.argv[1], as_version=4)
notebook.cells = [next(cell for cell in notebook.cells if cell.cell_type == "code")]
SlicedClient(notebook, timeout=120, allow_errors=True).execute()
print(nbformat.writes(notebook))
"""

RUN_NOTEBOOK = """
import sys
import nbformat
from grader.execute import SlicedClient
notebook = nbformat.read(sys.argv[1], as_version=4)
SlicedClient(notebook, timeout=300, resources={"metadata": {"path": sys.argv[2]}}).execute()
print("executed", len(notebook.cells), "cells")
"""


def run(*command: str | Path, **kwargs) -> subprocess.CompletedProcess:
    # PIP_COMPILE=0 (the setting of pip's --compile/--no-compile): pip does not byte-compile the packages it
    # installs (about 35 of its 65 s of CPU); Python compiles the modules the notebook imports when it imports
    # them. The commands themselves are the README's.
    env = {
        **os.environ,
        "JUPYTER_PREFER_ENV_PATH": "1",
        "JAX_PLATFORMS": "cpu",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_COMPILE": "0",
    }
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(list(map(str, command)), cwd=REPO, env=env, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, command))} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done


def test_the_readme_pip_commands_make_a_venv_that_runs_the_course(tmp_path):
    readme = (REPO / "README.md").read_text()
    for command in (
        "python -m venv .venv",
        "-m pip install -r requirements.lock",
        "-m pip install -e .",
        "jupyter lab course",
    ):
        assert command in readme, f"the README no longer says `{command}`: update this test with it"
    venv = tmp_path / ".venv"
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "venv", venv)
    run(python, "-m", "pip", "install", "--quiet", "-r", "requirements.lock")

    # Before the helper package is installed, a student notebook stops in its first cell, in one line.
    first = json.loads(run(python, "-c", RUN_FIRST_CELL, REPO / "course" / "01_snapshot" / "01_snapshot.ipynb").stdout)
    errors = [output for output in first["cells"][0]["outputs"] if output["output_type"] == "error"]
    assert len(errors) == 1, f"the first cell should stop with one error, got {first['cells'][0]['outputs']}"
    assert errors[0]["ename"] == "CourseSetupError"
    assert errors[0]["traceback"] == [errors[0]["evalue"]], "the error should be one line, not a traceback"
    assert "resumable" in errors[0]["evalue"] and "pip install -r requirements.lock -e ." in errors[0]["evalue"]

    run(python, "-m", "pip", "install", "--quiet", "-e", ".")
    assert (venv / "bin" / "jupyter-lab").exists(), "the lock no longer installs JupyterLab"
    notebook = REPO / "solutions" / "03_update" / "03_update.ipynb"
    done = run(python, "-c", RUN_NOTEBOOK, notebook, notebook.parent, timeout=600)
    assert "executed" in done.stdout
