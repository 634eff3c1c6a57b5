"""optlib.views.codegen: the generated TensorFlow code runs and reproduces what optlib made.

The end-to-end tests save a tiny model and a small .npz of real digits, let
optlib's own sweep convert them, then run the generated code with the venv's
Python in a subprocess and compare the two .tflite files.
"""

import ast
import re
import subprocess
import sys

import numpy as np
import pytest

from optlib.engine import measure, schemes, sweep
from optlib.inputs import preparation
from optlib.views import codegen
from tests.conftest import save_tiny_digits
from optlib.engine.schemes.post_training import recipe_for
from optlib.engine.store import Store

# Recipes as a real sweep of digits_cnn on digits recorded them (default settings).
PRUNE_STEP = {"step": "prune_low_magnitude", "schedule": "PolynomialDecay", "initial_sparsity": 0.0,
              "final_sparsity": 0.5, "begin_step": 0, "end_step": 54, "frequency": 9, "train_s": 3.04}


def _cluster_step(preserve):
    return {"step": "cluster_weights", "number_of_clusters": 16, "cluster_centroids_init": "KMEANS_PLUS_PLUS",
            "preserve_sparsity": preserve, "train_s": 3.76}


def _qat_step(scheme):
    return {"step": "quantize_model" if scheme == "Default8BitQuantizeScheme" else "quantize_apply",
            "scheme": scheme, "train_s": 3.43}


QAT_CONVERTER = {"optimizations": ["DEFAULT"]}
SWEEP_RECIPES = {
    "float32": {"converter": {}},
    "float16": {"converter": {"optimizations": ["DEFAULT"], "supported_types": ["float16"]}},
    "dynamic": {"converter": {"optimizations": ["DEFAULT"]}},
    "int8": {"converter": {"optimizations": ["DEFAULT"], "supported_ops": ["TFLITE_BUILTINS_INT8"],
                           "representative_samples": 200}},
    "int16x8": {"converter": {"optimizations": ["DEFAULT"], "representative_samples": 200,
                              "supported_ops": ["EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8"]}},
    "qat": {"training": [_qat_step("Default8BitQuantizeScheme")], "converter": QAT_CONVERTER},
    "prune": {"training": [PRUNE_STEP], "converter": {}},
    "cluster": {"training": [_cluster_step(False)], "converter": {}},
    "prune_qat": {"training": [PRUNE_STEP, _qat_step("Default8BitPrunePreserveQuantizeScheme")],
                  "converter": QAT_CONVERTER},
    "cluster_qat": {"training": [_cluster_step(False), _qat_step("Default8BitClusterPreserveQuantizeScheme")],
                    "converter": QAT_CONVERTER},
    "prune_cluster_qat": {"training": [PRUNE_STEP, _cluster_step(True),
                                       _qat_step("Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)")],
                          "converter": QAT_CONVERTER},
}
# int8_selective as a real sweep of digits_cnn recorded it (worst_n=1).
SWEEP_RECIPES["int8_selective"] = {
    "converter": SWEEP_RECIPES["int8"]["converter"],
    "selective": {"kept_float": ["digits_cnn/dense_1/MatMul;digits_cnn/dense_1/BiasAdd"],
                  "denylisted_nodes": ["digits_cnn/dense_1/MatMul;digits_cnn/dense_1/BiasAdd",
                                       "StatefulPartitionedCall:01"],
                  "channel_error": {"digits_cnn/dense_1/MatMul;digits_cnn/dense_1/BiasAdd": 0.0095},
                  "ranked_by": "median over channels of RMSE / RMS against float32"}}
DIGITS_RECIPE = {"source_shape": [8, 8, 1], "model_input": [28, 28, 1], "scale": "x / 16 -> [0, 1]",
                 "resize": "8x8 -> 28x28 (bilinear)"}


def sweep_row(scheme, **extra):
    """A result row as the sweep of digits_cnn on digits returned it."""
    row = {"id": 4, "scheme": scheme, "status": "ok", "error": None, "model": "digits_cnn", "dataset": "digits",
           "settings": schemes.settings_for(scheme), "recipe": SWEEP_RECIPES.get(scheme),
           "data_recipe": DIGITS_RECIPE, "size_bytes": 64376, "accuracy": 0.975}
    row.update(extra)
    return row


# --- Every scheme of the registry -------------------------------------------------

