"""LiteRT Quantizer schemes: their registry entries and their builder.

Each scheme quantizes the sweep's one float32 conversion (made once per
worker and shared with the float32 baseline, see
:meth:`optlib.engine.job.Context.float32`) with a LiteRT Quantizer recipe;
static recipes calibrate on the same representative sample as the converter's
int8. Every entry is a variant of the converter scheme it stands beside
(``variant_of``), so ``all`` and the families leave them out and the default
sweep keeps its time: name them, or select them all with ``litert-quantizer``.
"""

from optlib.engine.schemes import REPRESENTATIVE_PARAMS, Param, Scheme
from optlib.engine.schemes.base import Built

BACKEND = "litert-quantizer"
BUILDER = "optlib.engine.schemes.lq:build"

BLOCK_SIZE = Param("block_size", 32, "weights in each block that shares one int4 scale (smaller: more accurate, "
                   "larger file)", (32, 64, 128, 256), label="int4 block size", group="LiteRT Quantizer")
MIXED_PARAMS = (
    Param("worst_n", 1, "keep this many of the worst layers (ranked by channel error) at higher precision",
          min=1, max=1_000, label="Worst layers kept", group="LiteRT Quantizer"),
    Param("keep_layers", "", "comma-separated layer (tensor) names to keep; overrides worst_n",
          label="Layers kept", group="LiteRT Quantizer"),
    Param("keep_as", "int16", "what the kept layers become: int16 activations (int8 weights) or float",
          ("int16", "float"), label="Kept layers run as", group="LiteRT Quantizer"),
)

# name: (LiteRT Quantizer recipe, converter scheme it stands beside, title, summary, tradeoff, colour, extra)
_TABLE = {
    "lq_int8": ("static_wi8_ai8", "int8", "LiteRT Quantizer int8",
                ("int8 weights and activations by LiteRT Quantizer on the float32 file, calibrated on the same "
                "sample as the converter's int8."),
                ("The converter's int8 through the supported path: the float32 conversion is made once and "
                "quantized in seconds."), "#238b45", ()),
    "lq_int16x8": ("static_wi8_ai16", "int16x8", "LiteRT Quantizer int16x8",
                   "int8 weights with int16 activations by LiteRT Quantizer, calibrated.",
                   "Accuracy close to float at about int8's size; slow reference kernels, as with the converter.",
                   "#dbdb8d", ()),
    "lq_dynamic_int8": ("dynamic_wi8_afp32", "dynamic", "LiteRT Quantizer dynamic int8",
                        "int8 weights, activations quantized on the fly, by LiteRT Quantizer.",
                        "The converter's dynamic range without a second conversion.", "#9edae5", ()),
    "lq_weight_int8": ("weight_only_wi8_afp32", "dynamic", "LiteRT Quantizer weight-only int8",
                       "int8 weights turned back into float before each op: float accuracy and speed, 4x smaller.",
                       "Up to 75% smaller with the accuracy of float; the latency of float.", "#6baed6", ()),
    "lq_weight_int4": ("weight_only_wi4_afp32", "dynamic", "LiteRT Quantizer weight-only int4",
                       "int4 weights turned back into float before each op: up to 8x smaller than float32.",
                       "The smallest download here (past int8's 4x); a larger accuracy loss than int8 weights.",
                       "#08519c", ()),
    "lq_dynamic_int4": ("dynamic_wi4_afp32", "dynamic", "LiteRT Quantizer dynamic int4",
                        "int4 weights with activations quantized on the fly.",
                        "About weight-only int4's size; integer compute where the kernels support int4.",
                        "#3182bd", ()),
    "lq_blockwise_int4": ("dynamic_wi4_afp32", "dynamic", "LiteRT Quantizer blockwise int4",
                          ("int4 weights with one scale per block of weights (block size is a setting): more "
                          "accurate than one scale per channel."),
                          ("A little larger than channelwise int4, with less accuracy loss; kernels for it are "
                          "fewer."), "#756bb1", (BLOCK_SIZE,)),
    "lq_int8_selective": ("static_wi8_ai8", "int8", "LiteRT Quantizer mixed precision",
                          ("LiteRT Quantizer int8 with the worst layers (or named ones) kept at int16 activations "
                          "or in float, by recipe."),
                          ("Nearly int8's size with the accuracy of the kept layers restored; those layers run "
                          "slower."), "#74c476", MIXED_PARAMS),
}

ENTRIES = tuple(
    Scheme(name, "post-training", title, summary, "representative" if base.startswith("static") else "nothing",
           BUILDER, (REPRESENTATIVE_PARAMS if base.startswith("static") else ()) + extra,
           variant_of=core, color=color, tradeoff=tradeoff, backend=BACKEND)
    for name, (base, core, title, summary, tradeoff, color, extra) in _TABLE.items()
)


def recipe_spec(scheme, settings):
    """This project's recipe of an lq scheme (plain data): the named LiteRT Quantizer recipe and its edits."""
    base = _TABLE[scheme][0]
    spec = {"base": base}
    if scheme == "lq_blockwise_int4":
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
    rep = job.representative() if "rep_samples" in job.settings else None
    extra = {"backend": BACKEND, "float32_convert_s": made["convert_s"], "float32_reused": made["reused"]}
    recorded = {}
    if job.scheme == "lq_int8_selective":
        keep, errors = keep_names(job.settings), {}
        if not keep:
            keep, errors = _worst_layers(job, float32, rep)
        spec["keep"] = {"names": keep, "as": job.settings["keep_as"]}
        recorded = {"selective": {"kept": keep, "kept_as": job.settings["keep_as"], "channel_error": errors,
                                  "ranked_by": "median over channels of RMSE / RMS against float32"}}
    job.progress(0.3, "quantizing with LiteRT Quantizer")
    entries = lq_backend.quantizer_recipe(spec)
    tflite, timings = lq_backend.quantize(float32, entries, rep)
    signature, input_name = lq_backend.signature_of(float32)
    extra.update(timings)
    return Built(tflite, {"converter": {}, "litert_quantizer": {
        **spec, "recipe": entries, "calibration_samples": timings["calibration_samples"],
        "signature": signature, "input": input_name}, **recorded}, job.model, extra)


PROBE_SAMPLES = 64  # inputs used to rank the layers; a few dozen are plenty


def _worst_layers(job, float32, rep):
    """Rank layers of plain LiteRT Quantizer int8 by channel error; return (worst names, their errors)."""
    from optlib.analysis import insight
    from optlib.engine import lq_backend

    job.progress(0.1, "ranking layers by quantization error")
    int8, _ = lq_backend.quantize(float32, lq_backend.quantizer_recipe({"base": "static_wi8_ai8"}), rep)
    rows = insight.compare_layers(float32, {"lq_int8": int8}, rep[:PROBE_SAMPLES])
    keep = insight.worst_layers(rows, "lq_int8", int(job.settings["worst_n"]))
    return keep, {r["layer"]: r["lq_int8_error"] for r in rows if r["layer"] in keep}
