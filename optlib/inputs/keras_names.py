"""The names the model-file allowlist knows, read once from the installed Keras and kept as data.

:mod:`optlib.inputs.allowlist` checks a model's configuration without importing
TensorFlow, so the names of the built-in Keras classes and functions live in
``keras_names.json`` beside this file. This module makes that file from the installed
tf_keras (Keras 2), Keras 3 and the Model Optimization Toolkit's wrappers:

    python -m optlib.inputs.keras_names > optlib/inputs/keras_names.json

A test compares the file with what is installed, so an upgrade that adds names is seen.
Layers that read files or run code are taken out by the allowlist, not here.
"""

import functools
import inspect
import json
from pathlib import Path

FILE = Path(__file__).with_name("keras_names.json")
TOOLKIT = ("PruneLowMagnitude", "QuantizeWrapper", "QuantizeWrapperV2", "QuantizeLayer", "QuantizeAnnotate",
           "ClusterWeights", "ClusterWeightsRNN", "ClusterWeightsMHA")
DTYPE_POLICIES = ("Policy", "DTypePolicy", "FloatDTypePolicy", "QuantizedDTypePolicy",
                  "QuantizedFloat8DTypePolicy", "DTypePolicyMap")


@functools.cache
def known():
    """{group: frozenset of names} from ``keras_names.json``."""
    return {group: frozenset(names) for group, names in json.loads(FILE.read_text()).items()}


def _public(module, classes=None):
    names = set()
    for name in dir(module):
        value = getattr(module, name)
        if name.startswith("_") or (classes is True and not inspect.isclass(value)):
            continue
        if classes is False and (inspect.isclass(value) or not callable(value)):
            continue
        names.add(name)
    return names


def installed():
    """The names as the installed Keras versions give them (imports TensorFlow)."""
    from optlib._keras import keras

    k2 = keras()
    import keras as k3

    groups = {
        "layers": (_public(k2.layers, True) | _public(k2.layers.experimental, True)
                   | _public(k2.layers.experimental.preprocessing, True) | _public(k3.layers, True)
                   | {"Functional", "Sequential", "Model"}),
        "initializers": _public(k2.initializers) | _public(k3.initializers),
        "regularizers": _public(k2.regularizers) | _public(k3.regularizers),
        "constraints": _public(k2.constraints) | _public(k3.constraints),
        "activations": _public(k2.activations, False) | _public(k3.activations, False),
        "losses": _public(k2.losses) | _public(k3.losses),
        "metrics": _public(k2.metrics) | _public(k3.metrics),
        "optimizers": (_public(k2.optimizers, True) | _public(k2.optimizers.legacy, True)
                       | _public(k3.optimizers, True) | _public(k2.optimizers.schedules, True)
                       | _public(k3.optimizers.schedules, True)),
        "dtype_policies": set(DTYPE_POLICIES),
        "toolkit": set(TOOLKIT),
    }
    return {group: sorted(names) for group, names in groups.items()}


if __name__ == "__main__":
    print(json.dumps(installed(), indent=1))
