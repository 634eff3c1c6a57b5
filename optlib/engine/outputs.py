"""Run a LiteRT model on every test input and return all of its outputs, in the Keras model's order.

Inputs and outputs are matched by name through the model's signature (a
converter may order the tensors otherwise: two inputs ``feat``, ``tok``
come out as ``tok``, ``feat``). Float inputs are quantized for integer
models; integer inputs (token ids) are passed as they are. Variable tensors
(the state of a fused LSTM) are reset before every invoke, so no batch
starts from the state the previous one left.
"""

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


def predict(model, xs, input_names, output_names, threads=None, batch=None):
    """Return a list of float arrays, one per output (in ``output_names`` order), over all samples.

    Args:
        model: path or bytes of a ``.tflite``.
        xs: one array per model input (in ``input_names`` order), each with the samples first.
    """
    it = measure.interpreter(model, threads)
    ins, outs = _signature_details(it, len(xs), (list(input_names), list(output_names)))
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
    ins, outs = _signature_details(it, len(xs), (list(input_names), list(output_names)))
    results = [[] for _ in outs]
    for start in range(0, total, size):
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
    return [np.concatenate(found) for found in results]
