"""Shared fixtures: quiet progress bars, fresh temporary folders."""

import os

os.environ.setdefault("RESUMABLE_QUIET", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
