"""nbval's waits for kernel messages, made short polls that nudge a silent kernel (installed by conftest.py).

nbval waits for each kernel message with one long blocking poll, which can miss a reply that has arrived
(see grader.execute.SlicedWait): a cell then fails after --nbval-cell-timeout although the kernel is idle.
"""

from __future__ import annotations

from queue import Empty

from nbval.kernel import RunningKernel

from grader.execute import NUDGE_SECONDS, POLL_SECONDS, SlicedWait

_blocking_get_message = RunningKernel.get_message


def sliced_get_message(
    kernel: RunningKernel,
    stream: str,
    timeout: float | None = None,
    poll_seconds: float = POLL_SECONDS,
    nudge_seconds: float = NUDGE_SECONDS,
):
    """`RunningKernel.get_message` in polls of `poll_seconds`; a wait for a shell reply nudges a silent kernel."""
    wait = SlicedWait(timeout, poll_seconds, nudge_seconds)
    nudge = kernel.kc.kernel_info if stream == "shell" else None
    while True:
        try:
            return _blocking_get_message(kernel, stream, timeout=wait.next_poll())
        except Empty:
            wait.after_silence(nudge)


def install() -> None:
    RunningKernel.get_message = sliced_get_message
