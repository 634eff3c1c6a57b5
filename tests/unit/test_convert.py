"""The converter's SavedModel round trip made once per model and weights (optlib.engine.convert._Traced): the
.tflite bytes stay exactly TensorFlow's own, recipe by recipe, and changed weights are never converted from an
older copy."""

import numpy as np
import pytest
from tests.conftest import build_tiny_model

from optlib.engine import convert

RECIPES = {
    "float32": {},
    "float16": {"optimizations": ["DEFAULT"], "supported_types": ["float16"]},
    "dynamic": {"optimizations": ["DEFAULT"]},
    "int8": {"optimizations": ["DEFAULT"], "supported_ops": ["TFLITE_BUILTINS_INT8"],
             "inference_input_type": "int8", "inference_output_type": "int8", "representative_samples": 8},
    "int16x8": {"optimizations": ["DEFAULT"], "representative_samples": 8,
                "supported_ops": ["EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8"]},
}


def _samples(model):
    return np.random.default_rng(0).normal(size=(8, *model.inputs[0].shape[1:])).astype("float32")


def _stock(model, recipe, samples, monkeypatch):
    """What TensorFlow's converter makes from the same traced function, writing its own SavedModel."""
    def unwritable(*args):
        raise OSError("not written here")

    with monkeypatch.context() as patched:
        patched.setattr(convert, "_kept", lambda *args: None)
        patched.setattr(convert, "_Traced", unwritable)  # the converter writes its own SavedModel, as it did
        return convert.convert(model, recipe, samples)


@pytest.fixture
def lstm(keras_):
    return keras_.Sequential([keras_.layers.Input((6, 4)), keras_.layers.LSTM(4),
                              keras_.layers.Dense(3, activation="softmax")])


def test_every_recipe_gives_the_converters_own_bytes_and_the_model_is_written_once(monkeypatch):
    model = build_tiny_model()
    samples = _samples(model)
    made = {name: convert.convert(model, recipe, samples) for name, recipe in RECIPES.items()}
    kept = convert._TRACED[model][None]
    assert len(convert._TRACED[model]) == 1  # five conversions, one traced function written once
    for name, recipe in RECIPES.items():
        assert made[name] == _stock(model, recipe, samples, monkeypatch), name
    assert convert._TRACED[model][None] is kept


def test_a_recurrent_model_converts_with_a_batch_of_one_as_before(lstm, monkeypatch):
    samples = _samples(lstm)
    for name in ("float32", "dynamic"):
        made = convert.convert(lstm, RECIPES[name], samples)
        assert made == _stock(lstm, RECIPES[name], samples, monkeypatch), name
    assert list(convert._TRACED[lstm]) == [1]  # traced with a batch of one, once


def test_changed_weights_are_traced_again_and_only_the_last_model_is_kept(monkeypatch):
    model, other = build_tiny_model(), build_tiny_model(classes=4)
    samples = _samples(model)
    before = convert.convert(model, RECIPES["float32"], samples)
    kept = convert._TRACED[model][None]
    last = model.layers[-1]
    last.kernel.assign(last.kernel * 2.0)  # as fine-tuning in place would
    after = convert.convert(model, RECIPES["float32"], samples)
    assert after != before and convert._TRACED[model][None] is not kept
    assert after == _stock(model, RECIPES["float32"], samples, monkeypatch)
    convert.convert(other, RECIPES["float32"], samples)
    assert model not in convert._TRACED and other in convert._TRACED  # one model's copy at a time
