"""What a model takes and gives, and what each output is for: its task and its metric.

A model has one or more inputs (vectors, sequences, images, token ids) and
one or more outputs. Each output has a task, detected from its shape, its
activation and the labels, or set by the person:

- ``classification``: class scores, one per class (top-1, and top-5 with more than five classes);
- ``binary``: one sigmoid score (accuracy at 0.5, and AUC);
- ``regression``: numbers (MAE, and RMSE).

The first output is the primary one unless another is chosen; its metric is
the run's headline figure. Importing this module does not import TensorFlow.
"""

from dataclasses import dataclass

import numpy as np

from optlib.errors import InputError

TASKS = ("classification", "binary", "regression")
# Each task's headline metric: its name, whether higher is better, and how the guide's Table 2 names its type.
METRICS = {
    "classification": ("Top-1 accuracy", True, "Top-1 accuracy"),
    "binary": ("Accuracy at 0.5", True, "Binary accuracy"),
    "regression": ("MAE", False, "Mean absolute error"),
}


@dataclass(frozen=True)
class Port:
    """One input or output of a model: its name, its shape without the batch, its dtype."""

    name: str
    shape: tuple
    dtype: str = "float32"
    activation: str = ""  # outputs only: the activation of the layer that makes it

    @property
    def integer(self):
        return np.issubdtype(np.dtype(self.dtype), np.integer)


def _activation(model, tensor):
    """Name of the activation that makes an output tensor ("softmax", "sigmoid", "linear", ...)."""
    history = getattr(tensor, "_keras_history", None)
    layer = history.layer if history is not None else None
    if layer is None:
        return ""
    symbol = getattr(layer, "symbol", "")  # a TFOpLambda such as tf.nn.softmax
    if symbol:
        return symbol.split(".")[-1]
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", "") if activation is not None else ""


def signature(model):
    """Return (inputs, outputs) of a Keras model (or a :mod:`~optlib.inputs.graph_models` one, which knows its
    own) as lists of :class:`Port`.

    Raises:
        InputError: an input with unknown sizes (other than the batch).
    """
    if hasattr(model, "ports"):
        return model.ports
    inputs = []
    for name, tensor in zip(model.input_names, model.inputs):
        shape = tuple(tensor.shape[1:])
        if any(d is None for d in shape):
            raise InputError(f"The model's input '{name}' has shape {shape} with unknown sizes; "
                             "save it with a fixed input shape.")
        inputs.append(Port(name, tuple(int(d) for d in shape), tensor.dtype.name))
    outputs = [Port(name, tuple(d for d in tensor.shape[1:]), tensor.dtype.name, _activation(model, tensor))
               for name, tensor in zip(model.output_names, model.outputs)]
    return inputs, outputs


def detect(output, labels=None):
    """Return the task of an output from its shape, its activation and (if given) its labels."""
    width = int(np.prod([d or 1 for d in output.shape])) if output.shape else 1
    if width == 1:
        return "binary" if output.activation == "sigmoid" else "regression"
    if len(output.shape) == 1 and output.activation == "softmax":
        return "classification"
    if len(output.shape) == 1 and labels is not None:
        y = np.asarray(labels)
        whole = np.issubdtype(y.dtype, np.integer) or (
            np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y)))
        return "classification" if y.ndim == 1 and whole else "regression"
    if len(output.shape) == 1:
        return "classification"  # a score vector without labels: taken as class scores (logits)
    return "regression"


def parse(text, outputs):
    """Parse a task setting into ({output name: task}, primary output name).

    ``text`` is "" or "auto" (detect every output), one task for a one-output
    model ("regression"), or ``NAME=TASK`` pairs separated by commas; a
    ``primary=NAME`` pair chooses the primary output.

    Raises:
        InputError: an unknown task or output name; the message lists the accepted ones.
    """
    names = [o.name for o in outputs]
    chosen, primary = {}, ""
    for part in [p.strip() for p in str(text or "").split(",") if p.strip() and p.strip() != "auto"]:
        key, sep, value = part.partition("=")
        if not sep:
            key, value = (names[0] if len(names) == 1 else ""), part
            if not key:
                raise InputError(f"The model has {len(names)} outputs ({', '.join(names)}); set a task per output "
                                 "as NAME=TASK, e.g. --task " + ",".join(f"{n}=regression" for n in names[:2]) + ".")
        key, value = key.strip(), value.strip()
        if key == "primary":
            if value not in names:
                raise InputError(f"No output named '{value}' to make primary; the model's outputs: {', '.join(names)}.")
            primary = value
            continue
        if key not in names:
            raise InputError(f"No output named '{key}'; the model's outputs: {', '.join(names)}.")
        if value not in TASKS:
            raise InputError(f"Unknown task '{value}'; tasks: {', '.join(TASKS)} (or auto).")
        chosen[key] = value
    return chosen, primary or names[0]


def check(task, output):
    """Raise InputError when a task cannot apply to an output of this shape."""
    width = int(np.prod([d or 1 for d in output.shape])) if output.shape else 1
    if task == "classification" and (len(output.shape) != 1 or width < 2):
        raise InputError(f"Output '{output.name}' has shape {output.shape}: classification needs a vector of "
                         "at least two class scores.")
    if task == "binary" and width != 1:
        raise InputError(f"Output '{output.name}' has shape {output.shape}: binary needs one score per sample.")


def metric_of(task):
    """(name, higher_is_better, Table 2 metric type) of a task's headline metric."""
    return METRICS[task]
