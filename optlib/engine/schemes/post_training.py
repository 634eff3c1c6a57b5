"""Post-training schemes: convert the model as it is, with different converter settings."""

from optlib.engine.convert import convert
from optlib.engine.schemes.base import Built

RECIPES = {
    "float32": {},
    "float16": {"optimizations": ["DEFAULT"], "supported_types": ["float16"]},
    "dynamic": {"optimizations": ["DEFAULT"]},
    "int8": {"optimizations": ["DEFAULT"], "supported_ops": ["TFLITE_BUILTINS_INT8"]},
    "int16x8": {"optimizations": ["DEFAULT"],
                "supported_ops": ["EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8"]},
}


def recipe_for(scheme, settings):
    """Return the converter recipe of a post-training scheme with its settings."""
    recipe = dict(RECIPES[scheme])
    if "rep_samples" in settings and scheme in ("int8", "int16x8"):
        recipe["representative_samples"] = int(settings["rep_samples"])
    if settings.get("int8_io"):
        recipe["inference_input_type"] = recipe["inference_output_type"] = "int8"
    return recipe


def _build(job):
    recipe = recipe_for(job.scheme, job.settings)
    job.progress(0.1, "converting")
    rep = job.representative() if recipe.get("representative_samples") else None
    return Built(convert(job.model, recipe, rep), {"converter": recipe}, job.model)


build_float32 = build_float16 = build_dynamic = build_int8 = build_int16x8 = _build
