"""The grader's parts without a kernel: intake layouts, malformed files, cell assembly, feedback, probes, CLI."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader import intake, markers, probe, sandbox
from grader.assemble import assemble, for_feedback, is_test, load_template, nbgrader_meta, scrub
from grader.paths import GRADER, REPO, SOLUTIONS, assignments, notebooks
from grader.release import venv_environment

ASSIGNMENT = assignments()[0]
NAME = notebooks(ASSIGNMENT)[0].name


@pytest.fixture(scope="module")
def template():
    return load_template(ASSIGNMENT, NAME)


def student_copy(template):
    """A student notebook built from the template: answers are the stubs."""
    notebook = copy.deepcopy(template.notebook)
    for cell in notebook.cells:
        meta = nbgrader_meta(cell)
        if meta.get("solution"):
            cell.source = template.stubs[meta["grade_id"]]
        if cell.cell_type == "code":
            cell.source = markers.without_hidden(cell.source)
    return notebook


# ---------------------------------------------------------------- intake


def test_intake_layouts(tmp_path):
    data = b'{"nbformat": 4}'
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / NAME).write_bytes(data)
    (tmp_path / "bob" / ASSIGNMENT).mkdir(parents=True)  # nbgrader's submitted/ layout
    (tmp_path / "bob" / ASSIGNMENT / NAME).write_bytes(data)
    with zipfile.ZipFile(tmp_path / "Carol Smith_123_assignsubmission_file.zip", "w") as archive:
        archive.writestr(f"carol/{ASSIGNMENT}/{NAME}", data)
        archive.writestr("../../../etc/evil", b"zip slip")
    (tmp_path / "dave").mkdir()
    (tmp_path / "dave" / f"{Path(NAME).stem} (2).ipynb").write_bytes(data)
    (tmp_path / "dave" / "extra.py").write_bytes(b"")
    (tmp_path / "erin").mkdir()
    (tmp_path / "erin" / NAME).symlink_to(SOLUTIONS / ASSIGNMENT / NAME)  # never followed
    (tmp_path / "frank.zip").write_bytes(b"not a zip")
    found = {item.student: item for item in intake.collect(tmp_path, ASSIGNMENT, [NAME])}
    assert sorted(found) == ["Carol_Smith_123_assignsubmission_file", "alice", "bob", "dave", "erin", "frank"]
    for student in ("alice", "bob", "Carol_Smith_123_assignsubmission_file", "dave"):
        assert found[student].files[NAME] == data, student
    assert any("file name differs" in note for note in found["dave"].notes)
    assert any("extra.py" in note for note in found["dave"].notes)
    assert found["erin"].files[NAME] is None
    assert "zip" in found["frank"].problem
    assert not (tmp_path.parent / "etc").exists()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n", "not valid JSON"),
        (b"[1, 2]", "not a notebook"),
        (b'{"nbformat": 5, "nbformat_minor": 0, "cells": [], "metadata": {}}', "format version"),
        (b'{"nbformat": 4, "nbformat_minor": 5, "cells": [{"cell_type": "bogus"}], "metadata": {}}', "not a valid"),
        (intake.TOO_LARGE, "larger than"),
    ],
)
def test_malformed_notebooks_are_named(data, words):
    notebook, problem = intake.parse(data, NAME)
    assert notebook is None and words in problem


def test_valid_notebook_parses():
    notebook, problem = intake.parse((SOLUTIONS / ASSIGNMENT / NAME).read_bytes(), NAME)
    assert problem is None and notebook.cells


# ---------------------------------------------------------------- assembly


def test_template_keeps_hidden_tests_and_clears_solutions(template):
    sources = "\n".join(cell.source for cell in template.notebook.cells)
    assert "### BEGIN SOLUTION" not in sources
    assert "### BEGIN HIDDEN TESTS" in sources
    assert template.max_score > 0 and template.hidden_lines


def test_assembly_restores_tests_and_ignores_forged_metadata(template):
    student = student_copy(template)
    tests = [cell for cell in student.cells if is_test(cell)]
    # delete one test, edit another to `pass` and give it 100 points, mark a third as an answer
    student.cells.remove(tests[0])
    tests[1].source = "pass"
    tests[1].metadata.nbgrader["points"] = 100
    if len(tests) > 2:
        tests[2].metadata.nbgrader["solution"] = True
        tests[2].source = "pass"
    answer = next(cell for cell in student.cells if nbgrader_meta(cell).get("solution"))
    student.cells.append(copy.deepcopy(answer))  # duplicate
    bonus = nbformat.v4.new_code_cell("pass")
    bonus.metadata["nbgrader"] = {"grade": True, "solution": False, "points": 1000, "grade_id": "bonus"}
    student.cells.append(bonus)
    assembled = assemble(template, student)
    trusted = {nbgrader_meta(cell)["grade_id"]: cell for cell in template.notebook.cells if is_test(cell)}
    assert sorted(assembled.tests.values()) == sorted(trusted)
    for index, grade_id in assembled.tests.items():
        cell = assembled.notebook.cells[index]
        assert cell.source == trusted[grade_id].source
        assert nbgrader_meta(cell)["points"] == nbgrader_meta(trusted[grade_id])["points"]
    assert "bonus" not in assembled.tests.values()
    assert any("second copy" in note for note in assembled.notes)
    # a restored cell sits after the cell that preceded it in the source
    order = [nbgrader_meta(cell).get("grade_id") for cell in assembled.notebook.cells if nbgrader_meta(cell)]
    source_order = [nbgrader_meta(cell)["grade_id"] for cell in template.notebook.cells if nbgrader_meta(cell)]
    assert [grade_id for grade_id in order if grade_id in source_order] == source_order


def test_two_assemblies_of_one_submission_have_the_same_cell_ids(template):
    """A student's own cells (and a copied locked cell) get ids from their place, not random ones: a resumed
    grading's feedback page equals an uninterrupted one's. Every id stays unique."""
    student = student_copy(template)
    student.cells.insert(1, nbformat.v4.new_code_cell("print('my own cell')"))
    answer = next(cell for cell in student.cells if nbgrader_meta(cell).get("solution"))
    student.cells.append(copy.deepcopy(answer))  # a second copy: run as a plain cell
    first, second = (assemble(template, copy.deepcopy(student)).notebook for _ in range(2))
    ids = [cell.id for cell in first.cells]
    assert ids == [cell.id for cell in second.cells], "grader/assemble.py gives plain cells random ids"
    assert len(set(ids)) == len(ids), f"duplicate cell ids in the assembled notebook: {ids}"


def test_every_instructor_cell_is_an_nbgrader_cell():
    """An instructor cell without nbgrader metadata is graded as the student's own: not restored from the
    source (the student may change it), and not named in the feedback. Each carries a grade_id."""
    for assignment in assignments():
        for path in notebooks(assignment):
            for cell in nbformat.read(path, as_version=4).cells:
                assert nbgrader_meta(cell).get("grade_id"), (
                    f"{path.name}: cell {cell.id} has no nbgrader metadata (make it locked, like its neighbours)"
                )


def test_student_answers_are_kept(template):
    student = student_copy(template)
    answer = next(cell for cell in student.cells if nbgrader_meta(cell).get("solution"))
    answer.source = "def mine():\n    return 42\n"
    answer.metadata.nbgrader["points"] = 99
    assembled = assemble(template, student)
    kept = next(cell for cell in assembled.notebook.cells if cell.source == answer.source)
    assert nbgrader_meta(kept).get("points") == nbgrader_meta(template.by_id[nbgrader_meta(kept)["grade_id"]]).get(
        "points"
    )


def test_feedback_never_shows_hidden_tests(template):
    executed = copy.deepcopy(template.notebook)
    hidden = template.hidden_lines[0]
    for cell in executed.cells:
        if cell.cell_type == "code":
            cell.outputs = [
                nbformat.v4.new_output("stream", name="stdout", text=f"In: {[cell.source]!r}\n{hidden}"),
                nbformat.v4.new_output(
                    "error", ename="AssertionError", evalue="boom", traceback=[f"---> 3 {hidden}", "AssertionError"]
                ),
            ]
    shown = for_feedback(executed, template)
    text = json.dumps([cell.source for cell in shown.cells]) + json.dumps([cell.get("outputs") for cell in shown.cells])
    text = json.loads(json.dumps(text))
    for line in template.hidden_lines:
        assert line not in text
        assert line not in nbformat.writes(shown)


def test_scrub_handles_repr_escapes():
    line = "assert x == 'it\\'s', \"quoted\""
    assert line not in scrub(repr([line]), [line]) and "[hidden test line removed]" in scrub(repr(line), [line])


# ---------------------------------------------------------------- probes


def test_probe_verdicts():
    check = probe.make_probe()
    honest = {"content": {"status": "error", "ename": "AssertionError", "evalue": check.nonce + "|"}}
    assert check.verdict(honest, set()) is None
    swallowed = {"content": {"status": "ok"}}
    assert "suppresses errors" in check.verdict(swallowed, set()) and "tampered" in check.verdict(swallowed, set())
    altered = {"content": {"status": "error", "ename": "AssertionError", "evalue": "other|"}}
    assert "altered" in check.verdict(altered, set())
    patched = {"content": {"status": "error", "ename": "AssertionError", "evalue": check.nonce + "|numpy.array_equal"}}
    assert "numpy.array_equal" in check.verdict(patched, set())
    assert check.verdict(patched, {"numpy.array_equal"}) is None  # present before any notebook code ran


def test_probe_runs_clean_in_a_plain_interpreter_and_catches_patches():
    """The probe source itself: silent on a pristine interpreter, names replaced functions."""
    check = probe.make_probe()
    script = "import numpy\n" + check.source
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert f"AssertionError: {check.nonce}|" in completed.stderr
    assert completed.stderr.strip().endswith(check.nonce + "|")
    patched = "import numpy\nnumpy.array_equal = lambda *a: True\n" + check.source
    completed = subprocess.run([sys.executable, "-c", patched], capture_output=True, text=True, check=False)
    assert "numpy.array_equal" in completed.stderr


# ---------------------------------------------------------------- sandbox and CLI


def grader_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grader", *args],
        cwd=REPO,
        env=env or venv_environment(),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_cli_usage_errors(tmp_path):
    completed = grader_cli("grade", "no_such_assignment", str(tmp_path), "--out", str(tmp_path / "out"))
    assert completed.returncode == 1 and "unknown assignment" in completed.stderr
    completed = grader_cli("grade", ASSIGNMENT, str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert completed.returncode == 1 and "does not exist" in completed.stderr
    assert grader_cli("validate", str(tmp_path / "missing.ipynb")).returncode == 2


def test_grader_processes_skip_the_iri_grammar_and_still_validate_notebooks():
    """`import grader` keeps jsonschema from building rfc3987_syntax's grammar (1.3 s per process); nbformat
    still validates: a notebook with a cell of an unknown type is refused."""
    program = (
        "import grader, sys, nbformat\n"
        "nbformat.validate(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('1')]))\n"
        "bad = nbformat.v4.new_notebook(); bad.cells.append({'cell_type': 'odd', 'source': '', 'metadata': {}})\n"
        "try:\n    nbformat.validate(bad)\nexcept nbformat.ValidationError:\n    print('refused')\n"
        "print(sys.modules.get('rfc3987_syntax', 'imported'))\n"
    )
    completed = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["refused", "None"], (
        f"{completed.stdout!r}: grader/__init__.py must mark rfc3987_syntax as absent before nbformat is imported"
    )


def test_refuses_without_sandbox_unless_told(tmp_path):
    """No bwrap on PATH: grading untrusted code is refused, with the reason and the flag to override."""
    (tmp_path / "subs" / "alice").mkdir(parents=True)
    (tmp_path / "subs" / "alice" / NAME).write_bytes(b"not json")
    env = {**venv_environment(), "PATH": str(Path(sys.executable).parent)}
    completed = grader_cli("grade", ASSIGNMENT, str(tmp_path / "subs"), "--out", str(tmp_path / "out"), env=env)
    assert completed.returncode == 1
    assert "bubblewrap" in completed.stderr and "--no-sandbox-i-trust-this-code" in completed.stderr
    completed = grader_cli(
        "grade", ASSIGNMENT, str(tmp_path / "subs"), "--out", str(tmp_path / "out"),
        "--no-sandbox-i-trust-this-code", env=env,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    rows = (tmp_path / "out" / "grades.csv").read_text().splitlines()
    assert rows[0] == "student_id,assignment,score,max_score,status,message"
    assert rows[1].startswith(f"alice,{ASSIGNMENT},0,") and ",error," in rows[1] and "JSON" in rows[1]


@pytest.mark.skipif(not sandbox.availability()[0], reason="no sandbox")
def test_sandbox_confines_a_process(tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    os.chmod(scratch, 0o755)
    sandbox.prepare_writable(scratch, 60123)
    code = f"""
