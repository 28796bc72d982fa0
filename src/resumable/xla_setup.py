"""XLA settings for small CPU programs, applied when `resumable` is imported (before JAX's backend starts).

On the CPU, XLA's newer "fusion emitters" generate each fused kernel through MLIR, and every compiled program
then keeps several more megabytes resident. The course compiles a few dozen small programs per notebook, so
with them a notebook's kernel peaks about 50 MB higher (measured: compiling the course's train step took
+34 MB with them, +13 MB without; notebook 04 peaked at 464 MB with them, 416 MB without). The classic
emitters give the same bits on these programs (the course's losses are identical either way) and about the
same speed.

XLA reads `XLA_FLAGS` when JAX's backend starts, that is at the first computation, not at `import jax`; a
flag added after that has no effect in this process. A value already in `XLA_FLAGS` is kept: set
`--xla_cpu_use_fusion_emitters=true` yourself to keep the newer emitters.
"""

from __future__ import annotations

import os

LEAN_CPU_FLAGS = ("--xla_cpu_use_fusion_emitters=false",)


def add_lean_cpu_flags(environ: dict[str, str] | os._Environ = os.environ) -> str:
    """Append the flags of LEAN_CPU_FLAGS that `environ["XLA_FLAGS"]` does not set yet; return the new value."""
    current = environ.get("XLA_FLAGS", "")
    present = {item.split("=", 1)[0] for item in current.split()}
    missing = [flag for flag in LEAN_CPU_FLAGS if flag.split("=", 1)[0] not in present]
    if missing:
        environ["XLA_FLAGS"] = " ".join([current, *missing]).strip()
    return environ.get("XLA_FLAGS", "")


add_lean_cpu_flags()
