"""The grader's executor waits for kernel replies in short polls and nudges a long-silent kernel (grader.execute)."""

from __future__ import annotations

import asyncio
import time
from queue import Empty
from types import SimpleNamespace

import pytest

from grader.execute import wait_in_slices
from tests.nbval_waits import sliced_get_message


class FakeChannel:
    def __init__(self, silent_slices: int):
        self.silent_slices = silent_slices
        self.timeouts: list[float | None] = []

    async def get_msg(self, timeout=None):
        self.timeouts.append(timeout)
        if len(self.timeouts) <= self.silent_slices:
            await asyncio.sleep(timeout or 0)  # a silent poll lasts its whole timeout
            raise Empty
        return {"parent_header": {"msg_id": "reply"}}


def fake_client(silent_slices: int):
    nudges = []
    kernel_client = SimpleNamespace(shell_channel=FakeChannel(silent_slices), kernel_info=lambda: nudges.append(1))
    return SimpleNamespace(kc=kernel_client), nudges


def test_a_reply_after_silent_polls_arrives_and_a_long_silence_sent_nudges():
    client, nudges = fake_client(silent_slices=12)
    wait_in_slices(client, poll_seconds=0.01, nudge_seconds=0.035)
    message = asyncio.run(client.kc.shell_channel.get_msg(timeout=None))
    assert message["parent_header"]["msg_id"] == "reply"
    assert all(timeout == 0.01 for timeout in client.kc.shell_channel.timeouts)
    # 12 silent polls of 10 ms: a nudge after each 35 ms of silence, not one per poll
    assert 2 <= len(nudges) <= 3


def test_a_short_silence_sends_no_nudge():
    client, nudges = fake_client(silent_slices=2)
    wait_in_slices(client, poll_seconds=0.01, nudge_seconds=1.0)
    asyncio.run(client.kc.shell_channel.get_msg(timeout=None))
    assert len(client.kc.shell_channel.timeouts) == 3
    assert nudges == []


def test_the_callers_timeout_still_holds():
    client, nudges = fake_client(silent_slices=10**6)
    wait_in_slices(client, poll_seconds=0.01, nudge_seconds=0.02)
    with pytest.raises(Empty):
        asyncio.run(client.kc.shell_channel.get_msg(timeout=0.1))
    assert all(timeout <= 0.01 for timeout in client.kc.shell_channel.timeouts)
    assert 2 <= len(nudges) <= 5


class FakeBlockingClient:
    """nbval's kernel client: blocking get_*_msg calls; silent for the first `silent_polls`."""

    def __init__(self, silent_polls: int):
        self.silent_polls = silent_polls
        self.timeouts: list[float | None] = []
        self.nudges = 0

    def _get(self, timeout=None):
        self.timeouts.append(timeout)
        if len(self.timeouts) <= self.silent_polls:
            time.sleep(timeout or 0)
            raise Empty
        return {"parent_header": {"msg_id": "reply"}}

    get_shell_msg = get_iopub_msg = _get

    def kernel_info(self):
        self.nudges += 1


def test_nbvals_shell_wait_polls_briefly_and_nudges():
    kernel = SimpleNamespace(kc=FakeBlockingClient(silent_polls=12))
    message = sliced_get_message(kernel, "shell", timeout=None, poll_seconds=0.01, nudge_seconds=0.035)
    assert message["parent_header"]["msg_id"] == "reply"
    assert all(timeout == 0.01 for timeout in kernel.kc.timeouts)
    assert 2 <= kernel.kc.nudges <= 3


def test_nbvals_iopub_wait_keeps_its_timeout_and_never_nudges():
    kernel = SimpleNamespace(kc=FakeBlockingClient(silent_polls=10**6))
    with pytest.raises(Empty):
        sliced_get_message(kernel, "iopub", timeout=0.1, poll_seconds=0.01, nudge_seconds=0.02)
    assert all(timeout <= 0.01 for timeout in kernel.kc.timeouts)
    assert kernel.kc.nudges == 0


def test_nbval_runs_with_the_sliced_wait():
    from nbval.kernel import RunningKernel

    assert RunningKernel.get_message is sliced_get_message, "the root conftest.py did not install it"
