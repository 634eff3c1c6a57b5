"""LiteRT Quantizer, the second backend: one float32 conversion, recipes as data, validation per tensor.

Every lq_ scheme also runs end to end in test_sweep_all_schemes.py (the registry's variants are swept there).
"""

import json
from pathlib import Path

import pytest

from optlib.engine import lq_backend, schemes, sweep
from optlib.engine.lq_backend import BASES
from optlib.engine.store import Store

FAST = {"runs": "3", "warmup": "1", "rep_samples": "32"}
LQ = [s.name for s in schemes.list_schemes(backend="litert-quantizer", variants=True)]


@pytest.fixture(scope="module")
def swept(tmp_path_factory, tiny_model_path, digits_npz):
    folder = tmp_path_factory.mktemp("lq")
    store = Store(folder / "r.sqlite")
    # A data folder of its own: the float32 cache of the session's shared folder may hold this tiny model already.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPTLIB_HOME", str(folder / "home"))
        result = sweep.run(str(tiny_model_path), str(digits_npz),
                           "float32,lq_int8,lq_weight_int4,int8,lq_int8_selective", {**FAST, "keep_as": "float"}, store)
    return {r["scheme"]: {**r, "store": store.path} for r in result["results"]}




def test_every_post_training_scheme_names_its_backend():
    for scheme in schemes.list_schemes(family="post-training", variants=True):
        assert scheme.backend in schemes.BACKENDS, scheme.name
    assert all(schemes.get(name).recipe["base"] in BASES for name in LQ)  # a named LiteRT Quantizer recipe
    assert set(LQ) == {"lq_int8", "lq_int16x8", "lq_dynamic_int8", "lq_weight_int8", "lq_weight_int4",
                       "lq_dynamic_int4", "lq_blockwise_int4", "lq_int8_selective"}


def test_all_leaves_the_lq_schemes_out_and_the_backend_selects_them():
    assert not set(schemes.select("all")) & set(LQ)
    assert schemes.select("litert-quantizer") == LQ
    assert "int8" in schemes.select("converter") and not set(schemes.select("converter")) & set(LQ)


def test_lq_rows_are_ok_smaller_with_int4_and_int8_keeps_accuracy(swept):
    for name in ("float32", "lq_int8", "lq_weight_int4", "int8"):
        assert swept[name]["status"] == "ok", swept[name]["error"]
    assert swept["lq_weight_int4"]["size_bytes"] < swept["int8"]["size_bytes"]
    assert swept["lq_int8"]["size_bytes"] < 0.4 * swept["float32"]["size_bytes"]
    assert abs(swept["lq_int8"]["accuracy"] - swept["float32"]["accuracy"]) <= 0.02
    assert swept["lq_int8"]["backend"] == "litert-quantizer" and swept["int8"]["backend"] == "converter"


def test_one_float32_conversion_serves_the_baseline_and_every_lq_scheme(swept):
    sharing = [swept[n] for n in ("float32", "lq_int8", "lq_weight_int4", "lq_int8_selective")]
    assert [row["float32_reused"] for row in sharing].count(False) == 1  # whichever worker came first
    assert len({row["float32_convert_s"] for row in sharing}) == 1
    # the float model's outputs, every job's reference: made by one worker, read back by the other
    by_worker = {}
    for row in swept.values():
        by_worker.setdefault(row["pid"], set()).add(row["float_outputs_reused"])
    assert sorted(by_worker.values(), key=str) == sorted([{False}] + [{True}] * (len(by_worker) - 1), key=str)
    # every row says whether its calibration was another job's (shared: see the tests of calibrations below)
    assert isinstance(swept["lq_int8"]["calibration_reused"], bool) and not swept["lq_weight_int4"]["calibration_reused"]


