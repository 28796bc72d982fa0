"""Instructor tooling around nbgrader: release the student notebooks, refresh solution outputs, grade safely."""
