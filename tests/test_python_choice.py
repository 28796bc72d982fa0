"""make finds a Python the course can use (scripts/find-python), and replaces a venv of another Python."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
FIND_PYTHON = REPO / "scripts" / "find-python"
SUPPORTED = ("3.12", "3.13")


def fake_python(path: Path, version: str | None) -> Path:
    """An interpreter that answers find-python's two questions as Python `version` would (None: a failing shim)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if version is None:
        body = 'echo "pyenv: python3.13: command not found" >&2\nexit 127\n'
    else:
        usable = version.rsplit(".", 1)[0] if version.rsplit(".", 1)[0] in SUPPORTED else ""
        body = f'case "$2" in *3.12*) echo "{usable}" ;; *) echo "{version}" ;; esac\n'
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def find(tmp_path: Path, *args: str, path_dirs: list[Path]) -> subprocess.CompletedProcess:
    env = {"PATH": os.pathsep.join([*map(str, path_dirs), "/usr/bin", "/bin"]), "PYENV_ROOT": str(tmp_path / "pyenv")}
    env["HOME"] = str(tmp_path)
    return subprocess.run(["sh", str(FIND_PYTHON), *args], env=env, capture_output=True, text=True, check=False)


def test_a_failing_shim_and_an_old_python3_are_passed_over_for_pyenvs_313(tmp_path):
    bin_dir = tmp_path / "bin"
    fake_python(bin_dir / "python3.13", None)
    fake_python(bin_dir / "python3", "3.11.7")
    chosen = fake_python(tmp_path / "pyenv" / "versions" / "3.13.0" / "bin" / "python", "3.13.0")
    done = find(tmp_path, path_dirs=[bin_dir])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(chosen)
    assert f"Using Python 3.13: {chosen}" in done.stderr


def test_python312_on_path_comes_before_pyenv(tmp_path):
    bin_dir = tmp_path / "bin"
    on_path = fake_python(bin_dir / "python3.12", "3.12.4")
    fake_python(tmp_path / "pyenv" / "versions" / "3.13.0" / "bin" / "python", "3.13.0")
    assert find(tmp_path, path_dirs=[bin_dir]).stdout.strip() == str(on_path)


def test_none_found_names_what_was_tried_and_how_to_set_python(tmp_path):
    bin_dir = tmp_path / "bin"
    fake_python(bin_dir / "python3.13", None)
    fake_python(bin_dir / "python3", "3.11.7")
    done = find(tmp_path, path_dirs=[bin_dir])
    assert done.returncode == 1 and done.stdout == ""
    assert "No Python 3.12 or 3.13 found" in done.stderr
    assert f"{bin_dir / 'python3.13'} (does not run)" in done.stderr
    assert f"{bin_dir / 'python3'} (3.11.7)" in done.stderr
    assert "PYTHON=/path/to/python3.13" in done.stderr


def test_an_explicit_python_is_checked_too(tmp_path):
    old = fake_python(tmp_path / "old" / "python", "3.11.7")
    done = find(tmp_path, str(old), path_dirs=[])
    assert done.returncode == 1
    assert f"PYTHON={old} cannot be used" in done.stderr


def test_want_accepts_only_that_version(tmp_path):
    fake_python(tmp_path / "pyenv" / "versions" / "3.13.0" / "bin" / "python", "3.13.0")
    assert find(tmp_path, "--want", "3.12", path_dirs=[]).returncode == 1
    wanted = fake_python(tmp_path / "pyenv" / "versions" / "3.12.1" / "bin" / "python", "3.12.1")
    assert find(tmp_path, "--want", "3.12", path_dirs=[]).stdout.strip() == str(wanted)


def test_make_replaces_a_venv_of_another_python(tmp_path):
    venv = tmp_path / "venv"
    fake_python(venv / "bin" / "python", "3.11.7")
    (venv / "left-over").write_text("from the 3.11 course")
    done = subprocess.run(
        ["make", "--no-print-directory", "venv", f"VENV={venv}", f"PYTHON={sys.executable}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Replacing {venv}" in done.stdout
    assert not (venv / "left-over").exists()
    rebuilt = subprocess.run(
        [venv / "bin" / "python", "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True
    )
    assert rebuilt.stdout.strip() == str(sys.version_info[:2])


def test_every_file_names_the_same_pythons():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["requires-python"] == ">=3.12,<3.14"
    assert project["tool"]["ruff"]["target-version"] == "py312"
    conda = [
        item for item in yaml.safe_load((REPO / "environment.yml").read_text())["dependencies"] if isinstance(item, str)
    ]
    assert "python=3.13" in conda
    assert re.search(r'in \("3\.12", "3\.13"\)', FIND_PYTHON.read_text()), "find-python accepts other versions"
    assert f"{sys.version_info[0]}.{sys.version_info[1]}" in SUPPORTED, f"tests run on Python {sys.version}"
    for name in ("Makefile", "pyproject.toml", "environment.yml", "requirements.in", ".ci/run", "README.md"):
        text = (REPO / name).read_text()
        assert not re.search(r"(?i)python[ =]*3\.11|py311", text), f"{name} still asks for 3.11"
