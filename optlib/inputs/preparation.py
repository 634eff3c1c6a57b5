"""Checking raw arrays against a model and preparing them for it: the :class:`Dataset` a job feeds.

:func:`load` reads the raw arrays (:mod:`optlib.inputs.readers`), checks them (empty, NaN/inf, dtypes,
label range, shapes) before any work starts, and prepares them for a model with an explicit recipe
(resize, channels, scale) that is recorded with every result.
"""

import functools

import numpy as np

from optlib.errors import InputError
from optlib.inputs import limits
from optlib.inputs.readers import READERS, SPLIT_SEED, check_x


def _with_channels(x):
    return x[..., None] if x.ndim == 3 else x


def _recipe(raw_shape, input_shape, scale, value_range):
    recipe = {"source_shape": list(raw_shape[1:]), "model_input": list(input_shape),
              "scale": f"x / {value_range:g} -> [{'-1, 1' if scale == '-1..1' else '0, 1'}]"}
    if len(input_shape) == 1:
        recipe["flatten"] = True
        return recipe
    src = raw_shape[1:] if len(raw_shape) == 4 else (*raw_shape[1:], 1)
    if tuple(src[:2]) != tuple(input_shape[:2]):
        recipe["resize"] = f"{src[0]}x{src[1]} -> {input_shape[0]}x{input_shape[1]} (bilinear)"
    if src[2] != input_shape[2]:
        recipe["channels"] = f"{src[2]} -> {input_shape[2]}"
    return recipe


def check_fits(raw_shape, input_shape, name):
    """Raise InputError when images of ``raw_shape`` cannot feed ``input_shape``."""
    if len(input_shape) == 1:
        if int(np.prod(raw_shape[1:])) != input_shape[0]:
            raise InputError(f"The model expects vectors of {input_shape[0]} values, but '{name}' "
                             f"has samples of shape {tuple(raw_shape[1:])}.")
        return
    if len(input_shape) != 3:
        raise InputError(f"The model's input shape {tuple(input_shape)} is not an image or a vector; "
                         "only image (H, W, C) and vector models are supported.")
    if len(raw_shape) not in (3, 4):
        raise InputError(f"'{name}' has samples of shape {tuple(raw_shape[1:])}; images (H, W) "
                         f"or (H, W, C) are needed for a model that takes {tuple(input_shape)}.")
    channels = raw_shape[3] if len(raw_shape) == 4 else 1
    if channels not in (1, 3) or input_shape[2] not in (1, 3):
        if channels != input_shape[2]:
            raise InputError(f"'{name}' has {channels}-channel images but the model takes "
                             f"{input_shape[2]} channels.")


PREPARE_CHUNK = 256  # samples converted at a time: the only float copies besides the result


def prepare(x, input_shape, scale, value_range):
    """Return float32 model inputs from raw images, following the recipe.

    The result is allocated once and filled a chunk at a time, so preparing takes the raw data, the
    float32 result and one chunk's working copies, never several full copies.
    """
    out = np.empty((len(x), *input_shape), np.float32)
    for start in range(0, len(x), PREPARE_CHUNK):
        out[start:start + PREPARE_CHUNK] = _prepare_chunk(x[start:start + PREPARE_CHUNK], input_shape, scale,
                                                         value_range).reshape(-1, *input_shape)
    return out


def _prepare_chunk(x, input_shape, scale, value_range):
    x = x.astype(np.float32)
    if value_range:
        x /= value_range
    if len(input_shape) == 1:
        x = x.reshape(len(x), -1)
    else:
        x = _with_channels(x)
        if x.shape[3] != input_shape[2]:
            x = np.repeat(x, 3, axis=3) if x.shape[3] == 1 else x.mean(axis=3, keepdims=True)
        if tuple(x.shape[1:3]) != tuple(input_shape[:2]):
            from optlib._keras import tf

            x = tf().image.resize(x, input_shape[:2]).numpy()
    if scale == "-1..1":
        x = x * 2.0 - 1.0
    return x


