"""Keras 3 `.keras` files, made here with `import keras`, rebuilt as tf_keras models (optlib.inputs.keras3).

Each rebuilt model must give Keras 3's outputs (max difference <= 1e-5, recorded), hold every weight of the
file and take the Model Optimization Toolkit's quantization-aware training; a layer, activation or setting
with no Keras 2 twin is refused by name, and a file whose graph names a node that does not exist is refused
before tf_keras could retry it for ever.
"""

import json
import re
import zipfile

import numpy as np
import pytest

from optlib._keras import keras as tf_keras, tfmot
from optlib.inputs import allowlist, keras3


def _keras3():
    """Keras 3, imported after optlib has imported TensorFlow with TF_USE_LEGACY_KERAS (as in a worker)."""
    tf_keras()
    import keras

    return keras


def _randomize(model, seed=0):
    """Random weights everywhere (variances positive), so that a weight set in the wrong place shows."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        value = rng.normal(0, 0.3, size=tuple(weight.shape)).astype("float32")
        weight.assign(np.abs(value) + 0.5 if "variance" in weight.path else value)


def _save(model, folder, name):
    _randomize(model)
    path = folder / f"{name}.keras"
    model.save(path)
    return path


def _inputs(model, rows=8, seed=1):
    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=(rows, *[int(d) for d in t.shape[1:]])).astype("float32") for t in model.inputs]
    return xs if len(xs) > 1 else xs[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{name: path} of the Keras 3 files the tests rebuild."""
    keras = _keras3()
    layers = keras.layers
    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("keras3")
    made = {}

    made["sequential"] = _save(keras.Sequential([
        keras.Input((8, 8, 1)), layers.Conv2D(8, 3), layers.BatchNormalization(), layers.ReLU(),
        layers.MaxPooling2D(), layers.Flatten(), layers.Dense(16, activation="relu"),
        layers.Dense(10, activation="softmax")]), folder, "sequential")

    image, vector = keras.Input((8, 8, 1), name="image"), keras.Input((5,), name="vector")
    x = layers.Conv2D(4, 3)(image)
    x = layers.BatchNormalization()(x)
    x = layers.Flatten()(layers.Activation("relu")(x))
    y = layers.Dense(6, activation="relu")(vector)
    z = layers.Dropout(0.3)(layers.Concatenate()([x, y]))
    made["two_inputs"] = _save(keras.Model([image, vector], [layers.Dense(3, activation="softmax", name="label")(z),
                                                             layers.Dense(1, name="score")(z)]),
                               folder, "two_inputs")

    sequence = keras.Input((6, 8))
    s = layers.LSTM(5, return_sequences=True)(sequence)
    s = layers.Bidirectional(layers.GRU(3, return_sequences=True))(s)
    s = layers.TimeDistributed(layers.Dense(4))(s)
    s = layers.LayerNormalization()(layers.MultiHeadAttention(num_heads=2, key_dim=3)(s, s))
    inner_input = keras.Input((6, 4))
    s = keras.Model(inner_input, layers.Dense(4)(inner_input), name="inner_functional")(s)
    s = keras.Sequential([keras.Input((6, 4)), layers.Dense(4), layers.Dense(2)], name="inner_sequential")(s)
    shared = layers.Dense(2, name="shared")
    s = layers.Add()([shared(s), shared(layers.Dense(2)(s))])
    made["nested"] = _save(keras.Model(sequence, layers.GlobalAveragePooling1D()(s)), folder, "nested")

    made["no_twin"] = _save(keras.Sequential([keras.Input((4,)), layers.Dense(3),
                                              layers.RMSNormalization(name="rms"), layers.Dense(2)]),
                            folder, "no_twin")
    made["no_twin_activation"] = _save(keras.Sequential([keras.Input((4,)), layers.Dense(3, name="gate",
                                                                                         activation="hard_sigmoid")]),
                                       folder, "no_twin_activation")
    made["lora"] = _save(keras.Sequential([keras.Input((4,)), layers.Dense(3, name="adapted", lora_rank=2)]),
                         folder, "lora")
    return made


def _rebuilt_and_checked(path):
    """Rebuild ``path``; assert it is a tf_keras model with every weight and Keras 3's outputs."""
    keras = _keras3()
    allowlist.check(path, "keras")  # what the caller does first; no allowlist change was needed
    assert keras3.is_keras3(path)
    model, facts = keras3.rebuild(path)
    original = keras.saving.load_model(path, safe_mode=True, compile=False)
    assert isinstance(model, tf_keras().Model)
    assert facts["weights"] == len(original.weights) == len(model.weights)
    assert facts["keras_version"].startswith("3.")
    difference = keras3.max_difference(path, model, _inputs(model))
    print(f"{path.name}: max difference {difference:.3g} over {facts['weights']} weights")  # the recorded fidelity
    assert difference <= 1e-5
    return model, facts


