"""Models that are not Keras files: a float .tflite (what PyTorch, JAX and ONNX tools end in), a quantized
.tflite, and a plain SavedModel (tf.saved_model.save, Keras 3's model.export()), folder and zip.

The files are made here, from a tiny tf_keras model through TensorFlow's own converter and SavedModel
writer, as those frameworks are not installed.
"""

import json
import os
import subprocess
import sys
import zipfile

import pytest

from optlib.engine import schemes, sweep
from optlib.engine.executors import InProcess
from optlib.engine.store import Store
from optlib.inputs import models

FAST = {"epochs": "1", "runs": "3", "warmup": "1", "rep_samples": "16"}


@pytest.fixture(scope="module")
def made(tmp_path_factory, tiny_model_path):
    """{"float": .tflite, "int8": .tflite, "saved": SavedModel folder, "saved_zip": its .zip} of the tiny model."""
    from optlib._keras import tf

    folder = tmp_path_factory.mktemp("formats")
    model = models.load(models.resolve(str(tiny_model_path)))
    lite = tf().lite
    (folder / "tiny.tflite").write_bytes(lite.TFLiteConverter.from_keras_model(model).convert())
    converter = lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [lite.Optimize.DEFAULT]
    (folder / "tiny_dynamic.tflite").write_bytes(converter.convert())
    tf().saved_model.save(model, str(folder / "tiny_saved"))
    with zipfile.ZipFile(folder / "tiny_saved.zip", "w") as bundle:
        for file in sorted((folder / "tiny_saved").rglob("*")):
            bundle.write(file, f"tiny_saved/{file.relative_to(folder / 'tiny_saved')}")
    return {"float": folder / "tiny.tflite", "int8": folder / "tiny_dynamic.tflite",
            "saved": folder / "tiny_saved", "saved_zip": folder / "tiny_saved.zip"}


def rows_of(model, data, tmp_path, selection):
    result = sweep.run(str(model), str(data), selection, FAST, Store(tmp_path / "r.sqlite"), executor=InProcess())
    return {row["scheme"]: row for row in result["results"]}


def test_the_form_of_a_model_is_read_from_its_file_without_loading_it(made, tiny_model_path):
    assert models.resolve(str(made["float"])).form == "tflite"
    assert models.resolve(str(made["int8"])).form == "tflite-quantized"
    assert models.resolve(str(made["saved"])).form == "savedmodel"
    assert models.resolve(str(made["saved_zip"])).form == "savedmodel"
    assert models.resolve(str(tiny_model_path)).form == "keras"


def test_a_float_tflite_is_its_own_float32_and_takes_every_lq_scheme(made, digits_npz, tmp_path):
    rows = rows_of(made["float"], digits_npz, tmp_path, "all,int8,qat")
    assert set(schemes.for_form("tflite")) <= set(rows)
    for name in schemes.for_form("tflite"):
        row = rows[name]
        assert row["status"] == "ok", (name, row["error"])
        assert row["accuracy"] > 0.5 and row["fidelity"] is not None and row["targets"], name
    assert rows["float32"]["size_bytes"] == made["float"].stat().st_size  # the file itself, not a conversion
    assert rows["float32"]["fidelity_top1_agreement"] == 1.0
    assert rows["int8"]["status"] == "skipped" and "needs a Keras model or a SavedModel" in rows["int8"]["error"]
    assert rows["qat"]["status"] == "skipped" and "needs a Keras model to fine-tune" in rows["qat"]["error"]

    # The generated code starts from the .tflite itself and makes the same bytes.
    from optlib.views import codegen

    out = tmp_path / "again.tflite"
    code = codegen.code_for(rows["lq_dynamic_int8"], model_path=str(made["float"]), output_path=str(out))
    assert "from_keras_model" not in code and "float_model = source.read()" in code
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.read_bytes() == open(rows["lq_dynamic_int8"]["tflite_path"], "rb").read()


def test_a_quantized_tflite_is_measured_as_given(made, digits_npz, tmp_path):
    rows = rows_of(made["int8"], digits_npz, tmp_path, "all,lq_int8,float32")
    given = rows["as_given"]
    assert given["status"] == "ok" and given["accuracy"] > 0.5 and given["size_bytes"] == made["int8"].stat().st_size
    assert given["fidelity"] is None  # no float model to compare it with
    for name in ("lq_int8", "float32"):
        assert rows[name]["status"] == "skipped" and "measured as it is" in rows[name]["error"]


