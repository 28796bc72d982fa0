"""Integrity probes: trusted code the grader runs in the student's kernel around every graded cell.

Hidden tests run in the same kernel as the student's code, so a notebook can try to make every later
test pass: swallow exceptions (`set_custom_exc`, a patched `showtraceback`), rewrite cells before they run
(input or AST transformers, `pre_run_cell` hooks), or replace the comparison functions the tests use
(`np.array_equal = lambda *a: True`, a patched `np.testing`, `jax.numpy`, `resumable.state_diff`, builtins
such as `isinstance` or `AssertionError`). Before the first cell and before and after each graded cell, the
executor (outside the sandbox) sends a probe that checks those functions on inputs whose answer it knows
and must END IN AN ERROR whose message starts with a fresh random nonce. A kernel that swallows errors,
rewrites the probe, or answers with a replaced comparison function fails the probe; the grader then stops
trusting that kernel: the graded cells from there on score nothing.

This is tamper *detection* for the generic tricks, not a proof: code that runs inside the kernel can in
principle recognise and fake a probe. The sandbox (not this) is what protects files, grades and the network.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

# Modules whose functions the hidden tests rely on; a callable in them defined by notebook code
# (`__module__ == "__main__"`) means the notebook replaced it.
WATCHED_MODULES = (
    "builtins",
    "math",
    "operator",
    "numpy",
    "numpy.testing",
    "jax",
    "jax.numpy",
    "flax.nnx",
    "optax",
    "orbax.checkpoint",
    "resumable",
)

# The probe's code, a module of its own (linted and tested in-process) sent into the kernel as text.
PROBE_SOURCE = (Path(__file__).parent / "kernel_probe.py").read_text()
PROBE_CALL = """
try:
    __grader_probe__({nonce!r}, {watched!r})
finally:
    del __grader_probe__
"""


@dataclass(frozen=True)
class Probe:
    nonce: str
    source: str

    def findings(self, reply: dict | None) -> tuple[str | None, set[str]]:
        """(what is wrong with the reply itself or None, the names the probe found replaced)."""
        if reply is None:
            return "the kernel did not answer an integrity check", set()
        content = reply.get("content", {})
        evalue = str(content.get("evalue", ""))
        if content.get("status") != "error" or content.get("ename") != "AssertionError":
            return "the notebook tampered with the grading: it suppresses errors (a check that must fail passed)", set()
        if not evalue.startswith(self.nonce + "|"):
            return "the notebook tampered with the grading: it altered the code the grader runs", set()
        return None, {name for name in evalue[len(self.nonce) + 1 :].split(";") if name}

    def verdict(self, reply: dict | None, baseline: set[str]) -> str | None:
        """None when the kernel answered honestly and nothing was replaced since the baseline probe
        (the one run before any notebook code: what a pristine kernel reports); else what is wrong."""
        problem, replaced = self.findings(reply)
        if problem:
            return problem
        new = sorted(replaced - baseline)
        if new:
            return "the notebook tampered with the grading: it replaced or hooked " + ", ".join(new)[:300]
        return None


def make_probe() -> Probe:
    nonce = "grader-probe-" + secrets.token_hex(16)
    source = PROBE_SOURCE + PROBE_CALL.format(nonce=nonce, watched=WATCHED_MODULES)
    return Probe(nonce, source)