@pytest.mark.parametrize("name", schemes.names())
def test_code_for_every_registry_scheme_compiles(name):
    entry = schemes.get(name)
    if name not in SWEEP_RECIPES and entry.recipe is None:  # a new scheme with a builder of its own
        with pytest.raises(ValueError, match="no code template|cannot be reproduced|no recorded recipe"):
            codegen.code_for(sweep_row(name, recipe=None))
        return
    recorded = SWEEP_RECIPES.get(name) or {"converter": recipe_for(name, schemes.settings_for(name))}
    code = codegen.code_for(sweep_row(name, recipe=recorded))
    compile(code, f"{name}.py", "exec")
    # TF_USE_LEGACY_KERAS must be set before TensorFlow is imported, and Keras is tf_keras.
    assert code.index('os.environ["TF_USE_LEGACY_KERAS"] = "1"') < code.index("import tensorflow as tf")
    assert "import tf_keras as keras" in code and "from tensorflow import keras" not in code
    assert "keras.models.load_model(MODEL_PATH, compile=False)" in code
    assert "with open(OUTPUT_PATH, \"wb\")" in code
    needs_data = schemes.get(name).needs != "nothing"
    assert ("SAMPLES_NPZ = " in code) == needs_data
    assert ("converter.representative_dataset = representative_dataset" in code) == (
        name in ("int8", "int16x8"))


@pytest.mark.parametrize("name", [s.name for s in schemes.list_schemes() if s.needs == "training"])
def test_training_code_uses_the_runs_settings_and_steps(name):
    settings = {**schemes.settings_for(name), "epochs": 3, "batch_size": 16, "learning_rate": 0.0005, "seed": 7}
    code = codegen.code_for(sweep_row(name, settings=settings))
    assert "EPOCHS, BATCH_SIZE, LEARNING_RATE, SEED = 3, 16, 0.0005, 7" in code
    assert "import tensorflow_model_optimization as tfmot" in code
    techniques = schemes.get(name).techniques
    if "prune" in techniques:
        schedule = code.split("sparsity.PolynomialDecay(")[1].split(")")[0]
        for argument in ("initial_sparsity=0.0", "final_sparsity=0.5", "begin_step=0", "end_step=54", "frequency=9"):
            assert argument in schedule
        assert "sparsity.UpdatePruningStep()" in code and "sparsity.strip_pruning(model)" in code
    if "cluster" in techniques:
        assert "number_of_clusters=16" in code and "CentroidInitialization.KMEANS_PLUS_PLUS" in code
        assert ("preserve_sparsity=True" in code.split("cluster_weights(")[1].split("fine_tune")[0]) == (
            "prune" in techniques)
        assert "clustering.strip_clustering(model)" in code
    if techniques == ("quantize",):
        assert "quantization.quantize_model(model)" in code
    elif "quantize" in techniques:
        scheme = SWEEP_RECIPES[name]["training"][-1]["scheme"]
        assert f"tfmot.experimental.combine.{scheme}" in code
        assert "quantization.quantize_apply(quantization.quantize_annotate_model(model), preserving)" in code
    # Steps run in the recorded order.
    calls = ("sparsity.prune_low_magnitude(model", "clustering.cluster_weights(", "quantization.quantize_")
    order = [code.index(call) for call in calls if call in code]
    assert len(order) == len(techniques) and order == sorted(order)


def test_int8_io_and_pruning_with_int8_ptq_follow_the_recipe():
    settings = schemes.settings_for("int8", {"int8_io": True, "rep_samples": 100})
    row = sweep_row("int8", settings=settings, recipe={"converter": recipe_for("int8", settings)})
    code = codegen.code_for(row)
    assert "converter.inference_input_type = tf.int8" in code
    assert "converter.inference_output_type = tf.int8" in code
    assert "permutation(len(x_raw))[:100]" in code
    prune = sweep_row("prune", recipe={"training": [PRUNE_STEP], "converter": recipe_for("int8", {"rep_samples": 200})})
    code = codegen.code_for(prune)
    compile(code, "prune.py", "exec")
    assert "prune_low_magnitude" in code and "representative_dataset" in code


def _denylist_of(code):
    """The DENYLISTED_NODES list of generated code, read as the literal it is (never executed)."""
    tree = ast.parse(code)
    assigned = [node for node in tree.body if isinstance(node, ast.Assign)
                and any(getattr(target, "id", "") == "DENYLISTED_NODES" for target in node.targets)]
    assert len(assigned) == 1
    return ast.literal_eval(assigned[0].value)


def test_code_for_int8_selective_converts_through_the_quantization_debugger():
    row = sweep_row("int8_selective")
    code = codegen.code_for(row)
    compile(code, "int8_selective.py", "exec")
    assert _denylist_of(code) == row["recipe"]["selective"]["denylisted_nodes"]
    assert "tf.lite.experimental.QuantizationDebugger(" in code
    assert "QuantizationDebugOptions(denylisted_nodes=DENYLISTED_NODES)" in code
    assert "debug_dataset=representative_dataset" in code
    assert "tflite_model = debugger.get_nondebug_quantized_model()" in code
    assert "converter.convert()" not in code
    # The int8 converter settings and the calibration come first, as for int8.
    assert code.index("tf.lite.OpsSet.TFLITE_BUILTINS_INT8") < code.index("QuantizationDebugger(")
    assert "converter.representative_dataset = representative_dataset" in code
    assert "SAMPLES_NPZ = " in code and "OUTPUT_PATH = 'digits_cnn-int8_selective.tflite'" in code


