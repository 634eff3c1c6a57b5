"""Where a ``.tflite`` runs: CPU memory, the GPU delegate, integer-only accelerators, microcontrollers.

    found = check(tflite_bytes, x_test, y_test, litert_scores)
    found["micro"]["arena_bytes"]      # measured by TensorFlow Lite for Microcontrollers

Each target is one entry with ``runs`` (True, False, or None when the check
itself could not be made), ``reason`` (why not, in words) and the figures
behind it. A check that fails is recorded in its own entry and never raised:
a model's targets never fail its job.

- **cpu**: the bytes of every tensor the LiteRT interpreter allocates at batch 1
  that is not a constant: an upper bound of its arena (LiteRT's Python API
  exposes no arena figure; its planner shares memory between tensors).
- **gpu**: the model's ops against the GPU delegate's published op list. LiteRT's
  model analyzer (``gpu_compatibility=True``) no longer checks anything: it
  answers "compatible" for any model, custom ops included (tensorflow/tensorflow
  issue 77042, checked on ai-edge-litert 2.3.0 and TensorFlow 2.21).
- **integer_only** (Edge TPU, Hexagon DSP, NPUs): a static check of the tensor
  types: does every op compute on integers, are the input and output integer?
  No vendor compiler is run.
- **micro**: the model run on TensorFlow Lite for Microcontrollers with its
  built-in ops: the arena its recording allocator reports, flash (the model's
  bytes) and top-1 (or agreement with LiteRT) over a stated subset of the test split.
"""

import contextlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from optlib.errors import InputError, first_line
from optlib.units import format_bytes

MICRO_SAMPLES = 200  # TFLM's reference kernels are slow: the first 200 test inputs at most ...
MICRO_BUDGET_S = 10.0  # ... and fewer if these take more CPU seconds than this

GPU_DOC = "https://ai.google.dev/edge/litert/performance/gpu"
# The GPU delegate's supported ops (16- and 32-bit float), from its documentation (GPU_DOC,
# "Supported operations"); QUANTIZE and DEQUANTIZE because it runs 8-bit quantized models and
# float16 weights by dequantizing them (same page, "Quantized models").
GPU_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "EXP", "FULLY_CONNECTED",
    "LOGICAL_AND", "LOGISTIC", "LSTM", "MAX_POOL_2D", "MAXIMUM", "MINIMUM", "MUL", "PAD", "PRELU", "RELU",
    "RELU6", "RESHAPE", "RESIZE_BILINEAR", "SOFTMAX", "STRIDED_SLICE", "SUB", "TRANSPOSE_CONV",
    "QUANTIZE", "DEQUANTIZE"})

FLOAT_TYPES = frozenset({"FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16"})
INTEGER_TYPES = frozenset({"INT8", "UINT8", "INT16", "UINT16", "INT32", "UINT32", "INT64", "UINT64", "INT4", "BOOL"})
TYPE_BYTES = {"FLOAT32": 4, "FLOAT16": 2, "FLOAT64": 8, "BFLOAT16": 2, "INT8": 1, "UINT8": 1, "INT16": 2,
              "UINT16": 2, "INT32": 4, "UINT32": 4, "INT64": 8, "UINT64": 8, "BOOL": 1}

TARGETS = {"cpu": "CPU (LiteRT)", "gpu": "GPU delegate", "integer_only": "Integer-only accelerator",
           "micro": "Microcontroller (TFLM)"}


def check(tflite, x=None, y=None, reference=None, phase=None):
    """Check one model against every target.

    Args:
        tflite: the model's bytes.
        x: test inputs (the micro check runs the first of them); None skips its accuracy.
        y: integer labels of ``x`` (None or unused when the model is not a classifier).
        reference: LiteRT's scores on the same ``x`` (for top-1 agreement and LiteRT's own top-1).
        phase: called with "targets" once the static checks are made, then "micro" once the model ran on
            TensorFlow Lite Micro (where the time went).

    Returns:
        dict: one entry per target name in :data:`TARGETS`.
    """
    phase = phase or (lambda name: None)
    try:
        graph = read_graph(tflite)
    except Exception as problem:  # noqa: BLE001
        failed = _failed("the .tflite could not be read", problem)
        return {name: dict(failed) for name in TARGETS}
    checks = {"cpu": lambda: cpu(graph), "gpu": lambda: gpu(graph), "integer_only": lambda: integer_only(graph),
              "micro": lambda: _micro_isolated(tflite, x, y, reference)}
    found = {}
    for name, run in checks.items():
        if name == "micro":
            phase("targets")  # the static checks, read from the one parsed graph
        try:
            found[name] = run()
        except Exception as problem:  # noqa: BLE001 — one target's check never fails the others, nor the job
            found[name] = _failed(f"the {TARGETS[name]} check failed", problem)
    phase("micro")
    return found


