"""The second backend: LiteRT Quantizer (``litert-quantizer``) on a float32 LiteRT model.

LiteRT's documentation deprecates quantizing during conversion: convert once to
float32, then quantize that file with LiteRT Quantizer. This module does the
second half. A *recipe* here is plain data, stored with every result and used
to generate the code that reproduces it::

    {"base": "static_wi8_ai8", "block_size": 0, "keep": {"names": [...], "as": "int16"}}

:func:`quantizer_recipe` turns it into LiteRT Quantizer's own recipe (a list of
"apply algorithm X to ops matching regex Y with config Z" entries, also plain
data). :func:`quantize` calibrates (when the recipe needs it) and quantizes;
:func:`validate` is the quantizer's own per-tensor comparison with the float
model (MSE, SNR, cosine similarity), for a model from either backend.

LiteRT Quantizer is imported only when one of these runs.
"""

import contextlib
import io
import math
import re
import time
import warnings
from pathlib import Path

# Named recipes of litert_quantizer.recipe this project offers, and what they are.
BASES = {
    "static_wi8_ai8": "int8 weights and activations, calibrated (static)",
    "static_wi8_ai16": "int8 weights, int16 activations, calibrated (static)",
    "dynamic_wi8_afp32": "int8 weights; activations quantized on the fly (dynamic range)",
    "dynamic_wi4_afp32": "int4 weights; activations quantized on the fly",
    "weight_only_wi8_afp32": "int8 weights dequantized to float before each op (weight-only)",
    "weight_only_wi4_afp32": "int4 weights dequantized to float before each op (weight-only)",
}
BLOCK_SIZES = (32, 64, 128, 256)  # LiteRT Quantizer's blockwise granularities
KEEP_AS = ("int16", "float")  # how a mixed-precision recipe keeps its chosen layers
VALIDATION_METRICS = ("mse", "snr", "cosine_similarity")


