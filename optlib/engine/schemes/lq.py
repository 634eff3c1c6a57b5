"""LiteRT Quantizer schemes: their one builder (their entries are in the registry, ``LQ_SCHEMES``).

Each scheme quantizes the sweep's one float32 conversion (made once per
worker and shared with the float32 baseline, see
:meth:`optlib.engine.job.Context.float32`) with the LiteRT Quantizer recipe
its entry names (``recipe={"base": ...}``, a name of
:data:`optlib.engine.lq_backend.BASES`); static recipes calibrate on the same
representative sample as the converter's int8. A ``block_size`` setting makes
the recipe blockwise; a ``keep_as`` setting keeps the worst (or named) layers
at higher precision. Every entry is a variant of the converter scheme it
stands beside (``variant_of``), so ``all`` and the families leave them out and
the default sweep keeps its time: name them, or select them all with
``litert-quantizer``.
"""

from optlib.engine import schemes
from optlib.engine.schemes.base import Built

BACKEND = "litert-quantizer"


def recipe_spec(scheme, settings):
    """This project's recipe of an lq scheme (plain data): its entry's named LiteRT Quantizer recipe and its edits."""
    spec = dict(schemes.get(scheme).recipe or {})
    if "base" not in spec:
        raise ValueError(f"'{scheme}' names no LiteRT Quantizer recipe (its entry needs recipe={{'base': ...}})")
    if settings.get("block_size"):
        spec["block_size"] = int(settings["block_size"])
    return spec


def keep_names(settings):
    return [n.strip() for n in str(settings.get("keep_layers") or "").split(",") if n.strip()]


def build(job):
    """Quantize the shared float32 conversion with the scheme's LiteRT Quantizer recipe."""
    from optlib.engine import lq_backend

    job.progress(0.05, "converting to float32 (once per sweep)")
    float32, made = job.float32_model()
    spec = recipe_spec(job.scheme, job.settings)
    if spec.get("block_size"):
        spec["channelwise"] = lq_backend.blockwise_misfits(float32, spec["block_size"])
    rep = job.representative() if "rep_samples" in job.settings else None
    extra = {"backend": BACKEND, "float32_convert_s": made["convert_s"], "float32_reused": made["reused"]}
    recorded = {}
    if "keep_as" in job.settings:  # mixed precision
        keep, errors = keep_names(job.settings), {}
        if not keep:
            keep, errors = _worst_layers(job, float32, rep)
        spec["keep"] = {"names": keep, "as": job.settings["keep_as"]}
        recorded = {"selective": {"kept": keep, "kept_as": job.settings["keep_as"], "channel_error": errors,
                                  "ranked_by": "median over channels of RMSE / RMS against float32"}}
    job.progress(0.3, "quantizing with LiteRT Quantizer")
    entries = lq_backend.quantizer_recipe(spec)
    tflite, timings = lq_backend.quantize(float32, entries, rep, job.calibrations)
    signature, input_name = lq_backend.signature_of(float32)
    extra.update(timings)
    return Built(tflite, {"converter": {}, "litert_quantizer": {
        **spec, "recipe": entries, "calibration_samples": timings["calibration_samples"],
        "signature": signature, "input": input_name}, **recorded}, job.model, extra)


def _worst_layers(job, float32, rep):
    """Rank layers of plain LiteRT Quantizer int8 by channel error; return (worst names, their errors)."""
    from optlib.engine import layers, lq_backend
    from optlib.errors import first_line

    job.progress(0.1, "ranking layers by quantization error")
    int8, _ = lq_backend.quantize(float32, lq_backend.quantizer_recipe({"base": "static_wi8_ai8"}), rep,
                                  job.calibrations)
    try:
        return layers.rank_worst(float32, int8, "lq_int8", rep, int(job.settings["worst_n"]))
    except RuntimeError as problem:  # the layer-by-layer run uses LiteRT's reference kernels, which check more
        raise RuntimeError(f"the layers could not be ranked: LiteRT's reference kernels refused LiteRT Quantizer's "
                           f"int8 model ({first_line(problem)}); name the layers to keep with keep_layers") from None
