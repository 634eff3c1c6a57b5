"""Selective int8: full-integer quantization with the worst layers kept in float."""

from optlib.engine import layers
from optlib.engine.convert import convert
from optlib.engine.schemes.base import Built
from optlib.engine.schemes.post_training import recipe_for

def build_int8_selective(job):
    rep = job.representative()
    recipe = recipe_for("int8", job.settings)
    job.progress(0.1, "ranking layers by quantization error")
    keep = [n.strip() for n in str(job.settings.get("keep_float") or "").split(",") if n.strip()]
    errors = {}
    if not keep:
        float32, int8 = convert(job.model, {}), convert(job.model, recipe, rep)
        keep, errors = layers.rank_worst(float32, int8, "int8", rep, int(job.settings["worst_n"]))
    job.progress(0.5, f"converting with {len(keep)} layer(s) in float")
    tflite, denylist = layers.selective_int8(job.model, rep, keep)
    return Built(tflite, {"converter": recipe, "selective": {
        "kept_float": keep, "denylisted_nodes": denylist, "channel_error": errors,
        "ranked_by": "median over channels of RMSE / RMS against float32"}}, job.model)