def _fine_tune_with_qat(model):
    """Quantization-aware training takes the rebuilt model: it is a real tf_keras model."""
    quantized = tfmot().quantization.keras.quantize_model(model)
    losses = ["sparse_categorical_crossentropy" if out.shape[-1] > 1 else "mse" for out in model.outputs]
    quantized.compile("adam", losses)
    xs = _inputs(model, rows=16, seed=2)
    ys = [np.zeros((16,), "int32") if out.shape[-1] > 1 else np.zeros((16, 1), "float32") for out in model.outputs]
    history = quantized.fit(xs, ys if len(ys) > 1 else ys[0], epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    assert any("quant" in layer.name for layer in quantized.layers)


def test_sequential_cnn_rebuilds_with_keras3_outputs_and_takes_qat(files):
    model, facts = _rebuilt_and_checked(files["sequential"])
    assert [layer["class_name"] for layer in facts["layers"]] == [
        "InputLayer", "Conv2D", "BatchNormalization", "ReLU", "MaxPooling2D", "Flatten", "Dense", "Dense"]
    # By class: Keras 3 names layers with a suffix when other Keras 3 models were made before in the process.
    by_class = {}
    for layer in facts["layers"]:
        by_class.setdefault(layer["class_name"], []).append(layer)
    assert by_class["BatchNormalization"][0]["weights"] == 4
    dense = by_class["Dense"][0]["name"]
    assert facts["dropped"][dense] == ["quantization_config"]  # None in the file: it changes nothing
    _fine_tune_with_qat(model)


def test_functional_model_with_two_inputs_and_two_outputs_rebuilds_and_takes_qat(files):
    model, facts = _rebuilt_and_checked(files["two_inputs"])
    assert [t.name.split(":")[0] for t in model.inputs] == ["image", "vector"]
    assert model.output_names == ["label", "score"]
    # Keras 3 records training=False while it builds; tf_keras would keep it for good, so training follows the call
    assert any(entry.startswith("dropout") and "training" in entry for entry in facts["call_arguments_dropped"])
    _fine_tune_with_qat(model)


def test_recurrent_attention_wrappers_nested_models_and_a_shared_layer_rebuild(files):
    _, facts = _rebuilt_and_checked(files["nested"])
    counts = {layer["name"]: layer["weights"] for layer in facts["layers"]}
    assert counts["lstm"] == 3 and counts["bidirectional"] == 6 and counts["multi_head_attention"] == 8
    assert counts["shared"] == 2 and counts["time_distributed"] == 2
    inner = {name: n for name, n in counts.items() if name.startswith(("inner_functional/", "inner_sequential/"))}
    assert sorted(inner.values()) == [0, 0, 2, 2, 2]  # three Dense layers and the two nested models' Inputs


def test_a_layer_with_no_keras2_twin_is_refused_by_name(files):
    with pytest.raises(keras3.NoKeras2Twin, match=r"Keras 3 layer 'rms' \(RMSNormalization\) has no Keras 2 "
                                                  "equivalent"):
        keras3.rebuild(files["no_twin"])


def test_an_activation_that_differs_in_keras2_is_refused_by_name(files):
    with pytest.raises(keras3.NoKeras2Twin, match=r"'gate' uses the activation 'hard_sigmoid'.*relu6"):
        keras3.rebuild(files["no_twin_activation"])


def test_a_setting_that_changes_the_layer_is_refused_not_dropped(files):
    with pytest.raises(keras3.NotTranslated, match=r"'adapted' \(Dense\) sets lora_rank=2"):
        keras3.rebuild(files["lora"])


def test_a_graph_that_names_a_missing_node_is_refused_before_tf_keras_loops(files, tmp_path):
    path = tmp_path / "broken.keras"
    with zipfile.ZipFile(files["two_inputs"]) as source, zipfile.ZipFile(path, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "config.json":
                # Keras numbers layer names per process ("concatenate_2" after two others): match any number.
                data, count = re.subn(r'("keras_history": \["concatenate(?:_\d+)?", )0(, 0\])', r"\g<1>3\2",
                                      json.dumps(json.loads(data)))
                assert count == 1
                data = data.encode()
            target.writestr(name, data)
    with pytest.raises(keras3.NotTranslated, match="no layer's output"):
        keras3.rebuild(path)


def test_is_keras3_tells_keras3_files_from_tf_keras_files_and_others(files, tiny_model_path, tmp_path):
    assert keras3.is_keras3(files["sequential"])
    assert not keras3.is_keras3(tiny_model_path)  # saved by tf_keras
    not_a_zip = tmp_path / "m.keras"
    not_a_zip.write_text("not a model")
    assert not keras3.is_keras3(not_a_zip)
    assert not keras3.is_keras3(tmp_path / "missing.keras")