def test_node_names_stay_literals_and_settings_stay_in_the_docstring():
    nasty = ['a";\nimport shutil  #', "b'''c", 'd"""e\\']
    settings = {**schemes.settings_for("int8_selective"), "keep_float": '"""\nimport shutil\n"""\\'}
    recipe = {**SWEEP_RECIPES["int8_selective"],
              "selective": {**SWEEP_RECIPES["int8_selective"]["selective"], "denylisted_nodes": nasty}}
    code = codegen.code_for(sweep_row("int8_selective", settings=settings, recipe=recipe, model='m"""x.keras'))
    tree = ast.parse(code)
    assert _denylist_of(code) == nasty
    assert "keep_float=" in ast.get_docstring(tree) and 'm"""x.keras' in ast.get_docstring(tree)
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert imported == ["os", "numpy", "tensorflow", "tf_keras"]  # nothing smuggled in


@pytest.mark.parametrize("selective", [{"denylisted_nodes": []}, {"denylisted_nodes": "a,b"},
                                       {"denylisted_nodes": [1, 2]}])
def test_int8_selective_without_a_list_of_nodes_is_refused(selective):
    recipe = {**SWEEP_RECIPES["int8_selective"], "selective": selective}
    with pytest.raises(ValueError, match="Cannot generate code: the nodes kept in float"):
        codegen.code_for(sweep_row("int8_selective", recipe=recipe))


def test_paths_are_variables_at_the_top_and_can_be_set():
    code = codegen.code_for(sweep_row("int8"), model_path="/m/model.keras", samples_npz="/d/s.npz",
                            output_path="/o/out.tflite")
    top = code[:code.index("def ")]
    assert "MODEL_PATH = '/m/model.keras'" in top
    assert "SAMPLES_NPZ = '/d/s.npz'" in top
    assert "OUTPUT_PATH = '/o/out.tflite'" in top
    default = codegen.code_for(sweep_row("dynamic"))
    assert "MODEL_PATH = 'digits_cnn.keras'" in default and "OUTPUT_PATH = 'digits_cnn-dynamic.tflite'" in default


def test_a_stored_row_and_a_report_row_work_too():
    from optlib.analysis import report

    stored = {k: v for k, v in sweep_row("float16").items() if k not in ("recipe", "data_recipe", "size_bytes")}
    stored["metrics"] = {"recipe": SWEEP_RECIPES["float16"], "size_bytes": 118248}
    assert "tf.float16" in codegen.code_for(stored)
    frame_row = report.frame([sweep_row("float16")]).iloc[0]
    assert "tf.float16" in codegen.code_for(frame_row)


def test_unfinished_runs():
    failed_ptq = {"id": 9, "scheme": "int16x8", "status": "failed", "model": "m.keras", "dataset": "d.npz",
                  "settings": schemes.settings_for("int16x8"), "recipe": None}
    code = codegen.code_for(failed_ptq)
    compile(code, "x.py", "exec")
    assert "EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8" in code and "ended 'failed'" in code
    with pytest.raises(ValueError, match="no recorded recipe"):
        codegen.code_for({**failed_ptq, "scheme": "qat", "settings": schemes.settings_for("qat")})
    with pytest.raises(ValueError, match="known only once the run finished"):
        codegen.code_for({**failed_ptq, "scheme": "int8_selective",
                          "settings": schemes.settings_for("int8_selective")})


@pytest.fixture
def new_ptq():
    """A post-training scheme codegen has no recipe for, registered for one test and then taken out."""
    entry = schemes.register(schemes.Scheme("int4", "post-training", "Int4 weights",
                                            "A post-training scheme codegen has no recipe for.", "nothing",
                                            "optlib.engine.schemes.post_training:build_int4"))
    yield entry
    schemes.unregister(entry.name)


def test_a_post_training_scheme_without_a_known_recipe_is_refused_in_plain_words(new_ptq):
    row = {"id": 7, "scheme": "int4", "status": "ok", "model": "digits_cnn", "dataset": "digits",
           "settings": schemes.settings_for("int4"), "recipe": None}
    with pytest.raises(ValueError, match=r"Run #7 \(int4\) recorded no converter recipe, and optlib has no code "
                                         r"template for the post-training scheme 'int4'"):
        codegen.code_for(row)
    with pytest.raises(ValueError, match="no recipe was recorded for it, and optlib does not know the scheme 'gone'"):
        codegen.code_for({**row, "scheme": "gone"})  # a scheme stored by an older optlib, since removed


