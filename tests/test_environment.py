"""The pinned environment: the lock, environment.yml and the running venv agree."""

import re
from importlib import metadata
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def read_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[.*\])?==([^\s;]+)", line)
            assert match, f"{path.name}: not an exact pin: {line!r}"
            pins[normalise(match[1])] = match[2]
    return pins


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


LOCK = read_pins(REPO / "requirements.lock")


def test_every_direct_requirement_is_locked_at_its_stated_version():
    for line in (REPO / "requirements.in").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        assert normalise(name) in LOCK, f"{name} is not in requirements.lock"
        if version:
            assert LOCK[normalise(name)] == version, (
                f"{name}: requirements.in says {version}, lock {LOCK[normalise(name)]}"
            )


def test_the_venv_runs_exactly_the_locked_versions():
    wrong = {}
    for name, version in LOCK.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"locked vs installed: {wrong} (run `make env`)"


def test_environment_yml_installs_the_same_lock_on_python_3_13():
    spec = yaml.safe_load((REPO / "environment.yml").read_text())
    assert "conda-forge" in spec["channels"]
    conda_packages = [item for item in spec["dependencies"] if isinstance(item, str)]
    assert "python=3.13" in conda_packages
    pip_section = next(item["pip"] for item in spec["dependencies"] if isinstance(item, dict))
    assert "-r requirements.lock" in pip_section and "-e ." in pip_section
    for package in conda_packages:
        name, _, version = package.partition("=")
        if name not in ("python", "pip") and version:
            assert LOCK.get(normalise(name)) == version.lstrip("="), f"environment.yml pins {package}, lock differs"


def test_the_helper_package_is_installed_from_this_checkout():
    import resumable

    assert Path(resumable.__file__).resolve().is_relative_to(REPO / "src")
