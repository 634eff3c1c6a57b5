"""Per-layer insight on a model built to have one layer that quantizes badly."""

import numpy as np
import pytest

from optlib.engine import sweep
from optlib.engine.layers import compare_layers, debugger_metrics, weight_values, worst_layers
from optlib.engine.store import Store


@pytest.fixture(scope="module")
def bad_model(tmp_path_factory, digits_arrays):
    """Digits on flat vectors; layer 'bad' emits one huge activation channel that the head ignores.

    In float the huge channel changes nothing; in int8 it sets the scale of the
    whole tensor, so every other channel of 'bad' is quantized to almost nothing.
    """
    from optlib._keras import keras

    k = keras()
    x_train, y_train, x_test, y_test = digits_arrays
    k.utils.set_random_seed(0)
    inputs = k.layers.Input((64,))
    hidden = k.layers.Dense(64, activation="relu", name="normal")(inputs)
    bad = k.layers.Dense(64, activation="relu", name="bad")(hidden)
    model = k.Model(inputs, k.layers.Dense(10, activation="softmax", name="head")(bad))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x_train.reshape(-1, 64) / 16.0, y_train, epochs=40, verbose=0)
    kernel, bias = model.get_layer("bad").get_weights()
    kernel[:, 0], bias[0] = 0.0, 2000.0
    model.get_layer("bad").set_weights([kernel, bias])
    head, head_bias = model.get_layer("head").get_weights()
    head[0, :] = 0.0
    model.get_layer("head").set_weights([head, head_bias])
    folder = tmp_path_factory.mktemp("bad")
    model.save(folder / "bad.keras", save_format="keras_v3")
    np.savez(folder / "flat.npz", x_train=x_train.reshape(-1, 64), y_train=y_train,
             x_test=x_test.reshape(-1, 64), y_test=y_test)
    return folder / "bad.keras", folder / "flat.npz"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return Store(tmp_path_factory.mktemp("store") / "r.sqlite")


@pytest.fixture(scope="module")
def rows(bad_model, store):
    model, data = bad_model
    result = sweep.run(str(model), str(data), "float32,int8,int16x8,int8_selective",
                       {"runs": "3", "warmup": "1", "rep_samples": "200"}, store)
    return {r["scheme"]: r for r in result["results"]}


def test_the_bad_layer_ranks_first_and_int16_activations_fix_it(rows, digits_arrays):
    x = (digits_arrays[2].reshape(-1, 64) / 16.0)[:48].astype(np.float32)
    layers = compare_layers(rows["float32"]["tflite_path"], {
        "int8": rows["int8"]["tflite_path"], "int16x8": rows["int16x8"]["tflite_path"]}, x)
    worst = worst_layers(layers, "int8", 1)[0]
    assert "/bad/" in worst
    bad = next(r for r in layers if r["layer"] == worst)
    assert bad["int8_error"] > 0.5 and bad["int16x8_error"] < bad["int8_error"] / 10
    normal = next(r for r in layers if "/normal/" in r["layer"])
    assert normal["int8_error"] < 0.05


def test_selective_int8_keeps_the_bad_layer_in_float_and_recovers_the_accuracy(rows):
    lost = rows["float32"]["accuracy"] - rows["int8"]["accuracy"]
    assert lost > 0.1  # int8 really hurts this model
    selective = rows["int8_selective"]
    assert selective["status"] == "ok"
    assert any("/bad/" in name for name in selective["recipe"]["selective"]["kept_float"])
    recovered = selective["accuracy"] - rows["int8"]["accuracy"]
    assert recovered >= 0.8 * lost
    assert selective["size_bytes"] < rows["float32"]["size_bytes"]


def test_debugger_metrics_and_weight_values(bad_model, rows, digits_arrays):
    from optlib.inputs import models

    keras_model = models.load(models.resolve(str(bad_model[0])))
    rep = (digits_arrays[0].reshape(-1, 64) / 16.0)[:50].astype(np.float32)
    metrics = debugger_metrics(keras_model, rep)
    assert metrics and {"tensor_name", "mean_squared_error", "max_abs_error", "scale", "rmse/scale"} <= metrics[0].keys()
    float_kernels = weight_values(rows["float32"]["tflite_path"])
    int8_kernels = weight_values(rows["int8"]["tflite_path"])
    assert len(float_kernels) == len(int8_kernels) == 3
    for (_, _, f), (_, _, q) in zip(float_kernels, int8_kernels):
        assert f.shape == q.shape and np.max(np.abs(f - q)) <= np.max(np.abs(f)) / 100  # int8 per-channel steps


def test_layers_on_the_cli_names_the_bad_layer_first_from_the_stored_runs(bad_model, rows, store, capsys):
    from optlib.cli import main

    model, data = bad_model
    assert main(["layers", "--model", str(model), "--data", str(data), "--store", str(store.path), "--top", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    ids = f"float32 #{rows['float32']['id']}, int8 #{rows['int8']['id']}, int16x8 #{rows['int16x8']['id']}"
    assert out[0].startswith(f"Compared on 64 inputs ({ids})")  # made by the sweep above, not again
    first_int8 = out[out.index(next(line for line in out if line.startswith("Worst layers in int8"))) + 1]
    assert "/bad/" in first_int8 and "FULLY_CONNECTED" in first_int8
    assert any(line.startswith("Worst layers in int16x8") for line in out)
    assert any(line.startswith("QuantizationDebugger (int8)") for line in out)
    assert len(store.rows()) == 4  # nothing new was run


def test_layers_on_the_cli_with_a_bad_model_path_says_what_is_wrong(tmp_path, capsys):
    from optlib.cli import main

    assert main(["layers", "--model", str(tmp_path / "missing.keras"), "--data", "digits",
                 "--store", str(tmp_path / "r.sqlite")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "missing.keras" in err and "Traceback" not in err


def test_a_quantized_model_the_reference_kernels_refuse_fails_before_the_float_models_pass(monkeypatch):
    from optlib.engine import layers

    ran = []

    def outputs(model, x):
        ran.append(model)
        if model == "refused":
            raise RuntimeError("tflite/kernels/kernel_util.cc:349 no_integer_overflow_from_quantization was not true")
        return {"conv": ("CONV_2D", np.ones((2, 3)))}

    monkeypatch.setattr(layers, "layer_outputs", outputs)
    with pytest.raises(RuntimeError, match="no_integer_overflow"):
        compare_layers("float32", {"int8": "refused"}, np.zeros((2, 4)))
    assert ran == ["refused"]  # the float model's slow pass never ran
    rows = compare_layers("float32", {"int8": "fine"}, np.zeros((2, 4)))
    assert rows[0]["int8_error"] == 0.0 and ran[1:] == ["fine", "float32"]
