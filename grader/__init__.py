"""Instructor tooling around nbgrader: release the student notebooks, refresh solution outputs, grade safely."""

import sys

# jsonschema (imported by nbformat) builds rfc3987_syntax's IRI grammar at import: 1.3 s of CPU in every
# `python -m grader` process, its graders and Dask workers. nbformat's schema never checks IRI formats.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
