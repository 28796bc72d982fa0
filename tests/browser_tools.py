"""Helpers for the browser test: Chromium, a throwaway JupyterLab server, solution-filled notebooks, page actions."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from grader import markers

CHROMIUM = Path("/usr/bin/chromium")
# The machines have no outside network: nothing in Chromium may try to reach it.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
VENV_BIN = Path(sys.executable).parent


# ---------------------------------------------------------------------------------------------- Chromium


def ensure_chromium() -> tuple[Path | None, str]:
    """Return (path, "") of Debian's Chromium, installing it with apt-get as root when missing; else (None, why)."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM, ""
    if os.geteuid() != 0:
        return None, f"{CHROMIUM} is missing and this user is not root: run `sudo apt-get install -y chromium`"
    if shutil.which("apt-get") is None:
        return None, f"{CHROMIUM} is missing and there is no apt-get to install Debian's chromium package"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log = []
    # Another process may hold the dpkg lock for a while (e.g. a parallel apt-get on the same machine).
    # Recommends (udev, upower, mesa, printer tools) are not needed headless; Liberation fonts keep the
    # screenshots' text metric-compatible with Arial/Helvetica.
    # The package lists may be fresh already (CI updates them for bubblewrap): update only when install fails.
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300"]
    install = [*apt, "install", "-y", "-qq", "--no-install-recommends", "chromium", "fonts-liberation"]
    for command in (install, [*apt, "update", "-qq"], install):
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=900)
        log.append(f"$ {' '.join(command)} -> exit {done.returncode}\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
        if done.returncode == 0 and command is install:
            break
        if done.returncode != 0 and command is not install:
            break  # apt-get update failed: no point trying again
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM, ""
    return None, "could not install Debian's chromium with apt-get:\n" + "\n".join(log)


# ---------------------------------------------------------------------------------------------- notebooks


def fill_solutions(student: Path, solution: Path) -> list[str]:
    """Put the solution cells' source from `solution` into `student` (in place), matched by nbgrader grade_id.

    Returns the grade_ids filled. Fails if a student answer cell has no matching solution cell.
    """
    student_nb = json.loads(student.read_text())
    solutions = {}
    for cell in json.loads(solution.read_text())["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            solutions[meta["grade_id"]] = markers.as_typed("".join(cell["source"]))
    filled = []
    for cell in student_nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            grade_id = meta["grade_id"]
            assert grade_id in solutions, f"{student.name}: answer cell {grade_id!r} has no solution in {solution}"
            cell["source"] = solutions[grade_id]
            filled.append(grade_id)
    student.write_text(json.dumps(student_nb, indent=1, ensure_ascii=False) + "\n")
    return filled


def error_outputs(notebook: Path) -> list[str]:
    """The error outputs saved in a notebook, as 'ename: evalue' lines."""
    errors = []
    for cell in json.loads(notebook.read_text())["cells"]:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                errors.append(f"{output['ename']}: {output['evalue']}")
    return errors


# ---------------------------------------------------------------------------------------------- JupyterLab


@dataclass
class LabServer:
    url: str
    token: str
    root: Path
    log: Path

    def page_url(self, path: str) -> str:
        """The notebook's URL in a workspace of its own: no tab (and no kernel) of another notebook comes back."""
        workspace = re.sub(r"[^A-Za-z0-9]+", "-", path)
        return f"{self.url}/lab/workspaces/{workspace}/tree/{path}?token={self.token}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def lab_environment(home: Path) -> dict[str, str]:
    """The environment of the throwaway server: the venv first, every Jupyter/IPython/matplotlib folder in `home`."""
    folders = {
        "HOME": home,
        "JUPYTER_CONFIG_DIR": home / "jupyter-config",
        "JUPYTER_DATA_DIR": home / "jupyter-data",
        "JUPYTER_RUNTIME_DIR": home / "jupyter-runtime",
        "JUPYTERLAB_SETTINGS_DIR": home / "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": home / "lab-workspaces",
        "IPYTHONDIR": home / "ipython",
        "MPLCONFIGDIR": home / "matplotlib",
        "XDG_CACHE_HOME": home / "cache",
        "XDG_CONFIG_HOME": home / "config",
        "XDG_DATA_HOME": home / "data",
    }
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        **{name: str(folder) for name, folder in folders.items()},
        "PATH": str(VENV_BIN) + os.pathsep + os.environ.get("PATH", ""),
        "JUPYTER_PREFER_ENV_PATH": "1",
        "JAX_PLATFORMS": "cpu",
        "RESUMABLE_QUIET": "1",
        "PYTHONUNBUFFERED": "1",
    }


def write_settings(env: dict[str, str], exchange: Path) -> None:
    """JupyterLab user settings for a quiet, fully rendered page, and an nbgrader config for the server."""
    settings = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / "@jupyterlab"
    overrides = {
        # No news or update check (no outside network), no toast over the screenshots.
        "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        # Every cell in the DOM (the default windowing detaches cells that are out of view).
        "notebook-extension/tracker": {"windowingMode": "none"},
    }
    for name, values in overrides.items():
        path = settings / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    exchange.mkdir(parents=True, exist_ok=True)
    config = Path(env["JUPYTER_CONFIG_DIR"]) / "nbgrader_config.py"
    lines = ["c = get_config()  # noqa: F821", f"c.Exchange.root = {str(exchange)!r}"]
    config.write_text("\n".join(lines) + "\n")


@contextmanager
def jupyter_lab(root: Path, home: Path, log: Path, timeout: float = 90) -> Iterator[LabServer]:
    """Run `jupyter lab` from the venv on a free loopback port, serving `root`; always shut it down."""
    env = lab_environment(home)
    write_settings(env, home / "exchange")
    token = secrets.token_hex(16)
    port = free_port()
    command = [
        str(VENV_BIN / "jupyter"),
        "lab",
        "--no-browser",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        "--ServerApp.password=",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.geteuid() == 0:  # CI runs as root; Jupyter refuses root without this flag
        command.append("--allow-root")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as log_file:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(process, f"{url}/api/status?token={token}", log, timeout)
            yield LabServer(url=url, token=token, root=root, log=log)
        finally:
            stop(process, f"{url}/api/shutdown?token={token}")


def wait_until_ready(process: subprocess.Popen, status_url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(status_url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"jupyter lab was not ready after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen, shutdown_url: str) -> None:
    """Ask the server to shut down (it stops its kernels), then terminate, then kill its process group."""
    if process.poll() is None:
        try:
            urllib.request.urlopen(urllib.request.Request(shutdown_url, method="POST"), timeout=5).close()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    # Kernels are the server's children in its own session: make sure none outlives the test.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ---------------------------------------------------------------------------------------------- the page


@contextmanager
def chromium_page(executable: Path, home: Path) -> Iterator:
    """A Playwright page in Debian's Chromium with a fresh, empty profile; its HOME (crash reports, dconf) in `home`."""
    from playwright.sync_api import sync_playwright

    profile = home / "profile"
    profile.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
    }
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(executable),
            headless=True,
            args=CHROMIUM_FLAGS,
            env=env,
            viewport={"width": 1400, "height": 1200},
            timeout=60_000,
        )
        try:
            context.set_default_timeout(30_000)
            page = context.pages[0] if context.pages else context.new_page()
            yield page
        finally:
            context.close()


def open_notebook(page, lab: LabServer, path: str) -> None:
    """Open a notebook as a student does (its URL) and wait for its kernel to be idle."""
    page.goto(lab.page_url(path))
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").first.wait_for(timeout=90_000)
    kernel_idle(page, timeout=90)


def kernel_idle(page, timeout: float) -> None:
    """Wait until the status bar says the current kernel is Idle."""
    page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\|\s*Idle")).first.wait_for(timeout=timeout * 1000)


def click_menu(page, menu: str, item: str) -> None:
    """Click a main-menu entry, e.g. Run > Run All Cells."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(menu)}$")).click()
    page.locator(".lm-Menu-item:visible", has_text=item).first.click()


PROMPTS_JS = """() => Array.from(document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')).map(e => e.textContent.trim())"""


def run_all_cells(page, timeout: float) -> list[str]:
    """Run > Run All Cells, then wait until no cell is queued or running; return the cells' prompts."""
    click_menu(page, "Run", "Run All Cells")
    deadline = time.monotonic() + timeout
    time.sleep(1.0)
    settled = 0
    prompts: list[str] = []
    while time.monotonic() < deadline:
        prompts = page.evaluate(PROMPTS_JS)
        busy = any("*" in prompt for prompt in prompts)
        done = prompts and all(re.fullmatch(r"\[\d+\]:", prompt) for prompt in prompts)
        settled = settled + 1 if not busy else 0
        # Finished, or stopped (a failing cell leaves the later ones unrun): no '*' for a few polls in a row.
        if done or settled >= 6:
            return prompts
        time.sleep(0.5)
    raise TimeoutError(f"Run All Cells did not finish in {timeout:.0f} s; prompts: {prompts}")


def save_notebook(page, path: Path, timeout: float = 30) -> None:
    """File > Save Notebook, and wait until the file on disk holds the executed cells."""
    before = path.stat().st_mtime_ns
    click_menu(page, "File", "Save Notebook")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.stat().st_mtime_ns != before:
            time.sleep(0.3)
            return
        time.sleep(0.2)
    raise TimeoutError(f"{path.name} was not saved in {timeout:.0f} s")


def widget_cell(page, widget_selector: str, label: str):
    """The notebook cell whose output holds a widget of this kind with this description label."""
    widget = page.locator(widget_selector, has_text=label)
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell", has=widget).last, widget.first


def output_images(cell) -> list[str]:
    return [image.get_attribute("src") or "" for image in cell.locator(".jp-OutputArea-output img").all()]


def output_text(cell) -> str:
    return "\n".join(cell.locator(".jp-OutputArea-output").all_inner_texts())


def set_slider(slider, value: int) -> None:
    """Type a value into an ipywidgets slider's readout (as a student does) and press Enter."""
    readout = slider.locator(".widget-readout")
    readout.click()
    readout.press("Control+A")
    readout.type(str(value))
    readout.press("Enter")


def slider_value(slider) -> str:
    return slider.locator(".widget-readout").inner_text().strip()


def wait_for_new_output(cell, images_before: list[str], text_before: str, timeout: float) -> tuple[list[str], str]:
    """Wait until the cell shows a plot image different from before and its text changed; return both."""
    deadline = time.monotonic() + timeout
    images, text = images_before, text_before
    while time.monotonic() < deadline:
        images, text = output_images(cell), output_text(cell)
        if images and all(images) and images != images_before and text != text_before:
            time.sleep(0.5)  # let the rest of the redraw land
            return output_images(cell), output_text(cell)
        time.sleep(0.3)
    raise TimeoutError(
        f"the widget's output did not change within {timeout:.0f} s "
        f"(image changed: {images != images_before}, text changed: {text != text_before})"
    )
