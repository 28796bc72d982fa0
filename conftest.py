"""pytest anywhere in the repository (tests/, and nbval's runs of solutions/): nbval waits in short polls, and
each solution notebook that has a wrong-answer table runs it in nbval's kernel after its last cell
(tests/nbval_tables.py)."""

from tests import nbval_tables, nbval_waits

nbval_waits.install()

# The longest files first. make test runs `--dist loadfile --no-loadscope-reorder`, so xdist hands files to its
# workers in this order: the long ones start at once and the many short ones (nbval's notebooks, unit tests)
# fill the end. The suite is bound by CPU (benchmarks/RESULTS.md); a long file started last runs alone.
LONGEST_FIRST = (
    "tests/test_grader_class_rest.py",
    "tests/test_grader_class.py",
    "tests/test_pip_only.py",  # mostly pip's downloads and disk, beside the classes' kernels
    "tests/test_autograde.py",
    "solutions/07_production/07_production.ipynb",  # with their wrong-answer tables
    "solutions/10_capstone/10_capstone.ipynb",
    "tests/test_grader_attacks.py",
    "solutions/05_triple/05_triple.ipynb",
    "tests/test_grader_dask.py",
    "tests/test_grader_resume.py",
    "tests/test_grader_fences.py",
    "tests/test_browser.py",
    "tests/test_capstone.py",
    "solutions/02_persist/02_persist.ipynb",
)


def pytest_collection_modifyitems(session, config, items):
    items[:] = nbval_tables.add_table_items(items)
    rank = {path: index for index, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: the rest keep their order


def pytest_runtest_logreport(report):
    nbval_tables.record_failure(report)
