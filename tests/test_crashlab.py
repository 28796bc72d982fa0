"""The crash lab of notebook 05: every pitfall diverges, a correct resume is exact, redraws reuse the cached runs."""

import json

import jax
import numpy as np
import pytest
from flax import nnx
from matplotlib.figure import Figure

from grader.paths import SOLUTIONS
from resumable import RunConfig, make_triple, state_diff
from resumable.diff import max_param_difference
from resumable.training import fresh_triple, named
from resumable.views.crash_lab import PITFALLS, CrashLab, widget, with_pitfall

NOTEBOOK = SOLUTIONS / "05_triple" / "05_triple.ipynb"
STUDENT_FUNCTIONS = ("save_triple", "restore_triple", "latest_checkpoint", "train_with_checkpoints")


@pytest.fixture(scope="module")
def solution():
    """The notebook's own solutions (its single source), run in a namespace after its setup cell."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    namespace: dict = {}
    setup = next(cell for cell in cells if cell["cell_type"] == "code")
    exec("".join(setup["source"]), namespace)
    for cell in cells:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id", "")
        if cell["cell_type"] == "code" and grade_id.endswith("_solution"):
            exec("".join(cell["source"]), namespace)
    return {name: namespace[name] for name in STUDENT_FUNCTIONS}


@pytest.fixture(scope="module")
def lab(solution, tmp_path_factory):
    return CrashLab(
        solution["restore_triple"],
        solution["train_with_checkpoints"],
        solution["latest_checkpoint"],
        RunConfig(),
        num_steps=12,
        workdir=str(tmp_path_factory.mktemp("crashlab")),
    )


def test_a_correct_resume_is_exact_and_says_so(lab):
    figure, text = lab.draw(crash_step=7, checkpoint_every=3, pitfall="none")
    assert isinstance(figure, Figure)
    assert "resumed from step_6 (1 step redone)" in text
    assert "max |resumed - reference| = 0.0000e+00" in text
    assert "identical" in text
    outcome = lab.run(7, 3, "none")
    assert outcome.resumed == outcome.reference and outcome.diff.identical and outcome.max_param_difference == 0.0


@pytest.mark.parametrize("pitfall", [pitfall for pitfall in PITFALLS if pitfall != "none"])
def test_every_pitfall_diverges(lab, pitfall):
    figure, text = lab.draw(crash_step=7, checkpoint_every=3, pitfall=pitfall)
    assert isinstance(figure, Figure)
    outcome = lab.run(7, 3, pitfall)
    assert outcome.max_loss_difference > 0.0
    assert not outcome.diff.identical
    assert "max |resumed - reference| = 0.0000e+00" not in text
    assert outcome.diff.paths[0] in text  # the report names the first differing leaf


def test_a_crash_before_the_first_checkpoint_resumes_from_scratch(lab):
    _, text = lab.draw(crash_step=2, checkpoint_every=5, pitfall="none")
    assert "resumed from scratch" in text and "max |resumed - reference| = 0.0000e+00" in text


def test_redraws_reuse_the_reference_the_crash_run_and_the_resumed_runs(solution, tmp_path):
    calls = []

    def counting_loop(*args, **kwargs):
        calls.append(kwargs.get("stop_at"))
        return solution["train_with_checkpoints"](*args, **kwargs)

    lab = CrashLab(
        solution["restore_triple"], counting_loop, solution["latest_checkpoint"], num_steps=8, workdir=str(tmp_path)
    )
    lab.draw(5, 4)
    assert len(calls) == 3  # reference, crash run to step 5, resume from step_4
    lab.draw(4, 4)  # same checkpoint, crash step already reached: nothing runs again
    lab.draw(5, 4)
    assert len(calls) == 3
    lab.draw(7, 4, "no optimizer")
    assert len(calls) == 5  # the crash run continues from step 5 to 7, then one resumed run
    assert sorted(p.name for p in (tmp_path / "every_4").iterdir()) == ["step_4"]


def test_fresh_triple_is_make_triple_committed_to_the_device():
    committed, plain = fresh_triple(RunConfig()), make_triple(RunConfig())
    assert state_diff(named(committed), named(plain)).identical
    leaves = jax.tree.leaves(nnx.to_pure_dict(nnx.state(committed[1])))
    assert all(leaf.committed for leaf in leaves)


def test_max_param_difference_is_zero_for_equal_models_only():
    first, second = make_triple(RunConfig())[1], make_triple(RunConfig())[1]
    assert max_param_difference(first, second) == 0.0
    assert max_param_difference(first, make_triple(RunConfig(seed=1))[1]) > 0.0


def test_unknown_pitfalls_and_crash_steps_are_refused(lab):
    with pytest.raises(ValueError, match="unknown pitfall"):
        with_pitfall(lambda *args: None, "no model", RunConfig())
    with pytest.raises(ValueError, match="crash_step"):
        lab.run(0, 3)


def test_widget_has_described_sliders_and_a_pitfall_menu(lab):
    view = widget(lab, crash_step=5, checkpoint_every=3)
    descriptions = {child.description: child for child in view.children if hasattr(child, "description")}
    assert descriptions["crash step"].value == 5 and descriptions["crash step"].max == lab.num_steps - 1
    assert descriptions["checkpoint every"].value == 3
    assert tuple(descriptions["pitfall"].options) == PITFALLS
    assert np.isfinite(lab.run(5, 3).max_loss_difference)
