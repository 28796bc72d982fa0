"""benchmarks.notebooks.PrivatePeak: the highest anonymous resident memory of a process, sampled."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import pytest

from benchmarks.notebooks import PrivatePeak, status_mb

HOLD_100_MB_A_MOMENT = """
import sys, time
print("ready", flush=True)
sys.stdin.readline()
block = b"\\x01" * (100 * 2**20)  # 100 MB written: resident, anonymous
time.sleep(0.3)
del block
print("freed", flush=True)
sys.stdin.readline()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_transient_100_mb_is_seen_after_it_is_freed():
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_100_MB_A_MOMENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline() == "ready\n"
        before = status_mb(child.pid, "RssAnon")
        peak = PrivatePeak()
        peak.follow(child.pid)
        time.sleep(0.05)
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline() == "freed\n"
        after = status_mb(child.pid, "RssAnon")
        highest = peak.stop()
        assert highest >= before + 95, f"sampled peak {highest:.1f} MB, the process held {before:.1f} + 100 MB"
        assert after < highest - 80, f"the 100 MB were freed ({after:.1f} MB left): the peak is {highest:.1f} MB"
    finally:
        child.kill()
        child.wait()


def test_stop_without_a_process_is_no_peak():
    assert math.isnan(PrivatePeak().stop()), "nothing was sampled: the peak must be NaN, not a number"
