"""End to end, as a student works: JupyterLab from the venv, driven in headless Chromium.

A throwaway JupyterLab serves a temporary copy of course/ whose notebooks get their solutions filled in (as a
student who finished them would have them). Chromium runs all cells, moves widgets and checks that the plots
redraw; the nbgrader extensions must be in the page. Screenshots of each state go to artifacts/browser/.

Chromium is Debian's (/usr/bin/chromium); the test installs it with apt-get when it runs as root, and skips
with the reason otherwise. RESUMABLE_REQUIRE_BROWSER=1 (CI sets it) turns a missing browser into a failure.
A notebook that is not in the repository yet skips its own test, with its name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from grader.paths import COURSE, REPO, SOLUTIONS
from tests.browser_tools import (
    chromium_page,
    click_menu,
    ensure_chromium,
    error_outputs,
    fill_solutions,
    jupyter_lab,
    open_notebook,
    output_images,
    output_text,
    run_all_cells,
    save_notebook,
    set_slider,
    slider_value,
    wait_for_new_output,
    widget_cell,
)

pytestmark = pytest.mark.browser

ARTIFACTS = REPO / "artifacts" / "browser"
RUN_ALL_TIMEOUT = 300  # seconds; a loaded 2-core CI machine runs other notebooks beside this test
REDRAW_TIMEOUT = 180
TIMINGS: list[str] = []  # written to artifacts/browser/timings.txt


@contextmanager
def timed(what: str) -> Iterator[None]:
    start = time.monotonic()
    try:
        yield
    finally:
        TIMINGS.append(f"{time.monotonic() - start:7.1f} s  {what}")


def skip_or_fail(reason: str) -> None:
    """Skip with the reason, or fail where the browser test is required (CI sets RESUMABLE_REQUIRE_BROWSER=1)."""
    if os.environ.get("RESUMABLE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser test required (RESUMABLE_REQUIRE_BROWSER=1) but: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> Path:
    with timed("find Chromium (apt-get install when missing)"):
        path, reason = ensure_chromium()
    if path is None:
        skip_or_fail(reason)
    return path


@pytest.fixture(scope="module")
def artifacts() -> Iterator[Path]:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    yield ARTIFACTS
    (ARTIFACTS / "timings.txt").write_text("\n".join(TIMINGS) + "\n")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("browser")


@pytest.fixture(scope="module")
def course_copy(workdir) -> Path:
    """A copy of course/: the test fills in solutions and JupyterLab saves there, never in the checkout."""
    copy = workdir / "course"
    shutil.copytree(COURSE, copy)
    return copy


@pytest.fixture(scope="module")
def lab(chromium, course_copy, workdir, artifacts):
    start = time.monotonic()
    with jupyter_lab(course_copy, workdir / "home", artifacts / "jupyterlab.log") as server:
        TIMINGS.append(f"{time.monotonic() - start:7.1f} s  start JupyterLab (until /api/status answers)")
        yield server


@pytest.fixture(scope="module")
def page(chromium, lab, workdir):
    start = time.monotonic()
    with chromium_page(chromium, workdir / "chromium-home") as browser_page:
        TIMINGS.append(f"{time.monotonic() - start:7.1f} s  start Chromium")
        yield browser_page


def solved_notebook(course_copy: Path, assignment: str) -> str:
    """Fill the student notebook of `assignment` (in the copy) with its solutions; return its path in the copy."""
    student, solution = course_copy / assignment / f"{assignment}.ipynb", SOLUTIONS / assignment / f"{assignment}.ipynb"
    wanted = {f"course/{assignment}/": student, f"solutions/{assignment}/{assignment}.ipynb": solution}
    missing = [name for name, path in wanted.items() if not path.exists()]
    if missing:  # a skip even in CI: the notebook's own authors add it
        pytest.skip(f"notebook {assignment} is not in the repository yet (missing: {', '.join(missing)})")
    assert fill_solutions(student, solution), f"{assignment}: no answer cell to fill"
    return f"{assignment}/{assignment}.ipynb"


@pytest.fixture(scope="module")
def notebook_01(course_copy) -> str:
    return solved_notebook(course_copy, "01_snapshot")


@pytest.fixture(scope="module")
def notebook_03(course_copy) -> str:
    return solved_notebook(course_copy, "03_update")


@pytest.fixture(scope="module")
def notebook_05(course_copy) -> str:
    return solved_notebook(course_copy, "05_triple")


def run_notebook(page, lab, course_copy: Path, path: str) -> None:
    """Open the notebook, Run All Cells, save it, and require every code cell to have run without an error."""
    with timed(f"{path}: open, kernel idle"):
        open_notebook(page, lab, path)
    with timed(f"{path}: Run All Cells"):
        prompts = run_all_cells(page, RUN_ALL_TIMEOUT)
    save_notebook(page, course_copy / path)
    errors = error_outputs(course_copy / path)
    assert not errors, f"{path}: cells raised in the browser: {errors}"
    unrun = [index for index, prompt in enumerate(prompts) if not re.fullmatch(r"\[\d+\]:", prompt)]
    assert not unrun, f"{path}: code cells {unrun} did not run (prompts {prompts})"


def shutdown_kernels(lab) -> None:
    """Stop the kernels this test started (one notebook's kernel at a time keeps memory low)."""
    with urllib.request.urlopen(f"{lab.url}/api/kernels?token={lab.token}", timeout=10) as response:
        kernels = json.load(response)
    for kernel in kernels:
        request = urllib.request.Request(f"{lab.url}/api/kernels/{kernel['id']}?token={lab.token}", method="DELETE")
        urllib.request.urlopen(request, timeout=30).close()


@pytest.fixture(autouse=True)
def screenshot_on_failure(request, artifacts):
    """Save the page as it was when a test failed: artifacts/browser/FAILED_<test>.png."""
    failures = request.session.testsfailed
    yield
    if request.session.testsfailed > failures and "page" in request.fixturenames:
        try:
            request.getfixturevalue("page").screenshot(path=str(artifacts / f"FAILED_{request.node.name}.png"))
        except Exception as error:  # the screenshot must not hide the test's own failure
            print(f"no failure screenshot: {error}")


def shot(page, artifacts: Path, name: str, cell=None) -> None:
    """Screenshot the page; with a cell, scrolled so that its outputs (widget, plot, printed lines) are in view."""
    if cell is not None:
        output = cell.locator(".jp-Cell-outputWrapper").first
        (output if output.count() else cell).evaluate("element => element.scrollIntoView({block: 'start'})")
        time.sleep(0.3)
    page.screenshot(path=str(artifacts / f"{name}.png"))


# ------------------------------------------------------------------------------------------------ the tests


def test_nbgrader_extensions_are_in_the_page(notebook_01, page, lab, course_copy, artifacts):
    """The student's nbgrader tools: the Nbgrader menu, the Validate button (which passes), Create Assignment."""
    path = notebook_01
    with timed(f"{path}: open, kernel idle"):
        open_notebook(page, lab, path)
    shot(page, artifacts, "nbgrader_1_01_snapshot_opened")

    menubar = page.locator(".lm-MenuBar-itemLabel")
    assert "Nbgrader" in menubar.all_inner_texts(), "no Nbgrader menu: nbgrader's lab extension did not load"
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Nbgrader$")).click()
    menu = page.locator(".lm-Menu:visible")
    entries = menu.locator(".lm-Menu-itemLabel").all_inner_texts()
    shot(page, artifacts, "nbgrader_2_menu")
    for entry in ("Assignment List", "Course List", "Formgrader"):
        assert entry in entries, f"Nbgrader menu lacks {entry!r}: {entries}"
    page.keyboard.press("Escape")

    assert page.locator(".lm-TabBar-tab", has_text="Create Assignment").count(), "no Create Assignment sidebar"
    validate = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .validate-button")
    assert validate.is_visible(), "no Validate button in the notebook toolbar"
    validate_start = time.monotonic()
    validate.click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=REDRAW_TIMEOUT * 1000)
    dialog.locator(".jp-Dialog-body").get_by_text(re.compile("passes|fail|error", re.I)).first.wait_for(
        timeout=REDRAW_TIMEOUT * 1000
    )
    message = dialog.inner_text()
    TIMINGS.append(f"{time.monotonic() - validate_start:7.1f} s  {path}: Validate")
    shot(page, artifacts, "nbgrader_3_validate_result")
    assert "Success" in message, f"Validate on the solved notebook did not succeed: {message}"
    dialog.locator("button").last.click()

    click_menu(page, "Nbgrader", "Assignment List")
    panel = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="Assignments")
    panel.first.wait_for()
    time.sleep(2)
    shot(page, artifacts, "nbgrader_4_assignment_list")
    shutdown_kernels(lab)