def _as_named(value, ports, name, what):
    """{port name: array} from one array (a one-port model) or from arrays named per port.

    Raises:
        InputError: the names do not match the model's, naming the expected keys.
    """
    names = [p.name for p in ports]
    if value is None:
        return None
    if not isinstance(value, dict):
        fitting = [p.name for p in ports if _labels_fit(value, p)] if what == "output" else []
        if len(names) != 1 and len(fitting) == 1:  # one set of labels that fits exactly one output: its labels
            return {fitting[0]: value}
        if len(names) != 1:
            fit = (f" The labels fit {len(fitting)} of them, so which one they belong to is ambiguous."
                   if what == "output" and fitting else "")
            raise InputError(f"'{name}': the model has {len(names)} {what}s ({', '.join(names)}); name each one's "
                             f"arrays {', '.join(f'x_test/{n}' if what == 'input' else f'y_test/{n}' for n in names)} "
                             f"(or with '_' instead of '/').{fit}")
        return {names[0]: value}
    if len(names) == 1 and len(value) == 1 and names[0] not in value:
        return {names[0]: next(iter(value.values()))}
    if set(value) != set(names):
        raise InputError(f"'{name}' names {what} arrays {', '.join(sorted(value))}, but the model's {what}s are "
                         f"{', '.join(names)}: name the arrays after them (e.g. x_test/{names[0]}).")
    return {n: value[n] for n in names}


def _labels_fit(y, port):
    """Whether one array of labels fits an output: class indices or one-hot rows for a class-score vector,
    one number per sample for a one-score output (and only there)."""
    y = np.asarray(y)
    width = int(np.prod([d or 1 for d in port.shape])) if port.shape else 1
    if width == 1:
        return y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)
    if len(port.shape) != 1:
        return y.ndim >= 2 and int(np.prod(y.shape[1:])) == width
    if y.ndim == 2:
        return y.shape[1] == width
    whole = np.issubdtype(y.dtype, np.integer) or (np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y)))
    return y.ndim == 1 and bool(whole) and y.size > 0 and 0 <= y.min() and y.max() < width


def _check_labels(y, output, task, name, which, count):
    """Check the labels of one output for its task."""
    if len(y) != count:
        raise InputError(f"'{name}': {which} has {count} samples but {len(y)} labels for output '{output.name}'.")
    if not np.issubdtype(y.dtype, np.number) or (np.issubdtype(y.dtype, np.floating) and not np.all(np.isfinite(y))):
        raise InputError(f"'{name}': {which} labels of output '{output.name}' must be finite numbers.")
    if task == "regression":
        width = int(np.prod([d or 1 for d in output.shape]))
        if int(np.prod(y.shape[1:])) != width:
            raise InputError(f"'{name}': {which} targets of output '{output.name}' have shape {y.shape[1:]}, "
                             f"but the output has shape {output.shape}.")
        return
    whole = np.issubdtype(y.dtype, np.integer) or np.all(y == np.round(y))
    if task == "binary":
        if not whole or not np.all((y == 0) | (y == 1)):
            raise InputError(f"'{name}': {which} labels of the binary output '{output.name}' must be 0 or 1.")
        return
    classes = int(output.shape[0])
    if y.ndim == 2 and y.shape[1] == classes:
        return  # one-hot
    if y.ndim != 1 or not whole:
        raise InputError(f"'{name}': {which} labels must be whole numbers (class indices), one per sample, "
                         f"got {y.dtype} of shape {y.shape}.")
    low, high = int(np.min(y)), int(np.max(y))
    if low < 0 or high >= classes:
        raise InputError(f"'{name}': {which} labels run from {low} to {high}, but the model "
                         f"predicts {classes} classes (0 to {classes - 1}).")


def _is_image(port):
    return len(port.shape) == 3 and not port.integer