@contextlib.contextmanager
def silenced():
    """Keep LiteRT Quantizer's summary (stdout), progress bars and native logs (stderr) off the terminal."""
    from optlib._quiet import native_stderr

    with native_stderr(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "preserve_all_tensors is for debugging": validation is debugging
        yield


def quantizer_recipe(spec):
    """Return LiteRT Quantizer's recipe (a list of plain dicts) for one of this project's recipes.

    Args:
        spec: ``{"base": name of BASES, "block_size": 0 or one of BLOCK_SIZES (dynamic int4 only),
            "channelwise": [layers whose weights do not split into whole blocks],
            "keep": {"names": [layer tensor names], "as": "int16" | "float"}}`` (all but base optional).
    """
    from litert_quantizer import qtyping, recipe, recipe_manager
    from litert_quantizer.algorithm_manager import AlgorithmName

    base = spec["base"]
    if base not in BASES:
        raise ValueError(f"Unknown LiteRT Quantizer recipe '{base}'. Known: {', '.join(BASES)}.")
    block = int(spec.get("block_size") or 0)
    if block:
        if block not in BLOCK_SIZES or not base.startswith("dynamic_"):
            raise ValueError(f"Block size {block} needs a dynamic recipe and one of {BLOCK_SIZES}.")
        bits = 4 if "wi4" in base else 8
        everything = qtyping.TFLOperationName.ALL_SUPPORTED
        manager = recipe_manager.RecipeManager()
        # The latest entry that fits an op wins: blocks where LiteRT Quantizer has them (fully connected,
        # embeddings), one scale per channel elsewhere (convolutions), rather than leaving those in float.
        manager.add_dynamic_config(".*", everything, num_bits=bits)
        manager.add_dynamic_config("^", everything, num_bits=bits,
                                   granularity=getattr(qtyping.QuantGranularity, f"BLOCKWISE_{block}"))
        entries = manager.get_quantization_recipe()
    else:
        entries = getattr(recipe, base)()
    misfits = list(spec.get("channelwise") or [])
    if misfits:  # layers whose weights do not split into whole blocks: one int4 scale per channel instead
        manager = recipe_manager.RecipeManager()
        manager.load_quantization_recipe(entries)
        for name in misfits:
            manager.add_dynamic_config(_scope(name), qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=4)
        entries = manager.get_quantization_recipe()
    keep = spec.get("keep") or {}
    names = list(keep.get("names") or [])
    if names:
        manager = recipe_manager.RecipeManager()
        manager.load_quantization_recipe(entries)
        for name in names:
            regex = _scope(name)
            if keep.get("as") == "float":
                manager.add_quantization_config(regex, qtyping.TFLOperationName.ALL_SUPPORTED,
                                                algorithm_key=AlgorithmName.NO_QUANTIZE)
            else:
                manager.add_static_config(regex, qtyping.TFLOperationName.ALL_SUPPORTED,
                                          activation_num_bits=16, weight_num_bits=8)
        entries = manager.get_quantization_recipe()
    return _plain(entries)


def _scope(name):
    """A regex for one layer: an op's scope is its output tensor names, each followed by ";"."""
    return "^" + re.escape(name) + "(1|_int16)?;"


def blockwise_misfits(float32, block):
    """Output names of the ops whose weights' last axis (the one blocks split) is not a multiple of ``block``."""
    from ai_edge_litert.interpreter import Interpreter

    from optlib.engine.measure import WEIGHT_OPS

    with silenced():
        it = Interpreter(model_content=bytes(float32))
    details = {d["index"]: d for d in it.get_tensor_details()}
    return [details[op["outputs"][0]]["name"] for op in it._get_ops_details()
            if op["op_name"] in WEIGHT_OPS and len(op["inputs"]) > 1 and op["inputs"][1] in details
            and int(details[op["inputs"][1]]["shape"][-1]) % block]


def _plain(value):
    """Recipes hold enums and tuples; keep plain JSON-like data (str, numbers, bools, lists, dicts)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "value") and not isinstance(value, (int, float, str, bool)):
        return value.value
    return value


def signature_of(model_bytes):
    """Return (signature key, the first input's name) of a LiteRT model, as calibration and validation name them."""
    key, names = _signature(model_bytes)
    return key, names[0]


def _signature(model_bytes):
    """(signature key, its input names) of a LiteRT model."""
    from ai_edge_litert.interpreter import Interpreter

    with silenced():
        signatures = Interpreter(model_content=bytes(model_bytes)).get_signature_list()
    if not signatures:
        raise ValueError("the float32 model has no signature, which LiteRT Quantizer needs to calibrate")
    key = next(iter(signatures))
    return key, list(signatures[key]["inputs"])


def samples_for(model_bytes, x):
    """Return ``{signature key: [{input name: one sample with a batch axis}, ...]}`` for calibrate and validate.

    ``x`` is one array (a one-input model) or {input name: array} (several inputs, named as the model's)."""
    key, names = _signature(model_bytes)
    arrays = x if isinstance(x, dict) else {names[0]: x}
    if len(arrays) != len(names):
        raise ValueError(f"the float32 model takes {len(names)} input(s) ({', '.join(names)}); "
                         f"the data has {len(arrays)}")
    if set(arrays) != set(names):  # the converter may name them otherwise: matched in order
        arrays = dict(zip(names, arrays.values()))
    count = len(next(iter(arrays.values())))
    return {key: [{name: arrays[name][i:i + 1] for name in names} for i in range(count)]}


_MADE = {}  # (float32 digest, recipe, calibration inputs' digest) -> (bytes, timings) of this process's quantizations
_MADE_MAX = 4  # a few: a MobileNetV2 int8 file is 4 MB


def _digest(float32, recipe_entries, representative):
    """What a quantization depends on, as a key: the float32 bytes, the recipe and the calibration inputs."""
    import hashlib
    import json

    from optlib.engine.float32_cache import digest_arrays

    h = hashlib.sha256(bytes(float32))
    h.update(json.dumps(recipe_entries, sort_keys=True, default=str).encode())
    arrays = [] if representative is None else (
        [representative[k] for k in sorted(representative)] if isinstance(representative, dict) else [representative])
    return digest_arrays(h, arrays).hexdigest()


def quantize(float32, recipe_entries, representative=None, calibrations=None):
    """Quantize float32 LiteRT bytes with a LiteRT Quantizer recipe.

    The same quantization asked for again in this process (lq_int8_selective ranks layers on plain
    static int8, which lq_int8 made already) is served from memory: LiteRT Quantizer is deterministic for
    the same float32 bytes, recipe and calibration inputs. The timings then are the first quantization's,
    with ``"quantization_reused": True``. A calibration is shared likewise (see :func:`calibrate`).

    Args:
        float32: the float32 model's bytes.
        recipe_entries: LiteRT Quantizer's recipe (see :func:`quantizer_recipe`).
        representative: float32 calibration inputs, used when the recipe needs calibration.
        calibrations: a folder where calibrations are kept for other processes (the sweep's other workers),
            or None (this process only).

    Returns:
        (quantized bytes, {"calibrate_s", "quantize_s", "calibration_samples", "quantization_reused",
        "calibration_reused"}).
    """
    key = _digest(float32, recipe_entries, representative)
    if key in _MADE:
        made, timings = _MADE[key]
        return made, {**timings, "quantization_reused": True}
    made, timings = _quantize(float32, recipe_entries, representative, calibrations)
    while len(_MADE) >= _MADE_MAX:
        _MADE.pop(next(iter(_MADE)))
    _MADE[key] = made, timings
    return made, {**timings, "quantization_reused": False}


def _quantize(float32, recipe_entries, representative=None, calibrations=None):
    from litert_quantizer import quantizer

    timings = {"calibrate_s": 0.0, "calibration_samples": 0, "calibration_reused": False}
    with silenced():
        qt = quantizer.Quantizer(bytes(float32))
        qt.load_quantization_recipe(recipe_entries)
        calibration = None
        if qt.need_calibration:
            if representative is None or not len(representative):
                raise ValueError("this LiteRT Quantizer recipe needs calibration inputs, and none were given")
            calibration, facts = calibrate(float32, recipe_entries, representative, calibrations, qt)
            timings.update(facts)
        started = time.perf_counter()
        result = qt.quantize(calibration, enable_progress_report=False)
        timings["quantize_s"] = round(time.perf_counter() - started, 3)
    return bytes(result.quantized_model), timings


# --- Calibration, shared -----------------------------------------------------------------------------------
#
# LiteRT Quantizer's calibration ({tensor name: QSV, e.g. min and max}) depends on the float32 bytes, the
# calibration inputs and, for each op, only the *algorithm* the recipe gives it: its calibrator
# (calibrator._PreserveAllTensorsCalibrator._calibrate_step) runs the float model, skips the ops the recipe
# leaves unquantized, and asks each other op's algorithm for its calibration function and how it updates
# the QSVs; neither gets the op's config (bits, granularity). So static int8 (static_wi8_ai8) and int16x8
# (static_wi8_ai16) calibrate alike, and so does mixed precision that keeps layers as int16, where every op
# has the same algorithm; a layer kept in float (no algorithm) makes another calibration. Which algorithm
# an op gets does depend on its config (a config an op does not support falls back to the entry before), so
# the key is the per-op map itself, found as the calibrator finds it.

_CALIBRATED = {}  # calibration key -> (QSVs, facts) of this process's calibrations
_CALIBRATED_MAX = 4


def algorithm_map(float32, recipe_entries, model=None):
    """The algorithm LiteRT Quantizer's calibrator gives each op of the float32 model under this recipe, in
    the order it walks them (every subgraph's ops, then its input and output operators); None for an op it
    does not know. ``model``: the float32 bytes already read (``tfl_flatbuffer_utils.read_model``)."""
    from litert_quantizer import qtyping, recipe_manager
    from litert_quantizer.utils import tfl_flatbuffer_utils as flatbuffers

    model = model if model is not None else flatbuffers.read_model(bytes(float32))
    manager = recipe_manager.RecipeManager()
    manager.load_quantization_recipe(recipe_entries)
    found = []
    for subgraph in model.subgraphs:
        ops = list(subgraph.operators)
        if not any(isinstance(op, qtyping.IOOperator) for op in ops):
            ops += flatbuffers.get_subgraph_input_output_operators(subgraph)
        for op in ops:
            if isinstance(op, qtyping.IOOperator):
                op_key = op.op_key
            else:
                op_key = flatbuffers.TFL_OP_CODE_TO_NAME.get(model.operatorCodes[op.opcodeIndex].builtinCode)
            if op_key is None:
                found.append(None)
                continue
            algorithm, _ = manager.get_quantization_configs(op_key, flatbuffers.get_op_scope(op, subgraph.tensors))
            found.append(str(getattr(algorithm, "value", algorithm)))
    return found


def calibration_key(float32, recipe_entries, representative, model=None):
    """What a calibration depends on, as a key: the float32 bytes, the calibration inputs, the per-op
    algorithm map (:func:`algorithm_map`) and the versions of LiteRT and LiteRT Quantizer."""
    import hashlib
    import json
    from importlib import metadata

    versions = []
    for package in ("ai-edge-litert", "litert-quantizer"):
        try:
            versions.append(metadata.version(package))
        except metadata.PackageNotFoundError:
            versions.append("")
    h = hashlib.sha256(_digest(float32, [], representative).encode())
    h.update(json.dumps([algorithm_map(float32, recipe_entries, model), versions]).encode())
    return h.hexdigest()[:32]


def calibrate(float32, recipe_entries, representative, calibrations=None, qt=None):
    """LiteRT Quantizer's calibration of the float32 model for this recipe, made once and shared.

    Served from this process's memory, else from ``calibrations`` (a model's float32 cache folder, which
    other processes write too: :func:`optlib.engine.float32_cache.shared_arrays` makes a second process
    wait for the first one's calibration instead of repeating it), else made (and kept in both). A shared
    calibration is the one :meth:`Quantizer.calibrate` would make, so ``qt.quantize(calibration)`` writes the
    same bytes (a test compares them).

    Returns:
        (QSVs, {"calibrate_s": the seconds of the calibration that made them, "calibration_samples",
        "calibration_reused"}).
    """
    import copy

    from litert_quantizer import quantizer

    from optlib.engine.float32_cache import shared_arrays

    if qt is None:
        qt = quantizer.Quantizer(bytes(float32))
        qt.load_quantization_recipe(recipe_entries)
    key = calibration_key(float32, recipe_entries, representative, getattr(qt, "_float_model", None))
    if key in _CALIBRATED:
        qsvs, facts = _CALIBRATED[key]
        reused = True
    elif calibrations is None:
        (qsvs, facts), reused = _make_calibration(qt, float32, representative), False
    else:
        made = []  # what this process made, as it made it (kept as arrays only when they all are)

        def make():
            made.append(_make_calibration(qt, float32, representative))
            return _as_arrays(*made[0])

        arrays, reused = shared_arrays(Path(calibrations), "calibration", key, make)
        qsvs, facts = made[0] if made else _from_arrays(arrays)
    while key not in _CALIBRATED and len(_CALIBRATED) >= _CALIBRATED_MAX:
        _CALIBRATED.pop(next(iter(_CALIBRATED)))
    _CALIBRATED[key] = qsvs, facts
    return copy.deepcopy(qsvs), {**facts, "calibration_reused": reused}  # quantize may not change ours


def _make_calibration(qt, float32, representative):
    from optlib.engine import machine

    started = time.perf_counter()
    # As many threads as the machine (or the job's share of it) has: LiteRT Quantizer's default, 16,
    # oversubscribes a small machine.
    qsvs = qt.calibrate(samples_for(float32, representative), num_threads=machine.default_threads())
    samples = len(next(iter(representative.values())) if isinstance(representative, dict) else representative)
    return qsvs, {"calibrate_s": round(time.perf_counter() - started, 3), "calibration_samples": samples}


def _as_arrays(qsvs, facts):
    """A calibration as a list of arrays for :func:`~optlib.engine.float32_cache.shared_arrays`: its index
    ((tensor, QSV name) pairs), its facts (JSON), then every value; an array of objects (never kept) when a
    QSV is not a set of arrays, which ``np.load`` could not give back as it was."""
    import json

    import numpy as np

    index, values = [], []
    for tensor, qsv in qsvs.items():
        if not isinstance(qsv, dict):
            return [np.array(None, dtype=object)]
        for name, value in qsv.items():
            if not isinstance(value, np.ndarray) or value.dtype == object:
                return [np.array(None, dtype=object)]
            index.append((tensor, name))
            values.append(value)
    return [np.array(index, dtype=str).reshape(-1, 2), np.array(json.dumps(facts)), *values]


def _from_arrays(arrays):
    """The (QSVs, facts) of :func:`_as_arrays`' list."""
    import json

    index, facts, values = arrays[0], json.loads(str(arrays[1])), arrays[2:]
    qsvs = {}
    for (tensor, name), value in zip(index, values):
        qsvs.setdefault(str(tensor), {})[str(name)] = value
    return qsvs, {"calibrate_s": float(facts["calibrate_s"]), "calibration_samples": int(facts["calibration_samples"])}


def validate(float32, quantized, x, threads=1):
    """LiteRT Quantizer's per-tensor comparison of a quantized model with its float32 model.

    Works for a model from either backend: tensors are matched by name, and
    only tensors found in both models are compared (the converter renames a
    few, such as the final output).

    Args:
        float32, quantized: the two models (bytes or paths).
        x: float32 inputs to run both on (a few are enough: each input sets up both interpreters).

    Returns:
        list of dicts, activations first (intermediate, output, input, then constants, each in the
        float model's order): tensor, kind, mse, snr (LiteRT Quantizer's power ratio: signal power /
        noise power), snr_db (the same in decibels), cosine_similarity. Only the outputs when LiteRT's
        reference kernels refuse the quantized model (it then runs on XNNPACK, which keeps no intermediates).
    """
    from litert_quantizer import model_validator
    from litert_quantizer.utils.validation_utils import ValidationErrorMetric

    float32, quantized = _bytes(float32), _bytes(quantized)
    metrics = [ValidationErrorMetric(name) for name in VALIDATION_METRICS]
    with silenced():
        try:  # reference kernels keep every intermediate tensor
            result = model_validator.compare_model(float32, quantized, samples_for(float32, x), metrics,
                                                   use_xnnpack=False, num_threads=threads)
        except RuntimeError:  # a model they refuse (an int8 conv whose bias scale they check) runs on XNNPACK,
            # whose fused partitions do not keep intermediate tensors: compare the outputs only
            result = model_validator.compare_model(float32, quantized, samples_for(float32, x), metrics,
                                                   use_xnnpack=True, num_threads=threads,
                                                   validate_output_tensors_only=True)
    rows = []
    for key in result.available_signature_keys():
        signature = result.get_signature_comparison_result(key)
        for kind in ("intermediate", "output", "input", "constant"):  # activations first, in graph order
            for tensor, values in getattr(signature, f"{kind}_tensors").items():
                snr = values.get("snr")
                rows.append({"tensor": tensor, "kind": kind, **{m: values.get(m) for m in VALIDATION_METRICS},
                             "snr_db": 10 * math.log10(snr) if snr and snr > 0 else None})
    return rows


def _bytes(model):
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    with open(model, "rb") as source:
        return source.read()
