"""TFLiteConverter settings as declarative recipes.

A recipe is a plain dict, stored with every result and used to generate the
code that reproduces it::

    {"optimizations": ["DEFAULT"], "supported_ops": ["TFLITE_BUILTINS_INT8"],
     "inference_input_type": "int8", "inference_output_type": "int8",
     "representative_samples": 200}
"""

import contextlib
import time

from optlib.errors import InputError

_timers = []  # the open timed() blocks of this process (a job's build): each adds the converter's seconds


def _traced_converter(model, batch, holder, **call):
    """A converter for the model's call traced with inputs of ``batch`` (None: any), signature
    ``serving_default``, inputs and outputs named as the model's; ``holder`` keeps the variables it reads."""
    from optlib._keras import tf

    specs = [tf().TensorSpec([batch, *tensor.shape[1:]], tensor.dtype, name=name)
             for name, tensor in zip(model.input_names, model.inputs)]

    def run(*xs):
        found = model(list(xs) if len(xs) > 1 else xs[0], **call)
        found = found if isinstance(found, (list, tuple)) else [found]
        return dict(zip(model.output_names, found))  # the signature keeps the Keras output names

    concrete = tf().function(run).get_concrete_function(*specs)
    return tf().lite.TFLiteConverter.from_concrete_functions([concrete], holder)


def _fixed_batch_converter(model):
    """A converter for the model traced with a batch of one (recurrent layers need static shapes)."""
    return _traced_converter(model, 1, model)


def _keras_function_converter(model):
    """A converter for a Keras model's inference function (``training=False``), its signature as
    ``from_keras_model`` makes it: ``serving_default``, inputs and outputs named as the model's.

    The same graph and the same ``.tflite`` (its ops, tensor names and signature) as ``from_keras_model``,
    which first writes the whole Keras model as a SavedModel, every layer's traced functions included, and
    reads it back: for a model wrapped by the Model Optimization Toolkit, most of its conversion time. Here
    only this one function and the variables it reads are written.
    """
    from optlib._keras import tf

    if not getattr(model, "inputs", None) or not getattr(model, "output_names", None):
        raise ValueError("not a functional model: its inputs are not known before it is called")
    holder = tf().Module()
    holder.variables_of_the_model = list(model.variables)  # what the function reads, and nothing of Keras
    return _traced_converter(model, None, holder, training=False)


def _recurrent(model):
    """True when the model has a recurrent layer (LSTM, GRU, ...): those convert with a fixed batch."""
    from optlib._keras import keras

    if _saved_model(model):
        return False
    return any(isinstance(layer, keras().layers.RNN) for layer in model.submodules)


def _saved_model(model):
    return getattr(model, "form", "") == "savedmodel"


def converter_for(model, recipe, representative=None, fixed_batch=False):
    """Return a TFLiteConverter for a Keras model, set up following ``recipe`` (not yet run).

    Args:
        model: a Keras (tf_keras) model, or a plain SavedModel (:class:`optlib.inputs.graph_models.SavedModelGraph`).
        recipe: converter settings, see the module docstring.
        representative: float32 array of calibration inputs, if the recipe needs them.
        fixed_batch: trace the model with a batch of one (what :func:`convert` falls back to when the
            converter needs static shapes, as for LSTM and GRU layers).
    """
    from optlib._keras import tf

    lite = tf().lite
    if _saved_model(model):  # a plain SavedModel (optlib.inputs.graph_models): its loaded signature
        # From the loaded function, not from_saved_model(folder): for a Keras 3 model saved with
        # tf.saved_model.save, the latter gave a .tflite whose outputs were all NaN (TensorFlow 2.21).
        converter = lite.TFLiteConverter.from_concrete_functions([model.function], model.holder)
    elif fixed_batch:
        converter = _fixed_batch_converter(model)
    else:
        try:
            converter = _keras_function_converter(model)
        except Exception:  # noqa: BLE001 — a model this cannot trace converts as TensorFlow's own path does it
            converter = lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [getattr(lite.Optimize, o) for o in recipe.get("optimizations", [])]
    if recipe.get("supported_types"):
        converter.target_spec.supported_types = [getattr(tf(), t) for t in recipe["supported_types"]]
    if recipe.get("supported_ops"):
        converter.target_spec.supported_ops = [getattr(lite.OpsSet, o) for o in recipe["supported_ops"]]
    for key in ("inference_input_type", "inference_output_type"):
        if recipe.get(key):
            setattr(converter, key, getattr(tf(), recipe[key]))
    if recipe.get("representative_samples"):
        if representative is None:
            raise InputError("This scheme needs a representative sample of inputs, and none was given.")
        converter.representative_dataset = representative_dataset(representative)
    return converter


def representative_dataset(samples):
    """Return the generator function TFLite's calibration calls: one sample per step.

    ``samples`` is one array (a one-input model) or {input name: array} for several inputs,
    fed by name. Integer inputs (token ids) stay integers.
    """
    if isinstance(samples, dict):
        def generate():
            for index in range(len(next(iter(samples.values())))):
                yield {name: values[index:index + 1] for name, values in samples.items()}
        return generate

    def generate():
        for sample in samples:
            yield [sample[None, ...]]

    return generate


@contextlib.contextmanager
def timed():
    """Count the seconds :func:`convert` runs within the block: ``with timed() as t: ...; t["seconds"]``
    (a job's build records how much of it was the converter's, whichever scheme called it)."""
    timer = {"seconds": 0.0, "conversions": 0}
    _timers.append(timer)
    try:
        yield timer
    finally:
        _timers.remove(timer)


def convert(model, recipe, representative=None):
    """Convert a Keras model to TFLite bytes following ``recipe``."""
    started = time.perf_counter()
    try:
        return _convert(model, recipe, representative)
    finally:
        for timer in _timers:
            timer["seconds"] += time.perf_counter() - started
            timer["conversions"] += 1


def _convert(model, recipe, representative=None):
    from optlib._quiet import native_stderr

    if _recurrent(model):
        converter = converter_for(model, recipe, representative, fixed_batch=True)
        with native_stderr():
            return converter.convert()
    converter = converter_for(model, recipe, representative)
    try:
        with native_stderr():
            return converter.convert()
    except Exception as problem:  # the converter raises its own error types
        if "TensorList" not in str(problem):
            raise
    # A recurrent layer over a batch of unknown size: trace it with a batch of one instead.
    converter = converter_for(model, recipe, representative, fixed_batch=True)
    with native_stderr():
        return converter.convert()