def _pixels(port, raw_shape, classifier=True):
    """True for inputs prepared like pixels (resize, channels, scale by the value range): images, and
    vectors of a classifier (images flattened, or features as the classic recipe scaled them)."""
    return _is_image(port) or (len(port.shape) == 1 and not port.integer and (len(raw_shape) > 2 or classifier))


def _input_recipe(port, raw_shape, scale, value_range, classifier=True):
    """What is done to the raw arrays of one input, as data."""
    if port.integer:
        return {"source_shape": list(raw_shape[1:]), "model_input": list(port.shape), "dtype": port.dtype,
                "values": "integers (e.g. token ids) passed as they are, never scaled"}
    if _pixels(port, raw_shape, classifier):
        shape = _with_channels(np.empty((1, *raw_shape[1:]))).shape if len(port.shape) == 3 else raw_shape
        return _recipe(shape, port.shape, scale, value_range)
    recipe = {"source_shape": list(raw_shape[1:]), "model_input": list(port.shape), "dtype": "float32"}
    recipe["scale"] = f"x / {value_range:g}" if value_range > 1.0 else "as given (no scaling)"
    if tuple(raw_shape[1:]) != tuple(port.shape):
        recipe["reshape"] = f"{tuple(raw_shape[1:])} -> {tuple(port.shape)}"
    return recipe


def _check_input_fits(raw_shape, port, name):
    if _pixels(port, raw_shape):
        check_fits(raw_shape, port.shape, name)
        return
    if int(np.prod(raw_shape[1:])) != int(np.prod(port.shape)):
        raise InputError(f"The model's input '{port.name}' takes samples of shape {port.shape}, but '{name}' "
                         f"has samples of shape {tuple(raw_shape[1:])}.")


