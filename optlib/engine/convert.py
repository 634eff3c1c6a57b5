"""TFLiteConverter settings as declarative recipes.

A recipe is a plain dict, stored with every result and used to generate the
code that reproduces it::

    {"optimizations": ["DEFAULT"], "supported_ops": ["TFLITE_BUILTINS_INT8"],
     "inference_input_type": "int8", "inference_output_type": "int8",
     "representative_samples": 200}
"""

from optlib.errors import InputError


def converter_for(model, recipe, representative=None):
    """Return a TFLiteConverter for a Keras model, set up following ``recipe`` (not yet run).

    Args:
        model: a Keras (tf_keras) model.
        recipe: converter settings, see the module docstring.
        representative: float32 array of calibration inputs, if the recipe needs them.
    """
    from optlib._keras import tf

    lite = tf().lite
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


def convert(model, recipe, representative=None):
    """Convert a Keras model to TFLite bytes following ``recipe``."""
    from optlib._quiet import native_stderr

    converter = converter_for(model, recipe, representative)
    with native_stderr():
        return converter.convert()
