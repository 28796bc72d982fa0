"""resumable.checkpoints.sharding: its checks need 8 simulated CPU devices, so they run in a fresh Python.

XLA fixes the number of CPU devices when JAX starts; this test process may have started JAX already, with one.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

CHECKS = Path(__file__).with_name("sharding_checks.py")


@pytest.mark.slow
def test_sharding_checks_pass_with_eight_cpu_devices():
    environment = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", str(CHECKS), "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=CHECKS.parent.parent,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-5000:] + completed.stderr[-2000:]
    assert " passed" in completed.stdout and "skipped" not in completed.stdout
