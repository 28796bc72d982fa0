"""Plot helpers produce the figures the notebooks show; progress is silent under tests."""

from matplotlib.figure import Figure

from resumable import plot_losses, progress


def test_reference_only_has_one_panel():
    figure = plot_losses([3.0, 2.0, 1.0])
    assert isinstance(figure, Figure) and len(figure.axes) == 1


def test_resumed_adds_the_difference_panel_and_markers():
    reference = [3.0, 2.0, 1.5, 1.0]
    figure = plot_losses(reference, list(reference), crash_step=2, resume_step=2)
    curves, difference = figure.axes
    assert difference.get_title() == "max |difference| = 0.0000e+00"
    assert len(curves.get_lines()) == 2 + 2  # two curves, two vertical markers
    texts = [text.get_text() for text in curves.texts]
    assert texts == ["crash at 2", "resume from 2"]


def test_a_divergence_shows_in_the_title():
    figure = plot_losses([3.0, 2.0, 1.0], [3.0, 2.5, 1.0])
    assert figure.axes[1].get_title() == "max |difference| = 5.0000e-01"


def test_progress_is_silent_and_yields_everything(capsys):
    assert list(progress(range(5), description="x")) == [0, 1, 2, 3, 4]
    assert capsys.readouterr().out == ""


def test_progress_outside_a_notebook_is_tqdms_text_bar(monkeypatch, capsys):
    for name in ("RESUMABLE_QUIET", "NBGRADER_EXECUTION", "PYTEST_CURRENT_TEST"):
        monkeypatch.delenv(name, raising=False)
    assert list(progress(range(3), description="steps")) == [0, 1, 2]
    assert "steps: 100%" in capsys.readouterr().err
