"""Run a LiteRT model on every test input and return all of its outputs, in the Keras model's order.

Inputs and outputs are matched by name through the model's signature (a
converter may order the tensors otherwise: two inputs ``feat``, ``tok``
come out as ``tok``, ``feat``). Float inputs are quantized for integer
models; integer inputs (token ids) are passed as they are. Variable tensors
(the state of a fused LSTM) are reset before every invoke, so no batch
starts from the state the previous one left.
"""

import time

import numpy as np

from optlib.engine import measure


def _signature_details(it, count, names):
    """Map Keras names to interpreter tensor details (by position when the signature has other names)."""
    try:
        runner = it.get_signature_runner()
        inputs, outputs = runner.get_input_details(), runner.get_output_details()
    except (ValueError, RuntimeError):
        inputs = outputs = {}
    plain_in, plain_out = it.get_input_details(), it.get_output_details()
    by_index_in = {d["index"]: d for d in plain_in}
    by_index_out = {d["index"]: d for d in plain_out}

    def pick(found, plain, by_index, wanted):
        if wanted and set(wanted) <= set(found):
            return [by_index[found[name]["index"]] for name in wanted]
        return list(plain)

    return (pick(inputs, plain_in, by_index_in, names[0] if count else None),
            pick(outputs, plain_out, by_index_out, names[1]))


PROBE_CHUNKS = 8  # an evaluation of at least this many invokes tries one thread too, on its second invoke


def _ready(model, threads, xs, names, batch):
    """(interpreter, input details, output details, batch size): resized to ``batch`` where the model allows."""
    it = measure.interpreter(model, threads)
    ins, _ = _signature_details(it, len(xs), names)
    total = len(xs[0])
    if batch is None:
        elements = sum(int(np.prod(d["shape"][1:])) for d in ins)
        batch = max(1, min(64, measure.BATCH_ELEMENTS // max(1, elements)))
    size = min(batch, total)
    if size > 1:
        try:
            for d in ins:
                it.resize_tensor_input(d["index"], [size, *d["shape"][1:]])
            it.allocate_tensors()
        except (RuntimeError, ValueError):
            it = measure.interpreter(model, threads)
            size = 1
    ins, outs = _signature_details(it, len(xs), names)
    return it, ins, outs, size


def predict(model, xs, input_names, output_names, threads=None, batch=None):
    """Return a list of float arrays, one per output (in ``output_names`` order), over all samples.

    With ``threads`` None, a long evaluation (:data:`PROBE_CHUNKS` invokes or more) on a machine of
    several cores runs its first invoke on every core and its second on one, and goes on with the
    faster: LiteRT's int4 and some dynamic-range kernels ran 2-3x slower on two threads than on one
    here, float kernels faster. The outputs do not depend on it (each output value is computed by one
    thread either way).

    Args:
        model: path or bytes of a ``.tflite``.
        xs: one array per model input (in ``input_names`` order), each with the samples first.
    """
    names = (list(input_names), list(output_names))
    it, ins, outs, size = _ready(model, threads, xs, names, batch)
    total = len(xs[0])
    probe = threads is None and measure.machine.default_threads() > 1 and total >= PROBE_CHUNKS * size
    every_core, first_s, results = None, None, [[] for _ in outs]
    for index, start in enumerate(range(0, total, size)):
        if probe and index == 1:  # the second invoke on one thread, against the first on every core
            one = _ready(model, 1, xs, names, size)
            if one[3] == size:
                every_core, (it, ins, outs, _) = (it, ins, outs), one
        began = time.perf_counter()
        count = min(size, total - start)
        for detail, x in zip(ins, xs):
            chunk = x[start:start + size]
            if count < size:
                chunk = np.concatenate([chunk, np.zeros((size - count, *chunk.shape[1:]), chunk.dtype)])
            it.set_tensor(detail["index"], measure.quantize_input(chunk, detail))
        it.reset_all_variables()  # a fused LSTM keeps its state in variable tensors from one invoke to the next
        it.invoke()
        for found, detail in zip(results, outs):
            found.append(measure.dequantize_output(it.get_tensor(detail["index"]), detail)[:count])
        if probe and index == 0:
            first_s = time.perf_counter() - began
        elif every_core is not None and index == 1 and time.perf_counter() - began > first_s:
            it, ins, outs = every_core  # one thread was slower: back to every core
    return [np.concatenate(found) for found in results]
