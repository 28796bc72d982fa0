"""The checkpoint listing (notebook 02's widget callback) and the shapes stored in a checkpoint."""

import logging
import sys

import orbax.checkpoint as ocp
from flax import nnx

from resumable import RunConfig, make_triple
from resumable.checkpoints.files import (
    checkpoint_files,
    orbax_noise_captured,
    render_choice,
    render_listing,
    shape_mismatches,
    stored_leaves,
)


def make_folder(root):
    (root / "ckpt" / "d").mkdir(parents=True)
    (root / "ckpt" / "_METADATA").write_bytes(b"x" * 1500)
    (root / "ckpt" / "d" / "abc").write_bytes(b"y" * 7)
    return root / "ckpt"


def test_files_are_listed_recursively_with_sizes(tmp_path):
    folder = make_folder(tmp_path)
    assert [(file.path, file.nbytes) for file in checkpoint_files(folder)] == [("_METADATA", 1500), ("d/abc", 7)]
    assert checkpoint_files(tmp_path / "missing") == []


def test_render_listing_has_a_header_and_one_aligned_line_per_file(tmp_path):
    folder = make_folder(tmp_path)
    assert render_listing(folder).splitlines() == [
        "ckpt/: 2 files, 1,507 bytes",
        "  _METADATA  1,500 B",
        "  d/abc          7 B",
    ]


def test_render_listing_of_a_missing_folder_says_so(tmp_path):
    assert "no such folder" in render_listing(tmp_path / "step_3")


def test_render_choice_is_the_widget_callback(tmp_path):
    folder = make_folder(tmp_path)
    assert render_choice("saved", {"saved": folder}) == render_listing(folder, "saved")
    assert "unknown choice" in render_choice("other", {"saved": folder})


def saved_run(folder, config):
    parts = make_triple(config)
    snapshot = {name: nnx.to_pure_dict(nnx.state(part)) for name, part in zip(("p", "m", "o"), parts, strict=True)}
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(folder, snapshot)
    checkpointer.wait_until_finished()
    return snapshot


def test_stored_leaves_read_shapes_from_metadata_with_keys_as_key_data(tmp_path):
    saved_run(tmp_path / "run", RunConfig())
    stored = stored_leaves(tmp_path / "run")
    assert stored["m/hidden/kernel"] == ((8, 32), "float32")
    assert stored["o/opt_state/0/count"] == ((), "int32")
    assert stored["p/rngs/shuffle/key"] == ((2,), "uint32")
    assert len(stored) == 22


def test_shape_mismatches_name_every_leaf_that_does_not_fit(tmp_path):
    snapshot = saved_run(tmp_path / "run", RunConfig())
    assert shape_mismatches(tmp_path / "run", snapshot) == []
    wide = saved_run(tmp_path / "wide", RunConfig(num_hidden=64))
    mismatches = shape_mismatches(tmp_path / "run", wide)
    assert mismatches[0] == "m/hidden/bias: stored (32,) float32, template (64,) float32"
    assert len(mismatches) == 9
    partial = shape_mismatches(tmp_path / "run", {"m": snapshot["m"]})
    assert partial[0].endswith("in the checkpoint, missing from the template") and len(partial) == 16


def test_shape_mismatches_accept_an_abstract_template_from_eval_shape(tmp_path):
    saved_run(tmp_path / "run", RunConfig())
    abstract = nnx.eval_shape(lambda: make_triple(RunConfig(num_hidden=64)))
    template = {name: nnx.to_pure_dict(nnx.state(part)) for name, part in zip(("p", "m", "o"), abstract, strict=True)}
    mismatches = shape_mismatches(tmp_path / "run", template)
    assert len(mismatches) == 9 and not any("key" in sentence for sentence in mismatches)


def test_orbax_noise_captured_keeps_stderr_and_lets_the_error_through(tmp_path):
    saved_run(tmp_path / "run", RunConfig())
    wide = saved_run(tmp_path / "wide", RunConfig(num_hidden=64))
    raised = None
    with orbax_noise_captured(settle_seconds=0.1) as captured:
        print("noise", file=sys.stderr)
        try:
            ocp.StandardCheckpointer().restore(tmp_path / "run", wide)
        except ValueError as error:
            raised = error
    assert captured.getvalue().startswith("noise")
    assert "is not compatible with the stored shape" in str(raised)


def test_asyncios_reports_of_abandoned_orbax_reads_are_dropped_and_others_kept():
    """A report that arrives after the helper's wait (a busy machine) must not reach a cell's stderr."""
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(handler)
    try:
        with orbax_noise_captured(settle_seconds=0):
            pass
        asyncio_logger.error(
            "Task exception was never retrieved\nfuture: <Task finished name='Task-7' coro=<_read_array_index_and_"
            "device_put() done, defined at /venv/site-packages/orbax/checkpoint/_src/serialization/serialization.py"
            ":272> exception=ValueError('Requested shape: (8, 24) is not compatible with the stored shape')>"
        )
        asyncio_logger.error(  # the gather of those reads: only Orbax's error text says whose it is
            "_GatheringFuture exception was never retrieved\nfuture: <_GatheringFuture finished exception="
            "ValueError('Requested shape: (64, 4) is not compatible with the stored shape: (32, 4). Truncating/padding"
            " is disabled. To enable it, set `strict=False` in `ArrayRestoreArgs` for any array in v0 API')>"
        )
        asyncio_logger.error("Task exception was never retrieved\nfuture: <Task finished coro=<mine() done>>")
        asyncio_logger.error("_GatheringFuture exception was never retrieved\nfuture: <_GatheringFuture mine>")
    finally:
        asyncio_logger.removeHandler(handler)
    assert records == [
        "Task exception was never retrieved\nfuture: <Task finished coro=<mine() done>>",
        "_GatheringFuture exception was never retrieved\nfuture: <_GatheringFuture mine>",
    ]