def _failed(what, problem):
    return {"runs": None, "reason": f"{what}: {type(problem).__name__}: {first_line(problem)}"}


def of_job(path, data, trained=True, scores=None, phase=None):
    """The targets of a job's model: :func:`check` on the first test inputs, LiteRT's scores beside them.

    Args:
        scores: LiteRT's scores of this file on the whole test split, when the evaluation has them (a
            one-input model): their first rows are the reference, rather than running LiteRT again.
        phase: see :func:`check`.

    Never raises: a problem is recorded in the entries (``runs`` None and the reason).
    """
    from optlib.engine import measure

    tflite = Path(path).read_bytes()
    if len(tflite) > micro_max_bytes():  # not run on the microcontroller: no inputs or reference needed
        return check(tflite, phase=phase)
    try:
        x = data.x_test[:MICRO_SAMPLES]
        reference = measure.predict(path, x) if scores is None else scores[:MICRO_SAMPLES]
        y = data.y_test[:MICRO_SAMPLES] if trained else None
    except Exception as problem:  # noqa: BLE001 — the targets without the micro accuracy, rather than none
        found = check(tflite, phase=phase)
        found["micro"].setdefault("accuracy_problem", f"{type(problem).__name__}: {first_line(problem)}")
        return found
    return check(tflite, x, y, reference, phase)


# --- the graph, read from the flatbuffer -------------------------------------------------------

