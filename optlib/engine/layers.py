"""Layer measurement: every layer's output in a float32 and a quantized LiteRT model, compared.

:func:`compare_layers` runs a float32 TFLite model and one or more quantized
versions of it on the same inputs, with every intermediate tensor kept, and
compares each layer's output with the float one. The ranking metric is the
*channel error*: for each output channel, the RMSE of the quantized output
divided by the RMS of the float output, then the median over channels. A
few huge activations (which set the int8 scale of the whole tensor) cannot
hide the damage they do to every other channel, as they would in an error
relative to the tensor's scale. :func:`rank_worst` is the one ranking both
selective schemes use (on at most :data:`PROBE_SAMPLES` inputs).

:func:`debugger_metrics` gives TensorFlow Lite's own QuantizationDebugger
metrics for int8 (mean squared error, max absolute error, scale, RMSE/scale);
:func:`weight_values` reads the kernels as stored. The Layer insight report
(:mod:`optlib.analysis.insight`) reads what this module measures.
"""

import numpy as np

PROBE_SAMPLES = 64  # inputs the layers are compared on; a few dozen are plenty (fewer for large inputs)

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


def layer_name(name):
    """Tensor names match across float and quantized models, up to a suffix on the final output."""
    for suffix in ("_int16", "1"):
        if name.startswith("StatefulPartitionedCall") and name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def _feeds(it, x):
    """[(input detail, samples)]: one array for a one-input model, or {input name: array} matched to the
    model's inputs by its signature's names (in order where they differ)."""
    if not isinstance(x, dict):
        return [(it.get_input_details()[0], x)]
    from optlib.engine.outputs import _signature_details

    ins, _ = _signature_details(it, len(x), (list(x), []))
    return list(zip(ins, x.values()))


def _count(x):
    return len(next(iter(x.values()))) if isinstance(x, dict) else len(x)


def _head(x, count):
    return {name: values[:count] for name, values in x.items()} if isinstance(x, dict) else x[:count]


def layer_outputs(model, x):
    """Return {layer tensor name: (op name, float outputs for every input)} in graph order.

    ``x``: one array of samples, or {input name: array} for a model with several inputs."""
    from optlib.engine.measure import dequantize_output, quantize_input

    it = _interpreter(model)
    details = {d["index"]: d for d in it.get_tensor_details()}
    feeds = _feeds(it, x)
    ops = [op for op in it._get_ops_details() if op["op_name"] not in SKIPPED_OPS and op["outputs"]]
    collected = {}
    for index in range(_count(x)):
        for detail, samples in feeds:
            it.set_tensor(detail["index"], quantize_input(samples[index][None, ...], detail))
        it.invoke()
        for op in ops:
            detail = details[op["outputs"][0]]
            value = dequantize_output(it.get_tensor(detail["index"]), detail)
            if value.ndim == 0 or value.shape[0] != 1:  # not a per-sample activation (a shape, a scalar constant)
                continue
            collected.setdefault(layer_name(detail["name"]), (op["op_name"], []))[1].append(value)
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
    # The quantized models first: one that LiteRT's reference kernels refuse fails at once, before the float
    # model's pass (1.3 s for MobileNetV2's 8 probe inputs, which lq_int8_selective's ranking then threw away).
    others = {label: layer_outputs(model, x) for label, model in quantized.items()}
    reference = layer_outputs(float_model, x)
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


def consumers(model, names):
    """Return the output names of the ops that read any of the tensors ``names``.

    Keeping a layer in float is not enough when its *output* is what quantizes
    badly: the next layer would quantize it again. Selective quantization keeps
    the producer and these consumers in float.
    """
    it = _interpreter(model)
    details = {d["index"]: d for d in it.get_tensor_details()}
    by_name = {layer_name(d["name"]): i for i, d in details.items()}
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
    known = {layer_name(d["name"]): d["name"] for d in it.get_tensor_details()}
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


def probe_count(input_shape):
    """How many inputs to compare layers on: :data:`PROBE_SAMPLES`, or 8 for large inputs (every activation
    is kept in memory)."""
    size = 1
    for dim in input_shape:
        size *= int(dim)
    return PROBE_SAMPLES if size <= 64 * 64 * 3 else 8




def rank_worst(float32, quantized, label, representative, count):
    """The ``count`` layers of ``quantized`` (bytes or path) that lose most against ``float32``, ranked by
    channel error on the first :func:`probe_count` calibration inputs; returns (names, {name: error})."""
    first = next(iter(representative.values())) if isinstance(representative, dict) else representative
    probe = _head(representative, probe_count(first.shape[1:]))
    rows = compare_layers(float32, {label: quantized}, probe)
    keep = worst_layers(rows, label, count)
    return keep, {r["layer"]: r[f"{label}_error"] for r in rows if r["layer"] in keep}