def test_a_plain_savedmodel_takes_the_converter_schemes_and_lq(made, digits_npz, tmp_path):
    rows = rows_of(made["saved"], digits_npz, tmp_path, "all,lq_int8,prune")
    assert list(schemes.for_form("savedmodel")) == ["float32", "float16", "dynamic", "int8", "int16x8"]
    for name in (*schemes.for_form("savedmodel"), "lq_int8"):
        assert rows[name]["status"] == "ok", (name, rows[name]["error"])
        assert rows[name]["accuracy"] > 0.5 and rows[name]["fidelity_top1_agreement"] > 0.8, name
    assert rows["prune"]["status"] == "skipped" and "a SavedModel without Keras metadata" in rows["prune"]["error"]
    from optlib.views import codegen

    code = codegen.code_for(rows["dynamic"], model_path=str(made["saved"]))
    assert "from_concrete_functions([serving], loaded)" in code and "import tf_keras" not in code
    out = tmp_path / "dynamic_again.tflite"
    code = codegen.code_for(rows["dynamic"], model_path=str(made["saved"]), output_path=str(out))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.read_bytes() == open(rows["dynamic"]["tflite_path"], "rb").read()
    zipped = rows_of(made["saved_zip"], digits_npz, tmp_path, "float32")
    assert zipped["float32"]["status"] == "ok", zipped["float32"]["error"]
    assert zipped["float32"]["accuracy"] == rows["float32"]["accuracy"]


def test_the_schemes_command_says_what_a_model_can_take(made):
    done = subprocess.run([sys.executable, "-m", "optlib", "schemes", "--model", str(made["float"]), "--json"],
                          capture_output=True, text=True, timeout=120, check=False, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    assert rows["lq_int8"]["in_all"] and rows["float32"]["in_all"] and not rows["lq_int8"]["cannot"]
    assert not rows["int8"]["in_all"] and "LiteRT Quantizer's lq_ schemes quantize it" in rows["int8"]["cannot"]


def test_a_file_named_tflite_that_is_not_one_is_refused_in_one_line(tmp_path):
    fake = tmp_path / "model.tflite"
    fake.write_bytes(b"PK\x03\x04not a flatbuffer")
    done = subprocess.run([sys.executable, "-m", "optlib", "sweep", "--model", str(fake), "--data", "digits",
                           "--store", str(tmp_path / "r.sqlite")], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 2 and "is not a TFLite model" in done.stderr and "Traceback" not in done.stderr


def _two_output_model(path, second):
    from optlib._keras import keras

    k = keras()
    k.utils.set_random_seed(0)
    image = k.Input((8, 8, 1), name="image")
    hidden = k.layers.Dense(16, activation="relu")(k.layers.Flatten()(image))
    model = k.Model(image, [k.layers.Dense(10, activation="softmax", name="digit")(hidden), second(hidden)])
    model.save(path, save_format="keras_v3")
    return path


def test_one_set_of_labels_that_fits_one_output_of_two_is_used_for_it(tmp_path, digits_arrays):
    import numpy as np

    from optlib._keras import keras

    x_train, y_train, x_test, y_test = digits_arrays
    data = tmp_path / "one_label_set.npz"
    np.savez(data, x_train=x_train[..., None], y_train=y_train, x_test=x_test[..., None], y_test=y_test)
    model = _two_output_model(tmp_path / "two_outputs.keras", lambda h: keras().layers.Dense(4, name="box")(h))
    rows = rows_of(model, data, tmp_path, "float32,qat")
    row = rows["float32"]
    assert row["status"] == "ok" and row["primary_output"] == "digit" and row["accuracy"] is not None
    outputs = {o["name"]: o for o in row["outputs"]}
    assert "value" in outputs["digit"] and "value" not in outputs["box"] and outputs["box"]["fidelity"]
    assert rows["qat"]["status"] == "failed" and "labels for every output" in rows["qat"]["error"]
    ambiguous = _two_output_model(tmp_path / "two_heads.keras",
                                  lambda h: keras().layers.Dense(10, activation="softmax", name="other")(h))
    with pytest.raises(Exception, match="ambiguous"):
        rows_of(ambiguous, data, tmp_path, "float32")


def test_the_layer_comparison_of_a_float_tflite_reads_litert_quantizers_int8_and_int16x8(made, digits_npz, tmp_path):
    from optlib.analysis import insight

    report = insight.layer_report(str(made["float"]), str(digits_npz), tmp_path / "r.sqlite")
    assert report["runs"]["int8"]["scheme"] == "lq_int8" and report["runs"]["int16x8"]["scheme"] == "lq_int16x8"
    assert report["layers"] and report["labels"][0] == "int8"
    assert report["debugger"] == [] and "converts a Keras model" in report["debugger_problem"]


def test_a_signature_is_chosen_by_name_and_a_missing_one_is_named(made, tmp_path):
    def sweep_cli(model, signature):
        return subprocess.run([sys.executable, "-m", "optlib", "sweep", "--model", str(model), "--data", "digits",
                               "--schemes", "float32", "--signature", signature, "--store",
                               str(tmp_path / "r.sqlite")], capture_output=True, text=True, timeout=300, check=False)

    done = sweep_cli(made["saved"], "nope")
    assert done.returncode == 2 and "has no signature 'nope' (it has: serving_default)" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    done = sweep_cli(made["float"], "serving_default")
    assert done.returncode == 2 and "A signature applies to a SavedModel without Keras metadata" in done.stderr
