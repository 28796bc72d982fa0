"""The XLA flags `resumable` adds on import: added when missing, never overriding what a user set."""

from __future__ import annotations

import os
import subprocess
import sys

from resumable.xla_setup import LEAN_CPU_FLAGS, add_lean_cpu_flags


def test_adds_the_flags_to_an_empty_environment():
    environ: dict[str, str] = {}
    assert add_lean_cpu_flags(environ) == " ".join(LEAN_CPU_FLAGS)


def test_keeps_other_flags_such_as_notebook_07s_device_count():
    environ = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    value = add_lean_cpu_flags(environ)
    assert value.split() == ["--xla_force_host_platform_device_count=8", *LEAN_CPU_FLAGS]


def test_a_value_the_user_chose_wins_and_nothing_is_added_twice():
    environ = {"XLA_FLAGS": "--xla_cpu_use_fusion_emitters=true"}
    assert add_lean_cpu_flags(environ) == "--xla_cpu_use_fusion_emitters=true"
    environ = {}
    add_lean_cpu_flags(environ)
    assert add_lean_cpu_flags(environ) == " ".join(LEAN_CPU_FLAGS)


def test_importing_resumable_after_jax_still_applies_them_before_the_backend_starts():
    # The notebooks import jax first; the flag must reach XLA all the same (XLA aborts on an unknown flag,
    # so a computation that runs proves the name is valid for the pinned jaxlib).
    code = (
        "import os, jax\n"
        "import resumable\n"
        "from resumable import make_triple, train\n"
        "print(os.environ['XLA_FLAGS'])\n"
        "print(len(train(*make_triple(), 2)))\n"
    )
    environment = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}
    done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:2] == [" ".join(LEAN_CPU_FLAGS), "2"]
