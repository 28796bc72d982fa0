"""nbgrader configuration for the course. Run nbgrader from this folder (`cd grader && nbgrader ...`).

The committed notebooks: `solutions/` is nbgrader's source directory, `course/` its release directory.
Everything nbgrader writes besides the release (submissions, autograded copies, feedback, the gradebook)
goes to the ignored working area `grader/work/`.
"""

import os
import sys

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
from grader.nbgrader_execute import autograde_preprocessors  # noqa: E402 (the checkout is on sys.path now)

WORK = os.path.join(REPO, "grader", "work")
os.makedirs(WORK, exist_ok=True)

c.CourseDirectory.course_id = "resumable-training"
c.CourseDirectory.root = REPO
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "course"
c.CourseDirectory.submitted_directory = os.path.join(WORK, "submitted")
c.CourseDirectory.autograded_directory = os.path.join(WORK, "autograded")
c.CourseDirectory.feedback_directory = os.path.join(WORK, "feedback")
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(WORK, "gradebook.db")
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.orbax-checkpoint-tmp-*"]

# Training cells take seconds, not the default 30 s limit's worth, but a loaded grading machine is slower.
c.ExecutePreprocessor.timeout = 300
# nbgrader's Execute with short polls that nudge a silent kernel: a missed reply costs a second, not 300 s.
c.Autograde.autograde_preprocessors = autograde_preprocessors()
# A student who deletes a test cell gets it back instead of an ungraded (None) score.
c.OverwriteCells.add_missing_cells = True
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
