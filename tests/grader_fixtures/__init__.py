"""A simulated class for the grader's tests: honest, wrong and hostile submissions, built from the notebooks."""
