"""A job's quality figures: each output's metric for its task, and its fidelity to the Keras float model.

Every output of the LiteRT model is run on the test inputs and compared
with the labels (when the data has them) and with the original Keras
model's outputs on the same inputs (always). The primary output's figures
are the run's headline ones:

- ``task``, ``metric_name``, ``metric_value``, ``higher_is_better``;
- ``accuracy`` (top-1, or accuracy at 0.5 for a binary output) for classifiers, as before; None otherwise;
- ``top5``, ``auc``, ``mae``, ``rmse`` where the task has them;
- ``fidelity`` (SNR dB, cosine, max abs error, top-1 agreement) and the same as ``fidelity_*`` columns;
- ``outputs``: every output's name, task, metrics and fidelity.
"""

import numpy as np

from optlib.engine import metrics as figures
from optlib.errors import InputError
from optlib.inputs import tasks


def headline(data, outputs):
    """The primary output's headline metric of model outputs (one array per output), or None without labels."""
    labels = data.labels()
    if labels is None:
        return None
    index = [o.name for o in data.outputs].index(data.primary)
    return figures.score(data.tasks[data.primary], outputs[index], labels[data.primary])[1]


def measure(context, path, built_model, phase=None, scores=None):
    """Return the quality figures of the ``.tflite`` at ``path`` (see the module docstring).

    Args:
        phase: called with "evaluate" once the model ran on the test inputs and its task metrics are computed,
            with "float_reference" once the float model's outputs are there, then with "fidelity" once it is
            compared with them (where the time went).
        scores: a dict that receives the LiteRT outputs under "primary" (a one-input, one-output model's scores,
            one row per test input), for the checks that need them again (the microcontroller's agreement).
    """
    from optlib.engine import outputs as runner

    phase = phase or (lambda name: None)
    d = context.data
    names = [o.name for o in d.outputs]
    got = runner.predict(path, d.xs_test, [p.name for p in d.inputs], names)
    broken = sum(int(np.sum(~np.isfinite(values))) for values in got)
    if broken:  # a figure measured on such outputs would be a number about nothing
        raise InputError(f"the .tflite gives {broken:,} NaN or infinite output values on the "
                         f"{d.test_count:,} test inputs, so nothing was measured; the conversion went wrong.")
    if scores is not None and len(got) == 1 and len(d.inputs) == 1:
        scores["primary"] = got[0].reshape(len(got[0]), -1)
    labels = d.labels() if context.inputs.model.trained else None
    per_output = []
    for name, values in zip(names, got):
        entry = {"name": name, "task": d.tasks[name]}
        if labels is not None and name in labels:  # one set of labels may fit one output of several
            entry["metrics"], entry["value"] = figures.score(entry["task"], values, labels[name])
        per_output.append(entry)
    phase("evaluate")  # LiteRT on the test inputs, and the task's metrics
    reference = context.keras_outputs(context.model)  # once per sweep (another worker's, or made here)
    phase("float_reference")
    for entry, values, ref in zip(per_output, got, reference):
        entry["fidelity"] = figures.fidelity(entry["task"], values, ref)
    primary = per_output[names.index(d.primary)]
    task = primary["task"]
    metric_name, higher, kind = tasks.metric_of(task)
    value = primary.get("value")
    found = primary.get("metrics", {})
    result = {"task": task, "tasks": dict(d.tasks), "primary_output": d.primary, "metric_name": metric_name,
              "metric_type": kind, "metric_value": value, "higher_is_better": higher,
              "accuracy": value if task in ("classification", "binary") else None,
              "top5": found.get("top5"), "auc": found.get("auc"), "mae": found.get("mae"), "rmse": found.get("rmse"),
              "accuracy_samples": d.test_count, "labels": labels is not None,
              "fidelity": primary["fidelity"], "outputs": per_output}
    result.update({f"fidelity_{key}": value for key, value in primary["fidelity"].items()})
    if context.form == "tflite-quantized":  # no float model to compare with: its outputs are its own reference
        result["fidelity"] = None
        result.update({f"fidelity_{key}": None for key in primary["fidelity"]})
        for entry in per_output:
            entry["fidelity"] = None
    if not context.inputs.model.trained:
        result["accuracy_note"] = context.inputs.model.note
    elif labels is None:
        result["accuracy_note"] = "no labels in the data: fidelity to the float model only"
    else:
        keras_value = headline(d, context.keras_outputs(built_model or context.model))
        result["keras_metric_value"] = keras_value
        result["keras_accuracy"] = keras_value if task in ("classification", "binary") else None
    phase("fidelity")  # against the float model's outputs, and a fine-tuned Keras model's own metric
    return result
