"""Measurements on the LiteRT interpreter: accuracy, latency, size, weight statistics.

Every figure is measured from the actual ``.tflite`` file at run time.
"""

import gzip
import os
import statistics
import time
from pathlib import Path

import numpy as np

from optlib.engine import machine
from optlib.errors import first_line

WEIGHT_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_3D"}


def interpreter(model, threads=None):
    """Return an allocated LiteRT interpreter for a path or bytes."""
    from ai_edge_litert.interpreter import Interpreter

    from optlib._quiet import native_stderr

    threads = threads or machine.default_threads()
    with native_stderr():
        if isinstance(model, (bytes, bytearray)):
            it = Interpreter(model_content=bytes(model), num_threads=threads)
        else:
            it = Interpreter(model_path=str(model), num_threads=threads)
        it.allocate_tensors()
    return it


def quantize_input(x, detail):
    """Convert float inputs to the interpreter's input type (int8/uint8/int16 or float)."""
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.integer) and (np.issubdtype(np.asarray(x).dtype, np.integer)
                                             or not detail["quantization"][0]):
        return np.asarray(x).astype(dtype)  # token ids and other integer inputs go in as they are
    if np.issubdtype(dtype, np.integer):
        scale, zero = detail["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
    return x.astype(dtype)


def dequantize_output(y, detail):
    """Convert the interpreter's output back to float scores."""
    if np.issubdtype(detail["dtype"], np.integer):
        scale, zero = detail["quantization"]
        if not scale:  # an integer output that is not quantized (e.g. an argmax): its values as they are
            return y.astype(np.float32)
        return (y.astype(np.float32) - zero) * scale
    return y.astype(np.float32)


BATCH_ELEMENTS = 600_000  # input values per invoke: big batches for tiny inputs, a few images for big ones


def predict(model, x, threads=None, batch=None):
    """Return float class scores for every input in ``x``, run through LiteRT.

    Inputs go through in batches (the input tensor is resized once): one
    invoke per tiny image spends most of its time in Python, while a big
    batch of 224x224 images is slower per image than a few (measured:
    MobileNetV2 105 img/s at 1, 110 at 4, 72 at 64). Models that cannot be
    resized run one image at a time.
    """
    it = interpreter(model, threads)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    if batch is None:
        batch = max(1, min(64, BATCH_ELEMENTS // max(1, int(np.prod(inp["shape"][1:])))))
    size = min(batch, len(x))
    if size > 1:
        try:
            it.resize_tensor_input(inp["index"], [size, *inp["shape"][1:]])
            it.allocate_tensors()
        except (RuntimeError, ValueError):
            it = interpreter(model, threads)
            size = 1
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    scores = []
    for start in range(0, len(x), size):
        chunk = x[start:start + size]
        count = len(chunk)
        if count < size:
            chunk = np.concatenate([chunk, np.zeros((size - count, *chunk.shape[1:]), chunk.dtype)])
        it.set_tensor(inp["index"], quantize_input(chunk, inp))
        it.invoke()
        scores.append(dequantize_output(it.get_tensor(out["index"]), out)[:count])
    return np.concatenate(scores).reshape(len(x), -1)


def accuracy(scores, labels):
    """Return top-1 (and top-5 with more than five classes) accuracy of scores."""
    result = {"top1": float(np.mean(np.argmax(scores, axis=1) == labels))}
    if scores.shape[1] > 5:
        top5 = np.argsort(scores, axis=1)[:, -5:]
        result["top5"] = float(np.mean(np.any(top5 == labels[:, None], axis=1)))
    return result


def evaluate(model, x, y, threads=None):
    """Return accuracy of a TFLite model (path or bytes) on ``x``, ``y``."""
    return {**accuracy(predict(model, x, threads), y), "samples": int(len(x))}


COMPILED_MODEL = "LiteRT CompiledModel (CPU)"
INTERPRETER = "LiteRT Interpreter (XNNPACK)"
WARMUP_MIN_S = 0.1  # warm-up lasts at least this long, and at least ``warmup`` invokes
TIMED_MIN_S = 0.3  # timing lasts at least this long, and at least ``runs`` invokes


def latency(model, sample=None, threads=1, runs=50, warmup=5):
    """Time single-input inferences: warm-up first, then the timed runs.

    Timing uses LiteRT's CompiledModel on the CPU accelerator — the runtime and
    call sequence of LiteRT's own benchmark tool (``benchmark_litert_model``),
    so the figures agree with it — fed with a real input. A model that cannot
    be compiled is timed on the Interpreter instead; ``runtime`` says which
    and ``fallback_reason`` why.
    Like the tool, it runs for a minimum time as well as a minimum count, so a
    model of a few microseconds is timed over thousands of invokes, not fifty.

    Returns:
        dict with median, p90, mean, std and min in milliseconds, plus runs,
        warmup, threads, runtime, ``fallback_reason`` (``"ValueError: first
        line of its message"`` when the Interpreter stood in, else None) and
        ``background_cpu`` (the share of the machine's cores that other
        processes used while timing), so the figure can be read and repeated.
    """
    it = interpreter(model, threads)
    inp = it.get_input_details()[0]
    if sample is None:
        sample = np.zeros(inp["shape"][1:], np.float32)
    value = quantize_input(sample[None, ...], inp)
    fallback_reason = None
    try:
        run, runtime = _compiled_runner(model, value, threads), COMPILED_MODEL
    except Exception as problem:  # not every model compiles; the Interpreter runs them all
        # Recorded: the two runtimes' figures are not the same measurement.
        fallback_reason = f"{type(problem).__name__}: {first_line(problem, 200)}"
        it.set_tensor(inp["index"], value)
        run, runtime = it.invoke, INTERPRETER
    warmed, start = 0, time.perf_counter()
    while warmed < warmup or time.perf_counter() - start < WARMUP_MIN_S:
        run()
        warmed += 1
    times, before = [], _cpu_snapshot()
    start = time.perf_counter_ns()
    while len(times) < runs or time.perf_counter_ns() - start < TIMED_MIN_S * 1e9:
        begin = time.perf_counter_ns()
        run()
        times.append((time.perf_counter_ns() - begin) / 1e6)
    return {"median": statistics.median(times), "p90": float(np.percentile(times, 90)),
            "mean": statistics.fmean(times), "std": statistics.pstdev(times), "min": min(times),
            "runs": len(times), "warmup": warmed, "threads": threads, "runtime": runtime,
            "fallback_reason": fallback_reason, "background_cpu": _background_cpu(before, _cpu_snapshot()),
            **machine.timed_on()}


def _cpu_snapshot():
    """(wall s, busy CPU seconds of the whole machine, CPU seconds of this process); None if unknown."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None  # not Linux
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    own = os.times()
    return time.perf_counter(), (sum(fields[:8]) - idle) / tick, own.user + own.system


def _background_cpu(before, after):
    """Share of all cores busy with other processes between two snapshots (0 = a quiet machine)."""
    if before is None or after is None or after[0] - before[0] <= 0:
        return None
    others = (after[1] - before[1]) - (after[2] - before[2])
    share = others / ((after[0] - before[0]) * (os.cpu_count() or 1))
    return round(min(1.0, max(0.0, share)), 3)  # /proc/stat counts in ticks (10 ms): a short window can overshoot


_ENVIRONMENT = None


def _compiled_runner(model, value, threads):
    """Return a function that runs one inference of ``model`` on LiteRT's CompiledModel."""
    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.environment import Environment, EnvironmentOptions
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator
    from ai_edge_litert.options import CpuOptions, Options

    from optlib._quiet import native_stderr

    global _ENVIRONMENT
    with native_stderr():  # it reports each vendor plugin it cannot load
        if _ENVIRONMENT is None:  # one per process: creating it loads (and logs) every accelerator
            _ENVIRONMENT = Environment.create(options=EnvironmentOptions())
        environment = _ENVIRONMENT
        options = Options(hardware_accelerators=HardwareAccelerator(HardwareAccelerator.CPU),
                          cpu_options=CpuOptions(num_threads=threads))
        if isinstance(model, (bytes, bytearray)):
            compiled = CompiledModel.from_buffer(bytes(model), environment=environment, options=options)
        else:
            compiled = CompiledModel.from_file(str(model), environment=environment, options=options)
    signature = list(compiled.get_signature_list())[0]
    inputs = {n: compiled.create_input_buffer_by_name(signature, n)
              for n in compiled.get_input_tensor_details(signature)}
    outputs = {n: compiled.create_output_buffer_by_name(signature, n)
               for n in compiled.get_output_tensor_details(signature)}
    if len(inputs) != 1:
        raise ValueError("only single-input models are timed on CompiledModel")
    next(iter(inputs.values())).write(np.ascontiguousarray(value))

    def run():
        compiled.run_by_name(signature, inputs, outputs)

    run.keep = (environment, compiled, inputs, outputs)  # keep the native objects alive
    return run


def sizes(path):
    """Return (raw bytes, gzipped bytes) of a file: what is stored and what is downloaded."""
    data = Path(path).read_bytes()
    return len(data), len(gzip.compress(data, compresslevel=9, mtime=0))


def weight_stats(model):
    """Measure the weights of convolution and dense layers as stored in the TFLite file.

    Returns:
        dict: ``sparsity`` (share of exactly-zero weights over all kernels),
        ``max_unique`` (most unique values in one kernel) and ``kernels``, a
        list of per-kernel facts (name, shape, dtype, sparsity, unique values).
    """
    it = interpreter(model, 1)
    details = {d["index"]: d for d in it.get_tensor_details()}
    ops = it._get_ops_details()  # the public API has no op list; this is LiteRT's own helper
    produced_by = {o: op for op in ops for o in op["outputs"]}
    kernels, zeros, total = [], 0, 0
    for op in ops:
        if op["op_name"] not in WEIGHT_OPS or len(op["inputs"]) < 2:
            continue
        index = op["inputs"][1]
        source = produced_by.get(index)
        if source is not None and source["op_name"] == "DEQUANTIZE":
            index = source["inputs"][0]
        try:
            weights = it.get_tensor(index)
        except ValueError:
            continue  # not a constant (e.g. computed at run time)
        count = int(weights.size)
        zero = int(np.count_nonzero(weights == 0))
        zeros, total = zeros + zero, total + count
        kernels.append({"name": details[index]["name"], "op": op["op_name"], "shape": list(weights.shape),
                        "dtype": str(weights.dtype), "sparsity": zero / count if count else 0.0,
                        "unique": int(np.unique(weights).size),
                        "unique_per_channel": _unique_per_channel(weights, details[index])})
    return {"sparsity": zeros / total if total else 0.0,
            "max_unique": max((k["unique"] for k in kernels), default=0),
            "max_unique_per_channel": max((k["unique_per_channel"] for k in kernels), default=0),
            "kernels": kernels}


def _unique_per_channel(weights, detail):
    """Most unique values in one channel of a per-channel quantized kernel (else the whole kernel).

    With per-channel int8 scales a clustered kernel of N centroids holds up to
    N values per channel, but more across the whole tensor.
    """
    params = detail.get("quantization_parameters") or {}
    if len(params.get("scales", ())) <= 1 or weights.ndim == 0:
        return int(np.unique(weights).size)
    moved = np.moveaxis(weights, int(params.get("quantized_dimension", 0)), 0)
    return max(int(np.unique(channel).size) for channel in moved)


def peak_rss_mb():
    """Return this process's peak resident memory so far, in MB (Linux/macOS)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024