import os, socket
for path in ({str(SOLUTIONS)!r}, {str(GRADER)!r}, {str(REPO / "README.md")!r}, "/root"):
    print(path, os.path.exists(path))
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    print("network yes")
except OSError:
    print("network no")
open("written", "w").write("ok")
try:
    open({str(REPO / "src" / "x.txt")!r}, "w")
    print("src writable")
except OSError:
    print("src read-only")
"""
    command = sandbox.command([sys.executable, "-c", code], scratch, env={"PATH": "/usr/bin"}, uid=60123)
    completed = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert f"{SOLUTIONS} False" in lines and f"{GRADER} False" in lines and f"{REPO / 'README.md'} False" in lines
    assert "network no" in lines and "src read-only" in lines
    assert (scratch / "written").read_text() == "ok"


@pytest.mark.skipif(not sandbox.availability()[0], reason="no sandbox")
def test_sandbox_user_has_a_name_and_jax_cache_writes_stay_quiet(tmp_path):
    """The sandbox's user and group have names (from the grader's own passwd and group files), so JAX's
    compilation cache can write there without a warning on stderr (which would fail a student's test), and
    /etc's fonts and loader cache are readable by that user."""
    scratch = tmp_path / "scratch"
    (scratch / "cache").mkdir(parents=True)
    os.chmod(scratch, 0o755)
    sandbox.prepare_writable(scratch, 60124)
    accounts = sandbox.write_accounts(tmp_path / "etc", 60124, scratch)
    code = """
import getpass, grp, os
print("user", getpass.getuser(), grp.getgrgid(os.getgid()).gr_name)
print("fonts", os.access("/etc/fonts/fonts.conf", os.R_OK) or not os.path.exists("/etc/fonts/fonts.conf"))
import jax, jax.numpy as jnp, resumable
print("cache", resumable.COMPILATION_CACHE)
for n in range(3):  # three entries: the second and third writes look up the owner of the files before them
    print(float(jax.jit(lambda x, n=n: x * n + 1)(jnp.arange(3.0)).sum()))
"""
    env = {"PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu", "RESUMABLE_JAX_CACHE": str(scratch / "cache")}
    command = sandbox.command(
        [sys.executable, "-c", code], scratch, env=env, uid=60124, accounts=accounts
    )  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert completed.stdout.splitlines()[:3] == [
        "user student student",
        "fonts True",
        f"cache {scratch / 'cache'}",
    ]
    assert len(list((scratch / "cache").glob("jit__lambda-*-cache"))) == 3


@pytest.mark.slow
def test_validate_exit_codes(tmp_path):
    """`python -m grader validate`: 0 for a notebook whose tests pass, 1 when a test fails (nbgrader's: 0)."""
    from grader.release import generate

    generate([ASSIGNMENT], tmp_path / "release")
    assert grader_cli("validate", str(SOLUTIONS / ASSIGNMENT / NAME)).returncode == 0
    completed = grader_cli("validate", str(tmp_path / "release" / ASSIGNMENT / NAME))
    assert completed.returncode == 1 and "a test failed" in completed.stderr


def test_nbgrader_autograde_and_validate_run_the_sliced_execute():
    """The course's nbgrader config and `python -m grader validate` put SlicedExecute where nbgrader has Execute
    (plain Execute can wait out its whole cell timeout on a missed reply)."""
    from nbgrader.preprocessors import Execute
    from traitlets.config.loader import PyFileConfigLoader

    from grader.execute import SlicedWaits
    from grader.nbgrader_execute import SlicedExecute
    from grader.validate import EveryCellValidator

    config = PyFileConfigLoader("nbgrader_config.py", path=str(GRADER)).load_config()
    steps = config.Autograde.autograde_preprocessors
    assert SlicedExecute in steps and Execute not in steps, f"grader/nbgrader_config.py: autograde runs {steps}"
    steps = EveryCellValidator.class_traits()["preprocessors"].default()
    assert SlicedExecute in steps and Execute not in steps, f"grader/validate.py: validate runs {steps}"
    assert issubclass(SlicedExecute, SlicedWaits) and issubclass(SlicedExecute, Execute)
    executor = SlicedExecute(timeout=1)
    executor.nb = nbformat.v4.new_notebook()
    manager = executor.create_kernel_manager()
    assert manager.transport == "ipc", "SlicedExecute's kernel is not on Unix sockets"


@pytest.mark.parametrize("entry", ["setup_kernel", "execute", "nbgrader_preprocess"])
def test_every_way_in_waits_in_slices(entry, tmp_path):
    """SlicedClient and SlicedExecute wait in slices however their kernel is started: nbclient's blocking
    setup_kernel() (the wrong-answer tables) and nbconvert's preprocess (nbgrader's Execute) bypassed the
    override once, and autograde waited out a cell's whole 300 s timeout on a missed reply."""
    from grader.execute import SlicedClient
    from grader.nbgrader_execute import SlicedExecute

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    seen = []

    def record(client):
        seen.append(getattr(client.kc.shell_channel.get_msg, "sliced", False))

    resources = {"metadata": {"path": str(tmp_path)}}
    if entry == "setup_kernel":
        client = SlicedClient(notebook, timeout=60, resources=resources)
        with client.setup_kernel():
            client.execute_cell(notebook.cells[0], 0)
            record(client)
    elif entry == "execute":
        client = SlicedClient(notebook, timeout=60, resources=resources, on_cell_executed=lambda **_: record(client))
        client.execute()
    else:  # nbgrader's Execute has its own on_cell_executed method, so look from preprocess_cell

        class Recording(SlicedExecute):
            def preprocess_cell(self, cell, resources, index):
                result = super().preprocess_cell(cell, resources, index)
                record(self)
                return result

        Recording(timeout=60).preprocess(notebook, resources)
    assert notebook.cells[0].outputs[0]["data"]["text/plain"] == "2"
    assert seen == [True], f"{entry}: the shell channel's waits are not sliced"


@pytest.mark.slow
def test_validate_names_a_locked_cell_that_raises(tmp_path):
    """A locked (not graded) cell that raises fails validation: exit 1, the cell named; no kernel warnings."""
    notebook = nbformat.read(SOLUTIONS / ASSIGNMENT / NAME, as_version=4)
    index = next(i for i, cell in enumerate(notebook.cells) if "opt_state_keys = " in cell.source)
    grade_id = notebook.cells[index].metadata["nbgrader"]["grade_id"]
    notebook.cells.insert(index, nbformat.v4.new_code_cell("optimizer = None  # a student's own cell"))
    nbformat.write(notebook, tmp_path / NAME)
    completed = grader_cli("validate", str(tmp_path / NAME))
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert f"an error in cell {index + 1} ({grade_id})" in completed.stderr, completed.stderr
    assert "without encryption" not in completed.stdout + completed.stderr


def test_a_failed_tests_row_keeps_its_whole_first_message_line():
    from grader.worker import first_line

    cause = "the restored model still equals the fresh one: was nnx.update called? " * 4  # about 290 characters
    assert first_line(f"\n  {cause.strip()}\nThe original error:\nValueError: ...") == cause.strip()


def test_the_kernel_probe_runs_as_a_module_and_finds_a_replaced_comparison(monkeypatch):
    import numpy as np

    from grader import kernel_probe

    with pytest.raises(AssertionError) as clean:
        kernel_probe.__grader_probe__("nonce-1", probe.WATCHED_MODULES)
    assert str(clean.value).startswith("nonce-1|") and "numpy.array_equal" not in str(clean.value)
    monkeypatch.setattr(np, "array_equal", lambda *arrays: True)
    with pytest.raises(AssertionError) as tampered:
        kernel_probe.__grader_probe__("nonce-2", probe.WATCHED_MODULES)
    assert "numpy.array_equal" in str(tampered.value).removeprefix("nonce-2|").split(";")


def test_the_probe_sent_to_the_kernel_is_the_modules_source_and_a_call():
    sent = probe.make_probe()
    assert sent.source.startswith(probe.PROBE_SOURCE)
    assert f"__grader_probe__({sent.nonce!r}, {probe.WATCHED_MODULES!r})" in sent.source


WIDGET_NOTEBOOK = [
    "import ipywidgets, matplotlib.pyplot as plt\n"
    "def draw(k):\n"
    "    figure, axis = plt.subplots(figsize=(2, 2))\n"
    "    axis.plot(range(k))\n"
    "    plt.show()\n"
    "ipywidgets.interactive(draw, k=ipywidgets.IntSlider(value=3, min=2, max=5))",
    "ipywidgets.IntSlider(value=1)",
    "from flax import nnx\nnnx.display(nnx.Linear(2, 3, rngs=nnx.Rngs(0)))",  # treescope: random ids every run
]


@pytest.mark.slow
def test_feedback_shows_a_widgets_last_picture_or_one_line_never_its_repr(tmp_path, capfd):
    """Executed as the grader executes (a real kernel, nbclient keeping the widget state), then rendered."""
    from grader.execute import SlicedClient
    from grader.feedback import TREESCOPE_LINE, render

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in WIDGET_NOTEBOOK])
    SlicedClient(notebook, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert "over TCP" not in capfd.readouterr().err, "SlicedClient's kernel talked over TCP, not Unix sockets"
    reprs = [out["data"]["text/plain"] for cell in notebook.cells for out in cell.outputs if "data" in out]
    assert any(text.startswith("interactive(children=") for text in reprs), f"no widget repr to hide: {reprs}"
    html = render(notebook, "widgets.ipynb", "alice", "demo", 0.0, 1.0)
    assert "interactive(children=" not in html and "IntSlider(" not in html, "the feedback page shows a widget repr"
    assert html.count("data:image/png;base64,") == 1, "the interactive widget's last figure is not on the page"
    assert "[an interactive IntSlider widget: it is drawn only in a running notebook]" in html, (
        "a widget without a picture is not named in one line"
    )
    drawn = [str(out.get("data", {}).get("text/html", "")) for cell in notebook.cells for out in cell.outputs]
    assert any("<treescope-" in text for text in drawn), "nnx.display drew no treescope view to replace"
    assert TREESCOPE_LINE in html and "<treescope-" not in html and "treescope_out_" not in html, (
        "Flax's tree view (treescope, random ids on every run) is on the feedback page: two gradings differ"
    )
