"""Per-layer insight: where quantization loses accuracy, and what int16 activations change.

The measuring is the engine's (:mod:`optlib.engine.layers`: every layer's output compared by channel
error, TensorFlow Lite's QuantizationDebugger metrics, the stored kernels). :func:`layer_report` puts it
together for one model and dataset: float32, int8 and int16x8 from the store (or made by a sweep),
compared layer by layer, with the debugger's metrics — what the Layer insight page and
``python -m optlib layers`` show.
"""

import logging
from pathlib import Path

from optlib.engine import schemes
from optlib.engine.layers import compare_layers, debugger_metrics, probe_count
from optlib.errors import InputError, first_line

log = logging.getLogger(__name__)


def int8_lost_nothing(runs):
    """True when the int8 run's metric is no worse than float32's (``runs``: {scheme: result row}, as
    :func:`layer_report` returns them): keeping layers in float has nothing to win back. False when either
    figure is missing (an untrained model): then nobody can tell."""
    from optlib.analysis import quality

    base, int8 = runs.get("float32") or {}, runs.get("int8") or {}
    lost = quality.loss(int8, base) if base and int8 else None
    return lost is not None and lost <= 0


# --- The whole report for one model and dataset ---------------------------------------------

LAYER_SCHEMES = tuple(s.name for s in schemes.list_schemes(variants=True) if s.layer_insight)


def layer_schemes(form):
    """{label: scheme} the layer comparison reads for a model of ``form``: the converter's int8 and int16x8, or
    LiteRT Quantizer's where the converter cannot take the model (a float .tflite)."""
    if form == "tflite":
        return {name: schemes.counterpart(name) or name for name in LAYER_SCHEMES}
    return {name: name for name in LAYER_SCHEMES}


def newest_runs(model_ref, data_ref, names, store=None):
    """The newest finished run of each scheme in ``names`` for this model and data, from the store.

    Any settings will do: a layer comparison or a weight view needs the
    artifact, not the timing settings it was measured with. Runs whose
    artifact is gone are passed over.

    Returns:
        {scheme: result row} for the schemes found.

    Raises:
        InputError: the model or the data reference cannot be resolved.
    """
    from optlib.engine import sweep
    from optlib.engine.store import Store, result_row

    inputs, _ = sweep.plan(model_ref, data_ref, "float32", trusted=True)  # fingerprints only: nothing loads here
    found = {}
    for name in names:
        for row in Store(store).rows(scheme=name, status="ok"):  # newest first
            if (row["model_fingerprint"], row["dataset_fingerprint"]) == (inputs.model.fingerprint,
                                                                          inputs.data.fingerprint) \
                    and row["tflite_path"] and Path(row["tflite_path"]).is_file():
                found[name] = result_row(row, cached=True)
                break
    return found


def layer_runs(model_ref, data_ref, store=None, trusted=False, progress=None):
    """The runs the layer comparison reads: float32, int8 and int16x8 from the store when they are there (any
    settings), else made now by an ordinary sweep (and stored). Returns {scheme: result row}.

    Args:
        progress: called with (fraction 0..0.7, message) while a sweep makes what is missing.
    """
    from optlib.engine import sweep
    from optlib.inputs import models

    progress = progress or (lambda fraction, message: None)
    chosen = layer_schemes(models.resolve(model_ref).form)  # label -> scheme
    found = newest_runs(model_ref, data_ref, tuple(chosen.values()), store)
    missing = [scheme for scheme in chosen.values() if scheme not in found]
    if missing:
        def forward(event):
            step = f"{event.scheme}: " if event.scheme else ""
            progress(0.7 * event.fraction, f"{step}{event.message or event.stage}")

        made = sweep.run(model_ref, data_ref, ",".join(missing), None, store, trusted=trusted, progress=forward)
        found.update({row["scheme"]: row for row in made["results"]})
    return {label: found[scheme] for label, scheme in chosen.items()}


def layer_report(model_ref, data_ref, store=None, trusted=False, progress=None, runs=None):
    """Compare every layer of int8 (and int16x8) with float32 on the same inputs; add the debugger's metrics.

    The runs compared are ``runs`` or :func:`layer_runs`'s. int16x8 may fail
    on some models (e.g. MobileNetV2): the comparison then covers int8 alone
    and says why.

    Args:
        progress: called with (fraction 0..1, message).

    Returns:
        dict: ``runs`` {scheme: result row}, ``layers`` (rows of
        :func:`compare_layers`), ``labels`` (the quantized
        models compared), ``int16_problem``, ``debugger`` (rows of
        :func:`debugger_metrics`), ``debugger_problem`` and
        ``samples`` (inputs compared on).

    Raises:
        InputError: the model or data cannot be used, or float32 or int8 cannot be made.
    """
    from optlib.inputs import opening

    progress = progress or (lambda fraction, message: None)
    runs = layer_runs(model_ref, data_ref, store, trusted, progress) if runs is None else runs
    for name in ("float32", "int8"):
        if runs[name]["status"] != "ok":
            raise InputError(f"{name} could not be made ({runs[name]['error'] or runs[name]['status']}); "
                             "the layer comparison needs it.")
    progress(0.72, "loading the model and sample inputs")
    _, model, dataset = opening.open_inputs(model_ref, data_ref, trusted)
    x = dataset.representative(probe_count(dataset.input_shape))
    quantized = {"int8": runs["int8"]["tflite_path"]}
    int16_problem = ""
    if runs["int16x8"]["status"] == "ok":
        quantized["int16x8"] = runs["int16x8"]["tflite_path"]
    else:
        int16_problem = f"int16x8 {runs['int16x8']['status']}: {runs['int16x8']['error'] or 'no reason recorded'}"
    progress(0.8, f"running float32 and {' and '.join(quantized)} layer by layer on {len(x)} inputs")
    try:
        layers = compare_layers(runs["float32"]["tflite_path"], quantized, x)
    except Exception as problem:
        if "int16x8" not in quantized:
            raise
        int16_problem = f"int16x8 could not run layer by layer: {type(problem).__name__}: {problem}"
        del quantized["int16x8"]
        layers = compare_layers(runs["float32"]["tflite_path"], quantized, x)
    progress(0.9, "running TensorFlow Lite's QuantizationDebugger on int8")
    debugger, debugger_problem = [], ""
    try:
        if getattr(model, "form", "keras") == "keras":
            debugger = debugger_metrics(model, x)
        else:  # the debugger converts a Keras model; the layer comparison stands without it
            debugger_problem = f"QuantizationDebugger did not run: it converts a Keras model, and this model is " \
                               f"{model.form}."
    except Exception as problem:  # shown on the page; the layer comparison stands without it
        log.exception("QuantizationDebugger failed")
        debugger_problem = f"{type(problem).__name__}: {first_line(problem)}"
    progress(1.0, "done")
    return {"runs": runs, "layers": layers, "labels": list(quantized), "int16_problem": int16_problem,
            "debugger": debugger, "debugger_problem": debugger_problem, "samples": len(x)}
