"""LiteRT Quantizer's own per-tensor validation, beside this project's channel error.

:func:`tensor_report` takes a stored quantized run (from either backend) and
its float32 run of the same model and data, feeds both the same few inputs,
and returns one row per tensor with the quantizer's MSE, SNR and cosine
similarity against float (``litert_quantizer``'s ``model_validator``) and the
channel error of :func:`optlib.engine.layers.compare_layers` where the
tensor is a layer's output.
"""

from optlib.errors import InputError

VALIDATION_SAMPLES = 8  # each input sets up both interpreters again: a few are enough for a sanity check


def candidates():
    """Scheme names whose stored runs can be validated: the converter's quantized ones (all but the plain
    conversion, whose recipe is empty), calibrated ones first (int8 leads: the page's default), then every
    lq_ scheme."""
    from optlib.engine import schemes

    converter = [s for s in schemes.list_schemes(backend="converter", variants=True) if s.recipe != {}]
    converter.sort(key=lambda s: s.needs != "representative")
    return tuple(s.name for s in converter + schemes.list_schemes(backend="litert-quantizer", variants=True))


def tensor_report(model_ref, data_ref, scheme, store=None, trusted=False, runs=None):
    """Validate the newest stored run of ``scheme`` against the newest float32 run, tensor by tensor.

    ``runs`` ({"float32": row, scheme: row}, from :func:`optlib.analysis.insight.newest_runs`) spares reading
    the store: a sandboxed child is given the runs and reads only their files.

    Returns:
        dict: ``run`` and ``float32`` (result rows), ``samples``, ``backend``, ``channel_problem`` (why
        there is no channel error, or "") and ``rows``: dicts of tensor, kind, mse, snr, snr_db,
        cosine_similarity, channel_error (None for tensors that are not a layer's output).

    Raises:
        InputError: no stored ok run of float32 or of ``scheme`` for this model and data, or the models
            cannot be compared.
    """
    from optlib.analysis import insight
    from optlib.engine import layers, lq_backend, schemes
    from optlib.inputs import opening

    runs = insight.newest_runs(model_ref, data_ref, ("float32", scheme), store) if runs is None else runs
    for name in ("float32", scheme):
        if name not in runs:
            raise InputError(f"No stored {name} run of this model and data: run {name} first (Optimize page, or "
                             f"python -m optlib sweep --schemes {name}).")
    x = opening.open_inputs(model_ref, data_ref, trusted)[2].representative(VALIDATION_SAMPLES)
    float32, quantized = runs["float32"]["tflite_path"], runs[scheme]["tflite_path"]
    try:
        rows = lq_backend.validate(float32, quantized, x)
    except (ValueError, RuntimeError) as problem:
        raise InputError(f"LiteRT Quantizer could not compare {scheme} with float32: {problem}") from None
    try:
        compared, channel_problem = layers.compare_layers(float32, {"q": quantized}, x), ""
    except RuntimeError as problem:  # reference kernels (kept intermediates) may refuse what XNNPACK runs
        compared, channel_problem = [], f"no channel error: LiteRT's reference kernels refused the model ({problem})"
    errors = {row["layer"]: row["q_error"] for row in compared}
    for row in rows:
        row["channel_error"] = errors.get(layers.layer_name(row["tensor"]))
    entry = schemes.find(scheme)
    return {"run": runs[scheme], "float32": runs["float32"], "samples": len(x), "rows": rows,
            "backend": (entry.backend if entry else "") or "converter", "channel_problem": channel_problem}