class Dataset:
    """A dataset prepared for one model: every input, and labels per output if any. Splits are prepared on first use.

    Attributes:
        inputs, outputs: the model's ports (:class:`optlib.inputs.tasks.Port`).
        tasks: {output name: task}; primary: the output whose metric is the headline figure.
        recipe: what was done to the raw arrays: the single input's recipe, or ``{"inputs": {name: recipe}}``.
    """

    def __init__(self, source, raw, inputs, outputs, tasks_, primary, scale, declared_range=0.0):
        self.source, self.raw, self.scale = source, raw, scale
        self.inputs, self.outputs, self.tasks, self.primary = list(inputs), list(outputs), dict(tasks_), primary
        self.x = {"test": _as_named(raw.x_test, inputs, source.name, "input"),
                  "train": _as_named(raw.x_train, inputs, source.name, "input")}
        self.y = {"test": _as_named(raw.y_test, outputs, source.name, "output"),
                  "train": _as_named(raw.y_train, outputs, source.name, "output")}
        self.input_shape = tuple(inputs[0].shape)
        primary_port = next(o for o in outputs if o.name == primary)
        self.num_classes = int(primary_port.shape[0]) if self.tasks[primary] == "classification" else 0
        self.classifier = "classification" in self.tasks.values()
        self.value_ranges, recipes = {}, {}
        for port in inputs:
            x = self.x["test"][port.name]
            if port.integer:
                vmax = 1.0
            elif _pixels(port, x.shape, self.classifier) or declared_range:
                vmax = raw.value_range or float(max(abs(np.max(x)), abs(np.min(x)))) or 1.0  # no |x| copy
            else:
                vmax = 1.0  # vectors, sequences and other shapes from a file: as given
            self.value_ranges[port.name] = vmax if vmax > 1.0 else 1.0
            recipes[port.name] = _input_recipe(port, x.shape, scale, self.value_ranges[port.name], self.classifier)
        self.recipe = recipes[inputs[0].name] if len(inputs) == 1 else {"inputs": recipes}
        self.value_range = self.value_ranges[inputs[0].name]
        self.class_names = raw.class_names or [str(i) for i in range(self.num_classes)]

    @property
    def has_labels(self):
        return self.y["test"] is not None

    @property
    def has_training_data(self):
        return self.x["train"] is not None and self.y["train"] is not None

    @property
    def train_count(self):
        return len(next(iter(self.x["train"].values()))) if self.x["train"] else 0

    @property
    def test_count(self):
        return len(next(iter(self.x["test"].values())))

    def _prepare(self, split, picks=None):
        prepared = []
        for port in self.inputs:
            x = self.x[split][port.name]
            x = x if picks is None else x[picks]
            if port.integer:
                prepared.append(np.ascontiguousarray(x.astype(port.dtype)))
            elif _pixels(port, x.shape, self.classifier):
                prepared.append(prepare(x, port.shape, self.scale, self.value_ranges[port.name]))
            else:
                x = x.astype(np.float32) / self.value_ranges[port.name]
                prepared.append(np.ascontiguousarray(x.reshape(len(x), *port.shape), dtype=np.float32))
        return prepared

    def _shape(self, prepared):
        """One array for a one-input model, else {input name: array} (what Keras and the converter take)."""
        if len(self.inputs) == 1:
            return prepared[0]
        return {port.name: array for port, array in zip(self.inputs, prepared)}

    @functools.cached_property
    def xs_test(self):
        """Prepared test inputs: one array per model input, in the model's order."""
        return self._prepare("test")

    @property
    def x_test(self):
        return self._shape(self.xs_test)

    def labels(self, split="test", count=0):
        """{output name: labels} of a split (the first ``count`` samples), or None without labels."""
        found = self.y[split]
        if found is None:
            return None
        return {name: (y[:count] if count else y) for name, y in found.items()}

    @property
    def y_test(self):
        labels = self.labels()
        return None if labels is None else labels[self.primary]

    def _target(self, name, y):
        task = self.tasks[name]
        if task == "classification":
            return np.argmax(y, axis=1) if y.ndim == 2 else y.astype(np.int64)
        return y.astype(np.float32).reshape(len(y), *[d or 1 for d in
                                                     next(o for o in self.outputs if o.name == name).shape])

    @functools.lru_cache(maxsize=2)
    def training(self, count=0):
        """Return prepared (x, y) of the training split: all of it, or the first ``count`` samples.

        ``y`` is one array for a one-output model, else a list of targets in the model's output order.

        Raises:
            InputError: the dataset has no training split.
        """
        if not self.has_training_data:
            raise InputError(f"'{self.source.name}' has no training split (x_train, y_train); "
                             "training-time schemes need labelled training data.")
        missing = [o.name for o in self.outputs if o.name not in self.y["train"]]
        if missing:
            raise InputError(f"'{self.source.name}' has labels for output '{next(iter(self.y['train']))}' only; "
                             f"fine-tuning needs labels for every output (none for {', '.join(missing)}).")
        count = count if count and count > 0 else self.train_count
        x = self._shape(self._prepare("train", slice(0, count)))
        ys = {name: self._target(name, y[:count]) for name, y in self.y["train"].items()}
        return x, (ys[self.outputs[0].name] if len(self.outputs) == 1 else [ys[o.name] for o in self.outputs])

    @functools.lru_cache(maxsize=4)
    def representative(self, count):
        """Return up to ``count`` prepared inputs for calibration, from the training split if any."""
        split = "train" if self.x["train"] is not None else "test"
        total = len(next(iter(self.x[split].values())))
        picks = np.sort(np.random.default_rng(SPLIT_SEED).permutation(total)[:count])
        return self._shape(self._prepare(split, picks))

    def summary(self):
        """Return plain facts about the dataset for display."""
        return {"name": self.source.name, "classes": self.num_classes,
                "test_samples": self.test_count, "train_samples": self.train_count,
                "recipe": self.recipe, "notes": list(self.raw.notes), "labels": self.has_labels,
                "tasks": dict(self.tasks), "primary": self.primary,
                "inputs": [{"name": p.name, "shape": list(p.shape), "dtype": p.dtype,
                            "recipe": _input_recipe(p, self.x["test"][p.name].shape, self.scale,
                                                    self.value_ranges[p.name], self.classifier)}
                           for p in self.inputs],
                "outputs": [{"name": o.name, "shape": list(o.shape), "activation": o.activation,
                             "task": self.tasks[o.name]} for o in self.outputs]}