def number_after(pattern: str, text: str) -> float | None:
    """The number printed after `pattern` in `text` (e.g. 'max |resumed - reference| = 0.0000e+00'), or None."""
    match = re.search(re.escape(pattern) + r"\s*([-+0-9.eE]+|nan|inf)", text)
    return float(match[1]) if match else None


DETERMINISM = "max |resumed - reference| ="


def test_05_crash_step_slider_redraws_curves_and_determinism_line(notebook_05, page, lab, course_copy, artifacts):
    """Notebook 05's crash-point widget: move the crash step; the plot and the printed result follow it."""
    path = notebook_05
    run_notebook(page, lab, course_copy, path)

    cell, slider = widget_cell(page, ".widget-slider", "crash step")
    assert slider.count(), "notebook 05 shows no slider labelled 'crash step'"
    cell.locator(".jp-OutputArea-output img").first.wait_for(timeout=REDRAW_TIMEOUT * 1000)
    before_images, before_text = output_images(cell), output_text(cell)
    step_before = int(slider_value(slider))
    handle = slider.locator(".noUi-handle").first
    low, high = int(float(handle.get_attribute("aria-valuemin"))), int(float(handle.get_attribute("aria-valuemax")))
    assert number_after(DETERMINISM, before_text) == 0.0, f"the solved notebook does not resume exactly:\n{before_text}"
    shot(page, artifacts, "05_triple_1_widget_initial", cell)

    # Another crash step, between two checkpoints where possible (7 steps on, or back).
    target = step_before + 7 if step_before + 7 <= high else max(low, step_before - 7)
    assert target != step_before
    with timed(f"{path}: crash step {step_before} -> {target}, redraw"):
        set_slider(slider, target)
        after_images, after_text = wait_for_new_output(cell, before_images, before_text, REDRAW_TIMEOUT)
    shot(page, artifacts, "05_triple_2_crash_step_moved", cell)

    assert int(slider_value(slider)) == target, f"the slider shows {slider_value(slider)}, not {target}"
    assert after_images != before_images, "the plot did not change when the crash step moved"
    assert re.search(rf"\bstep {target}\b", after_text), (
        f"the printed result does not name step {target}:\n{after_text}"
    )
    assert not re.search(rf"\bstep {step_before}\b", after_text), f"the result still names step {step_before}"
    assert number_after(DETERMINISM, after_text) == 0.0, f"resumed run differs after the move:\n{after_text}"
    resumed_from = re.search(r"resumed from step_(\d+)", after_text)
    if resumed_from:  # the latest checkpoint at or before the crash
        assert int(resumed_from[1]) <= target, after_text

    # A pitfall from the widget's menu must break the determinism line, visibly.
    pitfall = cell.locator(".widget-dropdown select")
    if pitfall.count():
        options = pitfall.first.locator("option").all_inner_texts()
        broken = next((option for option in options if "nnx.update" in option), None)
        if broken:
            images, text = output_images(cell), output_text(cell)
            with timed(f"{path}: pitfall {broken!r}, redraw"):
                pitfall.first.select_option(label=broken)
                _, broken_text = wait_for_new_output(cell, images, text, REDRAW_TIMEOUT)
            shot(page, artifacts, "05_triple_3_pitfall_no_update", cell)
            gap = number_after(DETERMINISM, broken_text)
            assert gap is not None and gap > 0, f"pitfall {broken!r} still prints an exact resume:\n{broken_text}"
    shutdown_kernels(lab)


