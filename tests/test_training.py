"""The model, the optimizer and the train step: determinism, compile once, an exact resume."""

import logging

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from resumable import RunConfig, make_triple, state_diff, train


def triple_dict(pipeline, model, optimizer):
    return {"pipeline": pipeline, "model": model, "optimizer": optimizer}


def test_repeated_runs_are_bit_identical():
    first = make_triple()
    second = make_triple()
    losses_first, losses_second = train(*first, 20), train(*second, 20)
    assert losses_first == losses_second
    assert state_diff(triple_dict(*first), triple_dict(*second)).identical


def test_other_seeds_give_other_runs():
    assert train(*make_triple(), 5) != train(*make_triple(RunConfig(seed=1)), 5)


def test_the_loss_goes_down():
    losses = train(*make_triple(), 120)
    assert np.mean(losses[-20:]) < 0.6 * np.mean(losses[:5])


def test_the_step_compiles_once_for_fresh_objects(caplog):
    train(*make_triple(), 2)  # warm: compile for these shapes
    with jax.log_compiles(True), caplog.at_level(logging.WARNING, logger="jax"):
        caplog.clear()
        train(*make_triple(), 3)
    compiles = [record.getMessage() for record in caplog.records if "train_step" in record.getMessage()]
    assert compiles == [], f"train_step recompiled for a fresh run: {compiles}"


def test_save_restore_resume_is_exact(tmp_path):
    reference = make_triple()
    reference_losses = train(*reference, 40)

    crashed = make_triple()
    losses = train(*crashed, 25)
    checkpointer = ocp.StandardCheckpointer()
    snapshot = {name: nnx.to_pure_dict(nnx.state(obj)) for name, obj in triple_dict(*crashed).items()}
    checkpointer.save(tmp_path / "step_25", snapshot)
    checkpointer.wait_until_finished()

    resumed = triple_dict(*make_triple())
    template = {name: nnx.to_pure_dict(nnx.state(obj)) for name, obj in resumed.items()}
    saved = checkpointer.restore(tmp_path / "step_25", template)
    for name, obj in resumed.items():
        state = nnx.state(obj)
        nnx.replace_by_pure_dict(state, saved[name])
        nnx.update(obj, state)
    losses += train(resumed["pipeline"], resumed["model"], resumed["optimizer"], 15)

    assert losses == reference_losses
    assert state_diff(triple_dict(*reference), resumed).identical
