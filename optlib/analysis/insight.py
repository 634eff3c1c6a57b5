"""Per-layer insight: where quantization loses accuracy, and what int16 activations change.

:func:`compare_layers` runs a float32 TFLite model and one or more quantized
versions of it on the same inputs, with every intermediate tensor kept, and
compares each layer's output with the float one. The ranking metric is the
*channel error*: for each output channel, the RMSE of the quantized output
divided by the RMS of the float output, then the median over channels. A
few huge activations (which set the int8 scale of the whole tensor) cannot
hide the damage they do to every other channel, as they would in an error
relative to the tensor's scale.

:func:`debugger_metrics` gives TensorFlow Lite's own QuantizationDebugger
metrics for int8 (mean squared error, max absolute error, scale, RMSE/scale).

:func:`layer_report` puts it together for one model and dataset: float32,
int8 and int16x8 from the store (or made by a sweep), compared layer by layer,
with the debugger's metrics — what the Layer insight page and
``python -m optlib layers`` show.
"""

import logging
from pathlib import Path

import numpy as np

from optlib.errors import InputError, first_line

log = logging.getLogger(__name__)

SKIPPED_OPS = {"QUANTIZE", "DEQUANTIZE", "DELEGATE"}


def _interpreter(model):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from optlib._quiet import native_stderr

    kwargs = {"model_content": bytes(model)} if isinstance(model, (bytes, bytearray)) else {"model_path": str(model)}
    with native_stderr():  # no delegates: XNNPACK would own (and hide) the intermediate tensors
        it = Interpreter(**kwargs, experimental_preserve_all_tensors=True,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        it.allocate_tensors()
    return it


def _layer_name(name):
    """Tensor names match across float and quantized models, up to a suffix on the final output."""
    for suffix in ("_int16", "1"):
        if name.startswith("StatefulPartitionedCall") and name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def layer_outputs(model, x):
    """Return {layer tensor name: (op name, float outputs for every input)} in graph order."""
    from optlib.engine.measure import dequantize_output, quantize_input

    it = _interpreter(model)
    details = {d["index"]: d for d in it.get_tensor_details()}
    inp = it.get_input_details()[0]
    ops = [op for op in it._get_ops_details() if op["op_name"] not in SKIPPED_OPS and op["outputs"]]
    collected = {}
    for sample in x:
        it.set_tensor(inp["index"], quantize_input(sample[None, ...], inp))
        it.invoke()
        for op in ops:
            detail = details[op["outputs"][0]]
            value = dequantize_output(it.get_tensor(detail["index"]), detail)
            collected.setdefault(_layer_name(detail["name"]), (op["op_name"], []))[1].append(value)
    return {name: (op, np.concatenate(values)) for name, (op, values) in collected.items()}


def channel_error(reference, other):
    """Median over output channels of RMSE(other - reference) / RMS(reference)."""
    ref = reference.reshape(-1, reference.shape[-1]) if reference.ndim > 1 else reference.reshape(-1, 1)
    oth = other.reshape(ref.shape)
    rms = np.sqrt(np.mean(ref ** 2, axis=0))
    err = np.sqrt(np.mean((oth - ref) ** 2, axis=0))
    alive = rms > 0
    return float(np.median(err[alive] / rms[alive])) if alive.any() else float("nan")


def compare_layers(float_model, quantized, x):
    """Compare each layer of quantized models with the float model on the same inputs.

    Args:
        float_model: path or bytes of the float32 TFLite model.
        quantized: {label: path or bytes}, e.g. {"int8": ..., "int16x8": ...}.
        x: float32 inputs (a few dozen are plenty).

    Returns:
        list of dicts in graph order: position, layer (tensor name), op, and for
        each label ``<label>_error`` (channel error), ``<label>_rmse`` and
        ``<label>_max_abs`` (absolute errors); None where that model has no such layer.
    """
    reference = layer_outputs(float_model, x)
    others = {label: layer_outputs(model, x) for label, model in quantized.items()}
    rows = []
    for position, (name, (op, ref)) in enumerate(reference.items()):
        row = {"position": position, "layer": name, "op": op}
        for label, outputs in others.items():
            if name in outputs and outputs[name][1].size == ref.size:
                value = outputs[name][1].reshape(ref.shape)
                row[f"{label}_error"] = channel_error(ref, value)
                row[f"{label}_rmse"] = float(np.sqrt(np.mean((value - ref) ** 2)))
                row[f"{label}_max_abs"] = float(np.max(np.abs(value - ref)))
            else:
                row[f"{label}_error"] = row[f"{label}_rmse"] = row[f"{label}_max_abs"] = None
        rows.append(row)
    return rows


def worst_layers(rows, label="int8", count=1):
    """Return the names of the ``count`` layers with the largest channel error, worst first."""
    scored = [r for r in rows if r.get(f"{label}_error") is not None and np.isfinite(r[f"{label}_error"])]
    return [r["layer"] for r in sorted(scored, key=lambda r: -r[f"{label}_error"])[:count]]


def int8_lost_nothing(runs):
    """True when the int8 run's metric is no worse than float32's (``runs``: {scheme: result row}, as
    :func:`layer_report` returns them): keeping layers in float has nothing to win back. False when either
    figure is missing (an untrained model): then nobody can tell."""
    from optlib.analysis import quality

    base, int8 = runs.get("float32") or {}, runs.get("int8") or {}
    lost = quality.loss(int8, base) if base and int8 else None
    return lost is not None and lost <= 0


def consumers(model, names):
    """Return the output names of the ops that read any of the tensors ``names``.

    Keeping a layer in float is not enough when its *output* is what quantizes
    badly: the next layer would quantize it again. Selective quantization keeps
    the producer and these consumers in float.
    """
    it = _interpreter(model)
    details = {d["index"]: d for d in it.get_tensor_details()}
    by_name = {_layer_name(d["name"]): i for i, d in details.items()}
    wanted = {by_name[n] for n in names if n in by_name}
    found = []
    for op in it._get_ops_details():
        if op["op_name"] in SKIPPED_OPS or not op["outputs"]:
            continue
        if wanted & set(op["inputs"]):
            found.append(details[op["outputs"][0]]["name"])
    return found


def debugger_metrics(keras_model, representative):
    """TensorFlow Lite's QuantizationDebugger per-layer metrics for full-integer int8.

    Returns:
        list of dicts: op_name, tensor_name, num_elements, stddev, mean_error,
        max_abs_error, mean_squared_error, scale, zero_point, rmse/scale.
    """
    import csv
    import io

    from optlib._keras import tf
    from optlib._quiet import native_stderr
    from optlib.engine.convert import converter_for, representative_dataset
    from optlib.engine.schemes.post_training import recipe_for

    recipe = recipe_for("int8", {"rep_samples": len(representative)})
    converter = converter_for(keras_model, recipe, representative)
    with native_stderr():
        debugger = tf().lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=representative_dataset(representative))
        debugger.run()
    buffer = io.StringIO()
    debugger.layer_statistics_dump(buffer)
    rows = []
    for row in csv.DictReader(io.StringIO(buffer.getvalue())):
        record = {k: (float(v) if k not in ("op_name", "tensor_name") else v) for k, v in row.items() if k}
        scale = record.get("scale") or 0.0
        record["rmse/scale"] = float(np.sqrt(record["mean_squared_error"]) / scale) if scale else None
        rows.append(record)
    return rows


