"""The grader's executor waits for kernel replies in slices and nudges a silent kernel (grader.execute)."""

from __future__ import annotations

import asyncio
from queue import Empty
from types import SimpleNamespace

import pytest

from grader.execute import wait_in_slices


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


def test_a_reply_after_silent_slices_arrives_and_each_silent_slice_sent_a_nudge():
    client, nudges = fake_client(silent_slices=3)
    wait_in_slices(client, slice_seconds=0.01)
    message = asyncio.run(client.kc.shell_channel.get_msg(timeout=None))
    assert message["parent_header"]["msg_id"] == "reply"
    assert len(nudges) == 3
    assert all(timeout == 0.01 for timeout in client.kc.shell_channel.timeouts)


def test_the_callers_timeout_still_holds():
    client, nudges = fake_client(silent_slices=10**6)
    wait_in_slices(client, slice_seconds=0.01)
    with pytest.raises(Empty):
        asyncio.run(client.kc.shell_channel.get_msg(timeout=0.05))
    assert 3 <= len(nudges) <= 10
