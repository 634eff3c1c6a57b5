"""Selective int8: full-integer quantization with the worst layers kept in float."""

from optlib.analysis import insight
from optlib.engine.convert import convert
from optlib.engine.schemes.base import Built
from optlib.engine.schemes.post_training import recipe_for

PROBE_SAMPLES = 64  # inputs used to rank the layers; a few dozen are plenty


def build_int8_selective(job):
    rep = job.representative()
    recipe = recipe_for("int8", job.settings)
    job.progress(0.1, "ranking layers by quantization error")
    keep = [n.strip() for n in str(job.settings.get("keep_float") or "").split(",") if n.strip()]
    rows = []
    if not keep:
        float32, int8 = convert(job.model, {}), convert(job.model, recipe, rep)
        rows = insight.compare_layers(float32, {"int8": int8}, rep[:PROBE_SAMPLES])
        keep = insight.worst_layers(rows, "int8", int(job.settings["worst_n"]))
    job.progress(0.5, f"converting with {len(keep)} layer(s) in float")
    tflite, denylist = insight.selective_int8(job.model, rep, keep)
    errors = {r["layer"]: r["int8_error"] for r in rows if r["layer"] in keep}
    return Built(tflite, {"converter": recipe, "selective": {
        "kept_float": keep, "denylisted_nodes": denylist, "channel_error": errors,
        "ranked_by": "median over channels of RMSE / RMS against float32"}}, job.model)
