"""The acceptance figures of the built-in model: every scheme on digits_cnn, with default settings (the session's
``every_scheme`` sweep, which test_sweep_all_schemes.py reads too)."""

import numpy as np
import pytest

from optlib.engine import schemes, sweep
from optlib.engine.measure import interpreter
from optlib.engine.store import Store


@pytest.fixture(scope="module")
def rows(every_scheme):
    return every_scheme.rows


@pytest.fixture(scope="module")
def workers(every_scheme):
    """The sweep's own worker processes: they have trained and converted every scheme since. Closed with this file,
    as a file's own workers are (a later file of this test process may count its workers)."""
    yield every_scheme.workers
    every_scheme.workers.close()


def test_all_eleven_schemes_are_ok(rows):
    assert [n for n in schemes.names() if rows[n]["status"] == "ok"] == list(schemes.names())


def test_post_training_int8_keeps_accuracy_within_2_points(rows):
    assert rows["float32"]["accuracy"] > 0.9
    assert abs(rows["int8"]["accuracy"] - rows["float32"]["accuracy"]) <= 0.02


def test_litert_quantizer_int8_keeps_accuracy_and_int4_weights_beat_int8_on_size(rows):
    assert rows["lq_int8"]["status"] == rows["lq_weight_int4"]["status"] == "ok"
    assert abs(rows["lq_int8"]["accuracy"] - rows["float32"]["accuracy"]) <= 0.02
    assert rows["lq_weight_int4"]["size_bytes"] < rows["int8"]["size_bytes"]


def test_qat_keeps_accuracy_within_1_point(rows):
    assert abs(rows["qat"]["accuracy"] - rows["float32"]["accuracy"]) <= 0.01


def test_prune_reaches_target_and_prune_and_cluster_compress_to_70_percent(rows):
    assert abs(rows["prune"]["sparsity"] - 0.5) <= 0.02
    for name in ("prune", "cluster"):
        assert rows[name]["gzip_bytes"] <= 0.7 * rows["float32"]["gzip_bytes"], name
    assert rows["cluster"]["max_unique_weights"] <= 16


def test_a_training_run_repeats_exactly(rows, tmp_path, workers):
    # In a worker that has trained and converted other schemes since: nothing of that leaks into this run.
    again = sweep.run("digits_cnn", "digits", "qat", {"runs": "10"}, Store(tmp_path / "r.sqlite"),
                      executor=workers)["results"][0]
    assert again["accuracy"] == rows["qat"]["accuracy"]

    def weights(row):  # tensor names may differ (Keras numbers layers built twice in one process)
        return [(k["shape"], k["unique"], k["sparsity"]) for k in row["kernels"]]

    assert weights(again) == weights(rows["qat"])
    assert abs(again["size_bytes"] - rows["qat"]["size_bytes"]) < 64


def test_where_each_scheme_runs(rows, tmp_path, workers):
    """int8 with int8 I/O runs on TFLite Micro as accurately as on LiteRT; float16 and dynamic are not integer-only."""
    every = [rows[n] for n in schemes.names()]
    assert all(isinstance(r["targets"]["gpu"]["runs"], bool) for r in every)  # a GPU delegate verdict for each
    for name in ("float16", "dynamic"):
        entry = rows[name]["targets"]["integer_only"]
        assert entry["runs"] is False and "compute in float" in entry["reason"], name
    int8_io = sweep.run("digits_cnn", "digits", "int8", {"runs": "10", "int8.int8_io": "true"},
                        Store(tmp_path / "r.sqlite"), executor=workers)["results"][0]
    it = interpreter(int8_io["tflite_path"])  # integer input and output, quantized correctly before invoking
    assert it.get_input_details()[0]["dtype"] == np.int8 and it.get_output_details()[0]["dtype"] == np.int8
    assert int8_io["accuracy"] > 0.9
    micro = int8_io["targets"]["micro"]
    assert micro["runs"] is True and micro["arena_bytes"] > 0 and micro["flash_bytes"] == int8_io["size_bytes"]
    assert abs(micro["accuracy"] - micro["litert_accuracy"]) <= 0.01 and micro["samples"] == 200
    assert int8_io["targets"]["integer_only"]["runs"] is True