def test_static_recipes_calibrate_on_the_converters_sample_and_the_recipe_is_recorded(swept):
    recorded = swept["lq_int8"]["recipe"]["litert_quantizer"]
    assert recorded["base"] == "static_wi8_ai8" and recorded["calibration_samples"] == 32
    assert swept["int8"]["recipe"]["converter"]["representative_samples"] == 32
    assert recorded["recipe"][0]["op_config"]["activation_tensor_config"]["num_bits"] == 8
    json.dumps(recorded)  # plain data
    weight_only = swept["lq_weight_int4"]["recipe"]["litert_quantizer"]
    assert weight_only["calibration_samples"] == 0 and weight_only["recipe"][0]["op_config"][
        "weight_tensor_config"]["num_bits"] == 4


def test_mixed_precision_keeps_the_worst_layer_in_float_by_recipe(swept):
    row = swept["lq_int8_selective"]
    assert row["status"] == "ok", row["error"]
    kept = row["recipe"]["selective"]["kept"]
    assert len(kept) == 1 and row["recipe"]["selective"]["kept_as"] == "float"
    entries = row["recipe"]["litert_quantizer"]["recipe"]
    assert entries[-1]["algorithm_key"] == "no_quantize" and kept[0].split(";")[0] in entries[-1]["regex"]
    assert row["size_bytes"] != swept["lq_int8"]["size_bytes"]  # the recipe changed the model


def test_named_layers_at_int16_and_blockwise_sizes_follow_the_recipe(swept):
    float32 = Path(swept["float32"]["tflite_path"]).read_bytes()
    kept = swept["lq_int8_selective"]["recipe"]["selective"]["kept"]
    entries = lq_backend.quantizer_recipe({"base": "static_wi8_ai8", "keep": {"names": kept, "as": "int16"}})
    assert entries[-1]["op_config"]["activation_tensor_config"]["num_bits"] == 16
    blockwise = lq_backend.quantizer_recipe({"base": "dynamic_wi4_afp32", "block_size": 32})
    assert [e["op_config"]["weight_tensor_config"]["granularity"] for e in blockwise] == ["CHANNELWISE",
                                                                                          "BLOCKWISE_32"]
    channelwise = lq_backend.quantizer_recipe({"base": "dynamic_wi4_afp32"})
    assert channelwise[0]["op_config"]["weight_tensor_config"]["granularity"] == "CHANNELWISE"
    sizes = [len(lq_backend.quantize(float32, recipe)[0]) for recipe in (blockwise, channelwise)]
    assert sizes[0] > sizes[1]  # a scale per block of 32 weights, not one per channel
    with pytest.raises(ValueError, match="not divisible by block size 256"):  # 288 inputs to the dense layer
        lq_backend.quantize(float32, lq_backend.quantizer_recipe({"base": "dynamic_wi4_afp32", "block_size": 256}))
    with pytest.raises(ValueError, match="Block size"):
        lq_backend.quantizer_recipe({"base": "static_wi8_ai8", "block_size": 32})


def test_the_same_quantization_again_in_a_process_is_served_from_memory(swept):
    float32 = Path(swept["float32"]["tflite_path"]).read_bytes()
    recipe = lq_backend.quantizer_recipe({"base": "weight_only_wi8_afp32"})
    first, made = lq_backend.quantize(float32, recipe)
    again, reused = lq_backend.quantize(float32, recipe)
    assert again == first and reused["quantization_reused"] and reused["quantize_s"] == made["quantize_s"]
    other = lq_backend.quantize(float32, lq_backend.quantizer_recipe({"base": "weight_only_wi4_afp32"}))
    assert not other[1]["quantization_reused"] and other[0] != first  # another recipe is another quantization


def _plain_litert_quantizer(float32, base, rep):
    """(quantized bytes, QSVs) as LiteRT Quantizer itself makes them: calibrate, then quantize, nothing shared.
    The QSVs are a copy taken before quantize, which changes some in place (a softmax output's range)."""
    import copy

    from litert_quantizer import quantizer

    with lq_backend.silenced():
        qt = quantizer.Quantizer(float32)
        qt.load_quantization_recipe(lq_backend.quantizer_recipe({"base": base}))
        qsvs = qt.calibrate(lq_backend.samples_for(float32, rep), num_threads=1)
        calibrated = copy.deepcopy(qsvs)
        return bytes(qt.quantize(qsvs, enable_progress_report=False).quantized_model), calibrated


