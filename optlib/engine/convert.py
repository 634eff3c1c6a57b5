"""TFLiteConverter settings as declarative recipes.

A recipe is a plain dict, stored with every result and used to generate the
code that reproduces it::

    {"optimizations": ["DEFAULT"], "supported_ops": ["TFLITE_BUILTINS_INT8"],
     "inference_input_type": "int8", "inference_output_type": "int8",
     "representative_samples": 200}
"""

import contextlib
import time
import weakref

from optlib.errors import InputError

_timers = []  # the open timed() blocks of this process (a job's build): each adds the converter's seconds


def _traced_converter(model, batch, holder, **call):
    """A converter for the model's call traced with inputs of ``batch`` (None: any), signature
    ``serving_default``, inputs and outputs named as the model's; ``holder`` keeps the variables it reads.

    The traced function is kept (:class:`_Traced`) and the next conversion of the same model and weights
    starts from it: the converter then skips its own SavedModel round trip, which was most of its time.
    """
    from optlib._keras import tf

    digest = _weights_digest(model)
    traced = _kept(model, batch, digest)
    if traced is None:
        concrete = _trace(model, batch, call)
        try:
            traced = _Traced(concrete, holder, digest)
        except Exception:  # noqa: BLE001 — the converter's own round trip tries, and falls back, as it always did
            return tf().lite.TFLiteConverter.from_concrete_functions([concrete], holder)
        _keep(model, batch, traced)
    return traced.converter()


def _trace(model, batch, call):
    from optlib._keras import tf

    specs = [tf().TensorSpec([batch, *tensor.shape[1:]], tensor.dtype, name=name)
             for name, tensor in zip(model.input_names, model.inputs)]

    def run(*xs):
        found = model(list(xs) if len(xs) > 1 else xs[0], **call)
        found = found if isinstance(found, (list, tuple)) else [found]
        return dict(zip(model.output_names, found))  # the signature keeps the Keras output names

    return tf().function(run).get_concrete_function(*specs)


_TRACED = weakref.WeakKeyDictionary()  # model -> {batch: _Traced}, for the model converted last only


def _kept(model, batch, digest):
    """The model's :class:`_Traced` for ``batch`` kept from an earlier conversion of the same weights, or None."""
    try:
        kept = _TRACED.get(model, {}).get(batch)
    except TypeError:  # not weak-referenceable: nothing is kept for it
        return None
    return kept if kept is not None and kept.digest == digest else None


def _keep(model, batch, traced):
    try:
        if model not in _TRACED:
            _TRACED.clear()  # one model's at a time: a worker converts one model's schemes in a row
        _TRACED.setdefault(model, {})[batch] = traced
    except TypeError:  # not weak-referenceable
        pass


def _weights_digest(model):
    import hashlib

    from optlib.engine.float32_cache import digest_arrays

    return digest_arrays(hashlib.sha256(), [variable.numpy() for variable in model.variables]).hexdigest()


class _Traced:
    """A model's inference function, traced once, written once as the SavedModel that
    ``TFLiteConverter.from_concrete_functions`` writes (and reads back) at every conversion, and read back once.

    Each :meth:`converter` is TensorFlow's own, from the function read back; only its first step, writing and
    reading that SavedModel, is replaced by this one. The ``.tflite`` bytes are the same (``test_convert``
    compares them with the converter's own, recipe by recipe). The function is written without gradient
    functions, which a conversion never reads. What is kept holds a copy of the weights, not the model.
    """

    def __init__(self, concrete, holder, digest):
        import tempfile

        from optlib._keras import tf

        self.digest = digest
        self.folder = tempfile.TemporaryDirectory(prefix="optlib-traced-")
        tf().saved_model.save(holder, self.folder.name, signatures={SERVING: concrete},
                              options=tf().saved_model.SaveOptions(save_debug_info=True,
                                                                   experimental_custom_gradients=False))
        self.loaded = tf().saved_model.load(self.folder.name)

    def converter(self):
        from optlib._keras import tf

        converter = tf().lite.TFLiteConverter.from_concrete_functions([self.loaded.signatures[SERVING]],
                                                                      self.loaded)

        def saved_model(output_dir):  # what TFLiteConverterV2._convert_concrete_functions_to_saved_model does
            converter.saved_model_dir = self.folder.name
            converter._saved_model_tags = {"serve"}
            converter._saved_model_exported_names = [SERVING]
            converter._parse_saved_model_args(always_enable_saved_model_import=True)
            found = converter._load_saved_model(converter.saved_model_dir, converter._saved_model_tags)
            converter._trackable_obj = self.loaded  # read for its debug information only
            return found

        converter._convert_concrete_functions_to_saved_model = saved_model
        return converter


SERVING = "serving_default"


def _fixed_batch_converter(model):
    """A converter for the model traced with a batch of one (recurrent layers need static shapes)."""
    return _traced_converter(model, 1, _variables_of(model))


def _keras_function_converter(model):
    """A converter for a Keras model's inference function (``training=False``), its signature as
    ``from_keras_model`` makes it: ``serving_default``, inputs and outputs named as the model's.

    The same graph and the same ``.tflite`` (its ops, tensor names and signature) as ``from_keras_model``,
    which first writes the whole Keras model as a SavedModel, every layer's traced functions included, and
    reads it back: for a model wrapped by the Model Optimization Toolkit, most of its conversion time. Here
    only this one function and the variables it reads are written.
    """
    if not getattr(model, "inputs", None) or not getattr(model, "output_names", None):
        raise ValueError("not a functional model: its inputs are not known before it is called")
    return _traced_converter(model, None, _variables_of(model), training=False)


def _variables_of(model):
    """What a traced function of the model reads, and nothing of Keras (whose own SavedModel would trace
    every layer again)."""
    from optlib._keras import tf

    holder = tf().Module()
    holder.variables_of_the_model = list(model.variables)
    return holder


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