def selective_int8(keras_model, representative, keep_float):
    """Return (TFLite bytes, denylisted nodes): int8 with ``keep_float`` layers and their consumers in float."""
    from optlib._keras import tf
    from optlib._quiet import native_stderr
    from optlib.engine.convert import converter_for, convert, representative_dataset
    from optlib.engine.schemes.post_training import recipe_for

    recipe = recipe_for("int8", {"rep_samples": len(representative)})
    int8 = convert(keras_model, recipe, representative)
    denylist = list(dict.fromkeys([*_original_names(int8, keep_float), *consumers(int8, keep_float)]))
    lite = tf().lite.experimental
    with native_stderr():
        debugger = lite.QuantizationDebugger(
            converter=converter_for(keras_model, recipe, representative),
            debug_dataset=representative_dataset(representative),
            debug_options=lite.QuantizationDebugOptions(denylisted_nodes=denylist))
        return debugger.get_nondebug_quantized_model(), denylist


def _original_names(model, names):
    it = _interpreter(model)
    known = {_layer_name(d["name"]): d["name"] for d in it.get_tensor_details()}
    return [known.get(n, n) for n in names]


def weight_values(model):
    """Return [(kernel name, op, float values)] of the conv/dense kernels, dequantized."""
    from optlib.engine.measure import WEIGHT_OPS

    it = _interpreter(model)
    details = {d["index"]: d for d in it.get_tensor_details()}
    ops = it._get_ops_details()
    produced_by = {o: op for op in ops for o in op["outputs"]}
    kernels = []
    for op in ops:
        if op["op_name"] not in WEIGHT_OPS or len(op["inputs"]) < 2:
            continue
        index = op["inputs"][1]
        if index in produced_by and produced_by[index]["op_name"] == "DEQUANTIZE":
            index = produced_by[index]["inputs"][0]
        try:
            values = it.get_tensor(index)
        except ValueError:
            continue
        detail = details[index]
        params = detail.get("quantization_parameters") or {}
        scales = np.asarray(params.get("scales", ()), np.float32)
        if np.issubdtype(values.dtype, np.integer) and scales.size:
            axis = int(params.get("quantized_dimension", 0))
            shape = [1] * values.ndim
            shape[axis] = -1
            zeros = np.asarray(params.get("zero_points", np.zeros_like(scales)), np.float32)
            values = (values.astype(np.float32) - zeros.reshape(shape if zeros.size > 1 else [1])) * \
                scales.reshape(shape if scales.size > 1 else [1])
        kernels.append((detail["name"], op["op_name"], values.astype(np.float32)))
    return kernels