@pytest.mark.parametrize("recipe", [
    {"converter": {"optimizations": ["DEFAULT]\nimport os  #"]}},
    {"converter": {"supported_types": ["float16; print(1)"]}},
    {"converter": {}, "training": [{**PRUNE_STEP, "end_step": "__import__('os')"}]},
    {"converter": {}, "training": [{"step": "quantize_apply", "scheme": "Evil()"}]},
    {"converter": {}, "training": [{"step": "rm_rf"}]},
])
def test_values_that_are_not_plain_names_or_numbers_are_refused(recipe):
    with pytest.raises(ValueError, match="Cannot generate code"):
        codegen.code_for(sweep_row("float32", recipe=recipe))


def _prepare_from(code):
    """Execute only the generated prepare() (no TensorFlow needed without a resize)."""
    source = code[code.index("def prepare(x):"):]
    source = source[:source.index("    return x\n") + len("    return x\n")]
    namespace = {"np": np}
    exec(source, namespace)
    return namespace["prepare"]


@pytest.mark.parametrize("recipe, scale, input_shape, value_range", [
    ({"source_shape": [8, 8, 1], "model_input": [8, 8, 3], "scale": "x / 255 -> [-1, 1]",
      "channels": "1 -> 3"}, "-1..1", (8, 8, 3), 255.0),
    ({"source_shape": [8, 8, 3], "model_input": [8, 8, 1], "scale": "x / 16 -> [0, 1]",
      "channels": "3 -> 1"}, "0..1", (8, 8, 1), 16.0),
    ({"source_shape": [8, 8], "model_input": [64], "scale": "x / 16 -> [0, 1]", "flatten": True},
     "0..1", (64,), 16.0),
    ({"source_shape": [8, 8, 1], "model_input": [8, 8, 1], "scale": "x / 1 -> [0, 1]"}, "0..1", (8, 8, 1), 1.0),
])
def test_generated_prepare_matches_optlib_data_prepare(recipe, scale, input_shape, value_range):
    raw = np.random.default_rng(0).uniform(0, value_range, (5, 8, 8, 3) if recipe["source_shape"][-1] == 3
                                           else (5, 8, 8)).astype(np.float32)
    code = codegen.code_for(sweep_row("int8", data_recipe=recipe))
    ours = _prepare_from(code)(raw)
    theirs = preparation.prepare(raw, input_shape, scale, value_range)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


# --- The generated code runs and makes the same model as optlib ----------------------

@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A tiny model and a small .npz saved here, converted by optlib's own sweep."""
    folder = tmp_path_factory.mktemp("codegen")
    model_path, samples = save_tiny_digits(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPTLIB_HOME", str(folder / "home"))
        result = sweep.run(str(model_path), str(samples), "int8,prune_cluster_qat,int8_selective",
                           {"rep_samples": 64, "epochs": 1, "runs": 3, "warmup": 1, "clusters": 8},
                           Store(folder / "store" / "results.sqlite"))
    rows = {row["scheme"]: row for row in result["results"]}
    return folder, model_path, samples, rows


def _run_generated(made, scheme):
    folder, model_path, samples, rows = made
    row = rows[scheme]
    assert row["status"] == "ok", row["error"]
    output = folder / f"generated-{scheme}.tflite"
    script = folder / f"reproduce_{scheme}.py"
    script.write_text(codegen.code_for(row, model_path=str(model_path), samples_npz=str(samples),
                                       output_path=str(output)))
    done = subprocess.run([sys.executable, str(script)], cwd=folder, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"Wrote .*: [\d,]+ bytes", done.stdout)
    return row, output


def test_generated_int8_code_makes_the_same_model_as_optlib(made):
    row, output = _run_generated(made, "int8")
    size = output.stat().st_size
    assert abs(size - row["size_bytes"]) <= 0.01 * row["size_bytes"]
    # Same converter settings and the same calibration inputs: the very same file.
    assert output.read_bytes() == open(row["tflite_path"], "rb").read()


def test_generated_training_code_reproduces_the_pipeline(made):
    row, output = _run_generated(made, "prune_cluster_qat")
    assert abs(output.stat().st_size - row["size_bytes"]) <= 0.01 * row["size_bytes"]
    stats = measure.weight_stats(output)
    assert stats["sparsity"] == pytest.approx(row["sparsity"], abs=0.05)  # pruned as much as optlib's
    assert stats["sparsity"] > 0.3


def test_generated_int8_selective_code_makes_the_same_model_as_optlib(made):
    row, output = _run_generated(made, "int8_selective")
    assert row["recipe"]["selective"]["denylisted_nodes"]
    # Same converter, calibration inputs and denylist through the same debugger: the very same file.
    assert output.read_bytes() == open(row["tflite_path"], "rb").read()
    assert output.stat().st_size > made[3]["int8"]["size_bytes"]  # the kept layers are float32