def test_03_nnx_update_toggle_redraws_the_curve(notebook_03, page, lab, course_copy, artifacts):
    """Notebook 03's toggle: clear 'use nnx.update' and the resumed curve (and the printed diff) change."""
    path = notebook_03
    run_notebook(page, lab, course_copy, path)

    toggle_kinds = ".widget-checkbox, .widget-toggle-button, .widget-toggle-buttons"
    cell, toggle = widget_cell(page, toggle_kinds, "use nnx.update")
    assert toggle.count(), "notebook 03 shows no toggle labelled 'use nnx.update'"
    cell.locator(".jp-OutputArea-output img").first.wait_for(timeout=REDRAW_TIMEOUT * 1000)
    before_images, before_text = output_images(cell), output_text(cell)
    shot(page, artifacts, "03_update_1_toggle_on", cell)

    checkbox = toggle.locator("input[type=checkbox]")
    with timed(f"{path}: nnx.update off, redraw"):
        (checkbox if checkbox.count() else toggle.locator("button").first).click()
        after_images, after_text = wait_for_new_output(cell, before_images, before_text, REDRAW_TIMEOUT)
    shot(page, artifacts, "03_update_2_toggle_off", cell)
    assert after_images != before_images, "the curve did not change when nnx.update was switched off"
    if checkbox.count():
        assert not checkbox.is_checked()
    gap_on = number_after("largest loss gap after the resume:", before_text)
    gap_off = number_after("largest loss gap after the resume:", after_text)
    if gap_on is not None and gap_off is not None:
        assert gap_on == 0.0 and gap_off > 0, f"with: {gap_on}, without nnx.update: {gap_off}"

    # And back: the exact resume returns.
    (checkbox if checkbox.count() else toggle.locator("button").first).click()
    _, back_text = wait_for_new_output(cell, after_images, after_text, REDRAW_TIMEOUT)
    shot(page, artifacts, "03_update_3_toggle_on_again", cell)
    if gap_on is not None:
        assert number_after("largest loss gap after the resume:", back_text) == gap_on
    shutdown_kernels(lab)
