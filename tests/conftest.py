"""Shared fixtures: quiet progress bars, fresh temporary folders."""

import os

import pytest

os.environ.setdefault("RESUMABLE_QUIET", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")


def pytest_sessionstart(session):
    """RESUMABLE_REQUIRE_SANDBOX=1 (.ci/run sets it): no grader test may skip for want of a sandbox."""
    if os.environ.get("RESUMABLE_REQUIRE_SANDBOX") == "1":
        from grader import sandbox

        works, why = sandbox.availability()
        if not works:
            raise pytest.UsageError(f"the grader's sandbox is required (RESUMABLE_REQUIRE_SANDBOX=1) but: {why}")