def read_graph(tflite):
    """The ops and tensors of a ``.tflite`` (every subgraph), as plain dicts.

    Returns:
        dict: ops (name, inputs, outputs as tensor keys), tensors (key -> type, shape, constant),
        inputs and outputs (tensor keys of the main subgraph).
    """
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(bytes(tflite), 0)
    op_names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    type_names = {value: name for name, value in vars(schema.TensorType).items() if not name.startswith("_")}
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        custom = code.CustomCode()
        codes.append(custom.decode() if builtin == schema.BuiltinOperator.CUSTOM and custom else
                     op_names.get(builtin, f"OP_{builtin}"))
    ops, tensors = [], {}
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            buffer = model.Buffers(tensor.Buffer()) if tensor.Buffer() < model.BuffersLength() else None
            constant = buffer is not None and (buffer.DataLength() > 0 or buffer.Size() > 0)
            tensors[(s, t)] = {"type": type_names.get(tensor.Type(), str(tensor.Type())),
                               "shape": [int(v) for v in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else [],
                               "constant": constant}
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            ins = [(s, int(t)) for t in (op.InputsAsNumpy() if op.InputsLength() else []) if t >= 0]
            outs = [(s, int(t)) for t in (op.OutputsAsNumpy() if op.OutputsLength() else []) if t >= 0]
            ops.append({"name": codes[op.OpcodeIndex()], "inputs": ins, "outputs": outs})
    main = model.Subgraphs(0)
    return {"ops": ops, "tensors": tensors,
            "inputs": [(0, int(t)) for t in main.InputsAsNumpy()] if main.InputsLength() else [],
            "outputs": [(0, int(t)) for t in main.OutputsAsNumpy()] if main.OutputsLength() else []}


def _counted(names):
    """'CONV_2D x2, SOFTMAX' from a list of op names, in first-seen order."""
    counts = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{name} x{n}" if n > 1 else name for name, n in counts.items())


# --- CPU ---------------------------------------------------------------------------------------

def cpu(graph):
    """The bytes of the non-constant tensors at batch 1: an upper bound of LiteRT's arena."""
    total = 0
    for tensor in graph["tensors"].values():
        if not tensor["constant"]:
            shape = [1 if v < 0 else v for v in tensor["shape"]]
            total += int(np.prod(shape)) * TYPE_BYTES.get(tensor["type"], 4)
    return {"runs": True, "reason": None, "tensor_bytes": total,
            "note": "bytes of every non-constant tensor at batch 1 (an upper bound of the LiteRT arena, whose "
                    "planner shares memory between tensors; LiteRT's Python API exposes no arena figure)"}


# --- GPU delegate ------------------------------------------------------------------------------

def gpu(graph):
    """Which ops the GPU delegate would leave to the CPU: not on its op list, or int16 activations."""
    tensors = graph["tensors"]
    missing = [op["name"] for op in graph["ops"] if op["name"] not in GPU_OPS]
    int16 = [op["name"] for op in graph["ops"]
             if any(tensors[t]["type"] == "INT16" and not tensors[t]["constant"] for t in op["inputs"] + op["outputs"])]
    reasons = []
    if missing:
        reasons.append(f"not on the GPU delegate's op list: {_counted(missing)}")
    if int16:
        reasons.append(f"int16 activations (the delegate runs float and 8-bit models): {_counted(int16)}")
    unsupported = sorted(set(missing) | set(int16))
    return {"runs": not unsupported, "reason": "; ".join(reasons) or None, "unsupported_ops": unsupported,
            "ops": len(graph["ops"]), "ops_on_gpu": len(graph["ops"]) - len([op for op in graph["ops"]
                                                                          if op["name"] in unsupported]),
            "method": f"static check of the ops against the GPU delegate's documented op list ({GPU_DOC}); "
                      "LiteRT's model analyzer no longer checks GPU compatibility (tensorflow/tensorflow#77042)"}


# --- integer-only accelerators -----------------------------------------------------------------

def integer_only(graph):
    """Does every op compute on integers, and are the input and output integer? Names what breaks it."""
    tensors = graph["tensors"]
    inputs, outputs = set(graph["inputs"]), set(graph["outputs"])

    def boundary(op):  # QUANTIZE of a float model input, DEQUANTIZE into a float model output: I/O, not compute
        return ((op["name"] == "QUANTIZE" and set(op["inputs"]) <= inputs)
                or (op["name"] == "DEQUANTIZE" and set(op["outputs"]) <= outputs))

    float_ops, float_types = [], set()
    for op in graph["ops"]:
        types = {tensors[t]["type"] for t in op["inputs"] + op["outputs"]}
        if types & FLOAT_TYPES and not boundary(op):
            float_ops.append(op["name"])
            float_types |= types & FLOAT_TYPES
    io = {"input": [tensors[t]["type"].lower() for t in graph["inputs"]],
          "output": [tensors[t]["type"].lower() for t in graph["outputs"]]}
    float_io = [f"{side} is {', '.join(types)}" for side, types in io.items()
                if any(t.upper() in FLOAT_TYPES for t in types)]
    reasons = []
    if float_ops:
        reasons.append(f"{len(float_ops)} of {len(graph['ops'])} ops compute in "
                       f"{'/'.join(sorted(t.lower() for t in float_types))}: {_counted(float_ops)}")
    if float_io:
        reasons.append("; ".join(float_io) + " (int8 with int8_io=true makes them integer)")
    activations = sorted({tensors[t]["type"].lower() for op in graph["ops"] for t in op["outputs"]
                          if not tensors[t]["constant"]} - {"int32", "bool", "int64"})
    return {"runs": not float_ops and not float_io, "reason": "; ".join(reasons) or None,
            "integer_ops": not float_ops, "integer_io": not float_io, "float_ops": sorted(set(float_ops)),
            "input_type": ",".join(io["input"]), "output_type": ",".join(io["output"]),
            "activation_types": activations,
            "method": "static check of the .tflite's tensor types; no vendor compiler (Edge TPU, Hexagon, NPU) "
                      "was run"}


# --- microcontrollers (TensorFlow Lite for Microcontrollers) ----------------------------------

@contextlib.contextmanager
def _native_stderr_into(lines):
    """Collect what native code writes to fd 2 (TFLM's allocator report and its errors) into ``lines``."""
    import sys

    from optlib import _quiet

    with _quiet._lock, tempfile.TemporaryFile(mode="w+b") as capture:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines.extend(capture.read().decode("utf-8", "replace").splitlines())


def arena_from_report(lines):
    """The arena total from the lines of TFLM's RecordingMicroAllocator report (None if absent)."""
    for line in lines:
        if "Arena allocation total" in line:
            return int(line.split("total")[1].split()[0])
    return None


def _tflm_reason(lines, problem):
    """TFLM's own words for why the model did not load (its error lines, not its allocator report)."""
    import re

    said = [re.sub(r"^\S+\.cc(:\d+)? ", "", line.strip()) for line in lines  # without TFLM's source file names
            if line.strip() and "RecordingMicroAllocator" not in line]
    return "; ".join(said[:3]) or f"{type(problem).__name__}: {first_line(problem)}"


def micro_max_bytes():
    """The largest model the microcontroller check runs (``OPTLIB_MICRO_MAX_MB``, default 1 MB: the flash of a
    large microcontroller). TFLM's reference kernels take seconds per invoke on bigger models, and on
    MobileNetV2's int8 file (3.9 MB) it aborted its process."""
    text = os.environ.get("OPTLIB_MICRO_MAX_MB", "").strip()
    try:
        return int(float(text) * 1_000_000) if text else 1_000_000
    except ValueError:
        raise InputError(f"OPTLIB_MICRO_MAX_MB={text!r} must be a number of megabytes.") from None


def micro_entry(tflite, reason=None):
    """The microcontroller entry of a model that did not run (yet): its flash, and why not."""
    return {"runs": False, "reason": reason, "flash_bytes": len(tflite), "arena_bytes": None,
            "runtime": "TensorFlow Lite for Microcontrollers (tflite-micro, reference kernels)"}


def _over_the_cap(tflite):
    largest = micro_max_bytes()
    if len(tflite) <= largest:
        return None
    return micro_entry(tflite, f"not run: the model's {format_bytes(len(tflite))} is over the "
                               f"{format_bytes(largest)} this check runs on TensorFlow Lite for Microcontrollers "
                               "(OPTLIB_MICRO_MAX_MB sets it)")


def _micro_isolated(tflite, x, y, reference):
    """:func:`micro` in a process of its own (:mod:`optlib.engine.micro_process`): TFLM aborting costs this check."""
    from optlib.engine import micro_process

    try:
        return _over_the_cap(tflite) or micro_process.run(micro, bytes(tflite), x, y, reference)
    except micro_process.Stopped as stopped:  # TFLM aborted (or hung): this model does not run there
        return micro_entry(tflite, str(stopped))
    except micro_process.CheckFailed as problem:  # the check's own error, as if it had run here
        return {"runs": None, "reason": f"the {TARGETS['micro']} check failed: {problem}"}


def micro(tflite, x=None, y=None, reference=None):
    """Run the model on TensorFlow Lite for Microcontrollers (built-in ops only), in this process.

    The arena is what TFLM's recording allocator used; accuracy is over the first inputs of ``x``
    (at most :data:`MICRO_SAMPLES`, fewer if they take over :data:`MICRO_BUDGET_S` seconds of CPU time).
    :func:`check` runs it in a helper process instead, where an abort in TFLM's C++ costs only this check.
    """
    tflite = bytes(tflite)
    entry = _over_the_cap(tflite) or micro_entry(tflite)
    if entry["reason"]:
        return entry
    from tflite_micro.python.tflite_micro import runtime

    lines = []
    try:
        with _native_stderr_into(lines):
            # The arena TFLM may use (it reports what it did use): 10x the model, as its own default, 1 MB at
            # least and 256 MB at most (a model that needs more says so in TFLM's words).
            it = runtime.Interpreter.from_bytes(tflite, arena_size=min(max(10 * len(tflite), 1 << 20), 1 << 28))
            detail = it.get_input_details(0)
            it.set_input(np.zeros(detail["shape"], detail["dtype"]), 0)
            it.invoke()
    except Exception as problem:  # noqa: BLE001
        entry["reason"] = _tflm_reason(lines, problem)
        return entry
    report = []
    with _native_stderr_into(report):
        it.print_allocations()
    entry.update(runs=True, arena_bytes=arena_from_report(report))
    if x is not None and len(x):
        entry.update(_micro_accuracy(it, x, y, reference))
    return entry


def _micro_accuracy(it, x, y, reference):
    """Top-1 on TFLM over the first inputs (and LiteRT's top-1 and agreement on the same inputs)."""
    detail, out = it.get_input_details(0), it.get_output_details(0)
    # This process's CPU time, not the wall clock: a helper paused while another worker times a latency, or
    # sharing the cores, neither cuts its subset short nor reads as slower kernels (TFLM runs on one thread).
    started, scores = time.process_time(), []
    for sample in x[:MICRO_SAMPLES]:
        value = np.asarray(sample, np.float32).reshape(detail["shape"])
        it.set_input(_to_type(value, detail), 0)
        it.invoke()
        scores.append(_from_type(it.get_output(0), out).reshape(-1))
        if time.process_time() - started > MICRO_BUDGET_S:
            break
    n = len(scores)
    scores = np.stack(scores)
    found = {"samples": n, "ms_per_invoke": round(1000 * (time.process_time() - started) / n, 3),
             "subset": f"the first {n} inputs of the test split"}
    if scores.shape[1] < 2:  # not a classifier: how far TFLM's outputs are from LiteRT's
        if reference is not None:
            found["max_abs_diff"] = float(np.max(np.abs(scores - np.asarray(reference)[:n].reshape(n, -1))))
        return found
    top1 = scores.argmax(axis=1)
    if y is not None:
        found["accuracy"] = float(np.mean(top1 == np.asarray(y)[:n]))
    if reference is not None:
        litert = np.asarray(reference)[:n].argmax(axis=1)
        found["agreement"] = float(np.mean(top1 == litert))
        if y is not None:
            found["litert_accuracy"] = float(np.mean(litert == np.asarray(y)[:n]))
    return found


def _to_type(value, detail):
    """A float input in the type TFLM's input tensor holds (quantized with its scale and zero point)."""
    dtype = detail["dtype"]
    params = detail.get("quantization_parameters") or {}
    if np.issubdtype(dtype, np.integer) and len(params.get("scales", [])):
        info = np.iinfo(dtype)
        q = np.round(value / params["scales"][0] + params["zero_points"][0])
        return np.clip(q, info.min, info.max).astype(dtype)
    return value.astype(dtype)


def _from_type(value, detail):
    params = detail.get("quantization_parameters") or {}
    if np.issubdtype(value.dtype, np.integer) and len(params.get("scales", [])):
        return (value.astype(np.float32) - params["zero_points"][0]) * params["scales"][0]
    return value.astype(np.float32)


# --- a target a user names ---------------------------------------------------------------------

DEVICE_KINDS = {"mcu": "a microcontroller (TFLite Micro)", "gpu": "the GPU delegate",
                "integer": "an integer-only accelerator"}
_UNITS = {"b": 1, "": 1, "kb": 1000, "k": 1000, "kib": 1024, "mb": 1000 ** 2, "m": 1000 ** 2, "mib": 1024 ** 2}
DEVICE_HELP = ("mcu:ram=64KB,flash=256KB (KB = 1,000 bytes, KiB = 1,024; ram and flash each optional), "
               "gpu, or integer")


def parse_device(text):
    """A device a search must fit, from ``mcu:ram=64KB,flash=256KB``, ``gpu`` or ``integer``.

    Returns:
        dict: kind, ram_bytes, flash_bytes (None when not limited) and a label to show.

    Raises:
        InputError: the text names no known device or a size cannot be read.
    """
    import re

    from optlib.errors import InputError
    from optlib.units import format_bytes

    kind, _, rest = (text or "").strip().partition(":")
    kind = kind.strip().lower()
    if kind not in DEVICE_KINDS:
        raise InputError(f"Unknown target '{text}'; use {DEVICE_HELP}.")
    device = {"kind": kind, "ram_bytes": None, "flash_bytes": None}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", value)
        if kind != "mcu" or key not in ("ram", "flash") or not sep or not match \
                or match.group(2).lower() not in _UNITS:
            raise InputError(f"Cannot read '{item}' in target '{text}'; use {DEVICE_HELP}.")
        device[f"{key}_bytes"] = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    limits = [f"{name} {format_bytes(device[f'{name}_bytes'])}" for name in ("ram", "flash")
              if device[f"{name}_bytes"] is not None]
    device["label"] = DEVICE_KINDS[kind] + (f" with {' and '.join(limits)}" if limits else "")
    return device


def fits(targets, device):
    """(True, None) if a result's targets say it runs on ``device`` (from :func:`parse_device`), else (False, why)."""
    from optlib.units import format_bytes

    name = {"mcu": "micro", "gpu": "gpu", "integer": "integer_only"}[device["kind"]]
    entry = (targets or {}).get(name)
    if not entry:
        return False, "not checked (a result stored before targets were measured; run it again with --recompute)"
    if not entry.get("runs"):
        return False, entry.get("reason") or "no reason recorded"
    why = []
    if device.get("ram_bytes") is not None and entry.get("arena_bytes") is None:
        why.append("its arena was not measured, so it is not known to fit the RAM")
    elif device.get("ram_bytes") is not None and entry["arena_bytes"] > device["ram_bytes"]:
        why.append(f"arena {format_bytes(entry['arena_bytes'])} > RAM {format_bytes(device['ram_bytes'])}")
    if device.get("flash_bytes") is not None and entry.get("flash_bytes", 0) > device["flash_bytes"]:
        why.append(f"model {format_bytes(entry['flash_bytes'])} > flash {format_bytes(device['flash_bytes'])}")
    return (False, "; ".join(why)) if why else (True, None)