def _rep(digits_arrays, count=16):
    import numpy as np

    return (digits_arrays[0][:count, ..., None] / 16.0).astype(np.float32)


def test_static_int8_and_int16x8_calibrate_alike_and_the_key_is_the_per_op_algorithm(swept, digits_arrays):
    import numpy as np

    float32, rep = Path(swept["float32"]["tflite_path"]).read_bytes(), _rep(digits_arrays)
    _, int8 = _plain_litert_quantizer(float32, "static_wi8_ai8", rep)
    _, int16 = _plain_litert_quantizer(float32, "static_wi8_ai16", rep)
    assert set(int8) == set(int16) and int8
    for tensor, qsv in int8.items():  # the same QSVs, bit for bit: calibration never reads the op's bits
        assert set(qsv) == set(int16[tensor])
        for name, value in qsv.items():
            assert value.dtype == int16[tensor][name].dtype and np.array_equal(value, int16[tensor][name])
    key = lq_backend.calibration_key
    static = [lq_backend.quantizer_recipe({"base": base}) for base in ("static_wi8_ai8", "static_wi8_ai16")]
    assert key(float32, static[0], rep) == key(float32, static[1], rep)
    names = swept["lq_int8_selective"]["recipe"]["selective"]["kept"]
    as_int16 = lq_backend.quantizer_recipe({"base": "static_wi8_ai8", "keep": {"names": names, "as": "int16"}})
    as_float = lq_backend.quantizer_recipe({"base": "static_wi8_ai8", "keep": {"names": names, "as": "float"}})
    assert key(float32, as_int16, rep) == key(float32, static[0], rep)  # the same algorithm for every op
    assert key(float32, as_float, rep) != key(float32, static[0], rep)  # a layer left out: another calibration
    assert "no_quantize" in lq_backend.algorithm_map(float32, as_float)
    assert key(float32, static[0], rep[:8]) != key(float32, static[0], rep)  # other calibration inputs


SHARED_IN_A_CHILD = """
import json, sys
from pathlib import Path
import numpy as np
from optlib.engine import lq_backend
float32, folder, base = Path(sys.argv[1]).read_bytes(), sys.argv[2], sys.argv[3]
made, facts = lq_backend.quantize(float32, lq_backend.quantizer_recipe({"base": base}), np.load(sys.argv[4]), folder)
Path(sys.argv[5]).write_bytes(made)
print(json.dumps(facts))
"""


def test_a_calibration_shared_by_two_processes_quantizes_to_the_same_bytes(swept, digits_arrays, tmp_path):
    import subprocess
    import sys

    import numpy as np

    from optlib import paths

    float32, rep = Path(swept["float32"]["tflite_path"]).read_bytes(), _rep(digits_arrays)
    np.save(tmp_path / "rep.npy", rep)
    folder = tmp_path / "calibrations"
    folder.mkdir()

    def child(base):  # a worker of its own: nothing shared in memory, only the folder
        out = tmp_path / f"{base}.tflite"
        done = subprocess.run([sys.executable, "-c", SHARED_IN_A_CHILD, swept["float32"]["tflite_path"], str(folder),
                               base, str(tmp_path / "rep.npy"), str(out)], cwd=paths.REPO_ROOT, capture_output=True,
                              text=True, check=True)
        return out.read_bytes(), json.loads(done.stdout.strip().splitlines()[-1])

    int8, first = child("static_wi8_ai8")
    int16, second = child("static_wi8_ai16")
    assert not first["calibration_reused"] and second["calibration_reused"]  # the second one calibrated nothing
    assert second["calibrate_s"] == first["calibrate_s"] and second["calibration_samples"] == len(rep)
    assert len(list(folder.glob("calibration-*.npz"))) == 1
    assert int8 == _plain_litert_quantizer(float32, "static_wi8_ai8", rep)[0]
    assert int16 == _plain_litert_quantizer(float32, "static_wi8_ai16", rep)[0]  # byte for byte, as if unshared
    assert int16 != int8