# --- The whole report for one model and dataset ---------------------------------------------

LAYER_SCHEMES = ("float32", "int8", "int16x8")


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


def probe_count(input_shape):
    """How many inputs to compare layers on: 64, or 8 for large inputs (every activation is kept in memory)."""
    size = 1
    for dim in input_shape:
        size *= int(dim)
    return 64 if size <= 64 * 64 * 3 else 8


def layer_runs(model_ref, data_ref, store=None, trusted=False, progress=None):
    """The runs the layer comparison reads: float32, int8 and int16x8 from the store when they are there (any
    settings), else made now by an ordinary sweep (and stored). Returns {scheme: result row}.

    Args:
        progress: called with (fraction 0..0.7, message) while a sweep makes what is missing.
    """
    from optlib.engine import sweep

    progress = progress or (lambda fraction, message: None)
    runs = newest_runs(model_ref, data_ref, LAYER_SCHEMES, store)
    missing = [name for name in LAYER_SCHEMES if name not in runs]
    if missing:
        def forward(event):
            step = f"{event.scheme}: " if event.scheme else ""
            progress(0.7 * event.fraction, f"{step}{event.message or event.stage}")

        made = sweep.run(model_ref, data_ref, ",".join(missing), None, store, trusted=trusted, progress=forward)
        runs.update({row["scheme"]: row for row in made["results"]})
    return runs


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
    from optlib.inputs import data, models

    progress = progress or (lambda fraction, message: None)
    runs = layer_runs(model_ref, data_ref, store, trusted, progress) if runs is None else runs
    for name in ("float32", "int8"):
        if runs[name]["status"] != "ok":
            raise InputError(f"{name} could not be made ({runs[name]['error'] or runs[name]['status']}); "
                             "the layer comparison needs it.")
    progress(0.72, "loading the model and sample inputs")
    source = models.resolve(model_ref)
    model = models.load(source, trusted)
    scale = models.ZOO[source.ref].scale if source.kind == "zoo" else "0..1"
    dataset = data.load(data.resolve(data_ref), model, scale)
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
        debugger = debugger_metrics(model, x)
    except Exception as problem:  # shown on the page; the layer comparison stands without it
        log.exception("QuantizationDebugger failed")
        debugger_problem = f"{type(problem).__name__}: {first_line(problem)}"
    progress(1.0, "done")
    return {"runs": runs, "layers": layers, "labels": list(quantized), "int16_problem": int16_problem,
            "debugger": debugger, "debugger_problem": debugger_problem, "samples": len(x)}
