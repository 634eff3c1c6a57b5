"""Post-training schemes: convert the model as it is, with the converter settings of the scheme's entry.

One builder, :func:`build`, serves every converter scheme: what it converts with is the entry's ``recipe``.
"""

from optlib.engine import schemes
from optlib.engine.convert import convert
from optlib.engine.schemes.base import Built


def recipe_for(scheme, settings):
    """Return the converter recipe of a post-training scheme (its registry entry's) with its settings."""
    entry = schemes.get(scheme)
    if entry.recipe is None:
        raise ValueError(f"'{scheme}' is not a post-training scheme with a converter recipe")
    recipe = dict(entry.recipe)
    if "rep_samples" in settings and entry.needs == "representative":
        recipe["representative_samples"] = int(settings["rep_samples"])
    if settings.get("int8_io"):
        recipe["inference_input_type"] = recipe["inference_output_type"] = "int8"
    return recipe


def build(job):
    """Convert the model with the scheme's recipe (calibrated on the representative sample if it needs one)."""
    recipe = recipe_for(job.scheme, job.settings)
    job.progress(0.1, "converting")
    if not recipe:  # the plain float32 conversion: the one the LiteRT Quantizer schemes share
        tflite, made = job.float32_model()
        return Built(tflite, {"converter": recipe}, job.model, {
            "backend": "converter", "float32_convert_s": made["convert_s"], "float32_reused": made["reused"]})
    rep = job.representative() if recipe.get("representative_samples") else None
    return Built(convert(job.model, recipe, rep), {"converter": recipe}, job.model, {"backend": "converter"})


def build_as_given(job):
    """A quantized ``.tflite`` model as it is (:mod:`optlib.inputs.graph_models`): nothing is converted."""
    return Built(job.model.tflite, {"converter": None, "given": job.model.name}, job.model, {"backend": "given"})