def model_io(model):
    """Return (shape of the first input without batch, classes of the first output or 0) of a Keras model.

    Raises:
        InputError: an input has unknown sizes.
    """
    from optlib.inputs import tasks

    inputs, outputs = tasks.signature(model)
    first = outputs[0]
    classes = int(first.shape[0]) if len(first.shape) == 1 and (first.shape[0] or 0) >= 2 else 0
    return inputs[0].shape, classes


def load(source, model, scale="0..1", task=""):
    """Read, check and wrap a dataset for a Keras model.

    Args:
        task: "" or "auto" to detect each output's task, or a setting :func:`optlib.inputs.tasks.parse` reads.

    Raises:
        InputError: the data is unreadable, malformed or does not fit the model.
    """
    from optlib.inputs import tasks

    inputs, outputs = tasks.signature(model)
    limits.check_data(source)  # what the file declares, before any of it is read
    hw = inputs[0].shape[:2] if len(inputs) == 1 and _is_image(inputs[0]) else None
    raw = READERS[source.kind](source, hw)
    chosen, primary = tasks.parse(task, outputs)
    splits = [("the test split", raw.x_test, raw.y_test)]
    if raw.x_train is not None:
        splits.append(("the training split", raw.x_train, raw.y_train))
    task_of = {}
    for which, x, y in splits:
        xs = _as_named(x, inputs, source.name, "input")
        ys = _as_named(y, outputs, source.name, "output")
        for port in inputs:
            check_x(xs[port.name], source.name, which + (f" (input '{port.name}')" if len(inputs) > 1 else ""))
            _check_input_fits(xs[port.name].shape, port, source.name)
            if port.integer and not np.all(xs[port.name] == np.round(xs[port.name])):
                raise InputError(f"'{source.name}': the model's input '{port.name}' takes integers "
                                 f"({port.dtype}), but {which} has fractions.")
        if len({len(a) for a in xs.values()}) > 1:
            raise InputError(f"'{source.name}': {which} has inputs with different numbers of samples.")
        count = len(next(iter(xs.values())))
        if which == "the test split":
            for port in inputs:
                limits.check_prepared(count, port.shape, source.name)
        for output in outputs:
            labels = None if ys is None else ys.get(output.name)
            if output.name not in task_of:
                task_of[output.name] = chosen.get(output.name) or tasks.detect(output, labels)
                tasks.check(task_of[output.name], output)
            if labels is not None:
                _check_labels(labels, output, task_of[output.name], source.name, which, count)
    if len(inputs) == 1 and _is_image(inputs[0]) and raw.x_train is not None \
            and raw.x_train.shape[1:] != raw.x_test.shape[1:]:
        raise InputError(f"'{source.name}': training images have shape {raw.x_train.shape[1:]} "
                         f"but test images {raw.x_test.shape[1:]}.")
    declared = raw.value_range if source.kind in ("digits", "folder", "zip", "tfds") else 0.0
    labelled = _as_named(raw.y_test, outputs, source.name, "output")
    if labelled is not None and len(labelled) < len(outputs):  # one set of labels for one of several outputs
        (only,) = labelled
        if primary not in labelled and not any(part.strip().startswith("primary=") for part in str(task).split(",")):
            primary = only
        raw.notes.append(f"The labels fit output '{only}' only: its metric is measured on them; the other "
                         "outputs are measured by fidelity to the float model.")
    return Dataset(source, raw, inputs, outputs, task_of, primary, scale, declared)