def test_a_calibration_is_shared_within_a_process_too(swept, digits_arrays):
    float32, rep = Path(swept["float32"]["tflite_path"]).read_bytes(), _rep(digits_arrays, 24)
    int8, first = lq_backend.quantize(float32, lq_backend.quantizer_recipe({"base": "static_wi8_ai8"}), rep)
    int16, second = lq_backend.quantize(float32, lq_backend.quantizer_recipe({"base": "static_wi8_ai16"}), rep)
    assert not first["calibration_reused"] and second["calibration_reused"] and not second["quantization_reused"]
    assert int16 == _plain_litert_quantizer(float32, "static_wi8_ai16", rep)[0]
    assert int8 == _plain_litert_quantizer(float32, "static_wi8_ai8", rep)[0]


def test_validation_compares_tensors_of_a_model_from_either_backend(swept, digits_arrays):
    import numpy as np

    float32 = swept["float32"]["tflite_path"]
    x = (digits_arrays[2][:4, ..., None] / 16.0).astype(np.float32)
    for name in ("lq_int8", "int8"):
        rows = lq_backend.validate(float32, swept[name]["tflite_path"], x)
        kinds = {r["kind"] for r in rows}
        assert "intermediate" in kinds, name
        assert rows[0]["kind"] == "intermediate" and rows[-1]["kind"] == "constant"  # activations first
        for r in rows:
            assert r["mse"] >= 0 and -1.0001 <= r["cosine_similarity"] <= 1.0001
            assert r["snr_db"] is None or abs(10 ** (r["snr_db"] / 10) / r["snr"] - 1) < 1e-9
        assert any(r["mse"] > 0 for r in rows if r["kind"] == "intermediate"), name


def test_quantize_prints_nothing(swept, capfd):
    float32 = Path(swept["float32"]["tflite_path"]).read_bytes()
    lq_backend.quantize(float32, lq_backend.quantizer_recipe({"base": "dynamic_wi8_afp32"}))
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_tensor_report_puts_the_quantizers_metrics_beside_the_channel_error(swept, tiny_model_path, digits_npz):
    from optlib.analysis import validation
    from optlib.errors import InputError

    store = swept["float32"]["store"]
    for scheme, backend in (("lq_int8", "litert-quantizer"), ("int8", "converter")):
        result = validation.tensor_report(str(tiny_model_path), str(digits_npz), scheme, store)
        assert result["backend"] == backend and result["run"]["id"] == swept[scheme]["id"]
        layers = [r for r in result["rows"] if r["channel_error"] is not None]
        assert len(layers) >= 3 and all(r["snr"] is not None and r["mse"] >= 0 for r in layers)
    with pytest.raises(InputError, match="No stored lq_dynamic_int4 run"):
        validation.tensor_report(str(tiny_model_path), str(digits_npz), "lq_dynamic_int4", store)


def test_the_schemes_listing_names_each_backend_and_says_all_leaves_the_lq_schemes_out(capsys):
    from optlib import cli

    assert cli.main(["schemes", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["lq_int8"]["backend"] == "litert-quantizer" and not rows["lq_int8"]["in_all"]
    assert rows["int8"]["backend"] == "converter" and rows["int8"]["in_all"]
    assert rows["lq_blockwise_int4"]["ranges"]["block_size"] == [32, 64, 128, 256]
    assert cli.main(["schemes"]) == 0
    assert "--schemes litert-quantizer selects every lq_ scheme" in capsys.readouterr().out
