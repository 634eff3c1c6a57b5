"""Training-time schemes: quantization-aware training, pruning, clustering and their
collaborative combinations from the TensorFlow Model Optimization Toolkit.

One builder, :func:`build`, serves every training scheme: it runs the
techniques of the scheme's registry entry in order, each through its row of
:data:`TECHNIQUES` (a :class:`Technique`: its label, which layers it takes,
the function that wraps, fine-tunes and strips, and the code that repeats
it), then converts with the entry's ``recipe``. Each step clones the model
(the toolkit's wrappers reuse the original layers, so training them would
change the caller's model) and fine-tunes on the training split with fixed
seeds. A new technique is one :func:`register_technique` call.

    >>> TECHNIQUES["prune"].label
    'pruning'
"""

import math
import re
import time
from dataclasses import dataclass, field

from optlib.engine import schemes
from optlib.engine.convert import convert
from optlib.errors import InputError
from optlib.engine.schemes.base import Built
from optlib.engine.schemes.post_training import recipe_for


@dataclass(frozen=True)
class Step:
    """A step a technique records in a run's ``training`` log, and how generated code repeats it.

    Attributes:
        note: one line on what the step does (the comment above its code).
        code: function(recorded step dict) -> lines of code (a line may be a ``(code, comment)`` pair); it
            raises ValueError for a value that is not plain data (use :func:`code_name`, :func:`code_number`).
    """

    note: str
    code: object


@dataclass(frozen=True)
class Technique:
    """One fine-tuning technique of a training scheme, as a row of :data:`TECHNIQUES`.

    Attributes:
        label: its name in messages and progress ("pruning").
        run: function(model, training) -> the fine-tuned model with plain layers again; it works on
            ``training.copy(model)`` (a copy of the job's model, never that model itself), fits with
            ``training.fit`` and records its step with ``training.record`` (a :class:`Training`).
        supports: function() -> a predicate that says whether the technique can wrap a layer (the toolkit's
            registry); None: every layer.
        steps: the step names it records, each a :class:`Step` (codegen repeats a run from them).
        imports: lines the generated code needs once before these steps (e.g. ``sparsity = ...``).
    """

    label: str
    run: object
    supports: object = None
    steps: dict = field(default_factory=dict)
    imports: tuple = ()


# --- Pre-flight: refuse unsupported layers before any training time is spent --

def preflight(model, techniques):
    """Raise InputError naming the first layer a technique cannot wrap (or an unknown technique).

    Args:
        model: the Keras model.
        techniques: names of :data:`TECHNIQUES` ("prune", "cluster", "quantize", ...).
    """
    from optlib._keras import keras

    k = keras()
    for technique in techniques:
        if technique not in TECHNIQUES:
            raise InputError(f"Unknown training technique '{technique}'. Known: {', '.join(TECHNIQUES)}.")
        label, supports = TECHNIQUES[technique].label, TECHNIQUES[technique].supports
        supports = supports() if supports else (lambda layer: True)
        for layer in model.layers:
            if isinstance(layer, k.layers.InputLayer):
                continue
            if isinstance(layer, k.Model):
                raise InputError(f"Layer '{layer.name}' is a nested model; {label} needs a flat model "
                                 "(rebuild it without models inside models).")
            if not supports(layer):
                raise InputError(f"Layer '{layer.name}' ({type(layer).__name__}) is not supported by "
                                 f"{label} in the Model Optimization Toolkit; it needs a custom config "
                                 "for that layer, or a model without it.")


def _toolkit():
    from optlib._keras import tfmot

    return tfmot()


def _prunable():
    _toolkit()
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry

    return PruneRegistry.supports


def _clusterable():
    _toolkit()
    from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import ClusteringRegistry

    return ClusteringRegistry.supports


def _quantizable():
    _toolkit()
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit.default_8bit_quantize_registry import (  # noqa: E501
        Default8BitQuantizeRegistry)

    registry = Default8BitQuantizeRegistry()
    return lambda layer: registry.supports(layer) or _folded_into_convolution(layer)


def _folded_into_convolution(layer):
    """A BatchNormalization right after a convolution: the toolkit's quantization folds it into the
    convolution (its Conv2DBatchNormFold transforms), so quantization-aware training takes it."""
    from optlib._keras import keras

    k = keras()
    if not isinstance(layer, k.layers.BatchNormalization) or len(layer.inbound_nodes) != 1:
        return False
    before = layer.inbound_nodes[0].inbound_layers
    return isinstance(before, (k.layers.Conv2D, k.layers.DepthwiseConv2D)) and len(before.outbound_nodes) == 1


# --- Fine-tuning ---------------------------------------------------------------

def _fresh_copy(model):
    from optlib._keras import keras

    copy = keras().models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def task_losses(data):
    """The fine-tuning loss of each output for its task, with the metric Keras reports (lists for several outputs).

    Class scores: sparse categorical cross-entropy (from logits unless the output is a softmax);
    one binary score: binary cross-entropy (from logits unless a sigmoid); numbers: mean squared error.
    """
    from optlib._keras import keras

    k = keras()
    losses, shown = {}, {}
    for output in data.outputs:
        task = data.tasks[output.name]
        if task == "classification":
            losses[output.name] = k.losses.SparseCategoricalCrossentropy(from_logits=output.activation != "softmax")
            shown[output.name] = ["accuracy"]
        elif task == "binary":
            losses[output.name] = k.losses.BinaryCrossentropy(from_logits=output.activation != "sigmoid")
            shown[output.name] = ["accuracy"]
        else:
            losses[output.name] = k.losses.MeanSquaredError()
            shown[output.name] = ["mae"]
    names = [o.name for o in data.outputs]  # a list in output order: QAT's wrappers rename the output layers
    if len(names) == 1:
        return losses[names[0]], shown[names[0]]
    return [losses[n] for n in names], [shown[n] for n in names]


class _Stages:
    """Maps progress within each fine-tuning stage onto the job's 0..0.9 range."""

    def __init__(self, job, count):
        self.job, self.count, self.done = job, count, 0

    def callback(self, name, epochs, steps):
        from optlib._keras import keras

        stages = self

        class Progress(keras().callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if batch % 5 == 0 or batch == steps - 1:
                    self._report((batch + 1) / steps)

            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch

            def _report(self, within_epoch):
                share = (self.epoch + within_epoch) / epochs
                stages.job.progress(0.9 * (stages.done + share) / stages.count,
                                    f"{name}: epoch {self.epoch + 1}/{epochs}")

        return Progress()


def _fit(model, job, stages, name, extra_callbacks=()):
    from optlib._keras import keras, set_seed

    k = keras()
    settings = job.settings
    set_seed(settings["seed"])
    epochs, batch = int(settings["epochs"]), int(settings["batch_size"])
    x, y = job.data.training(int(settings.get("train_samples") or 0))
    steps = math.ceil(len(x) / batch)
    loss, shown = task_losses(job.data)
    model.compile(optimizer=k.optimizers.Adam(float(settings["learning_rate"])), loss=loss, metrics=shown)
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=epochs, shuffle=True, verbose=0,
              callbacks=[*extra_callbacks, stages.callback(name, epochs, steps)])
    stages.done += 1
    return time.perf_counter() - start


def _steps(job):
    samples = job.data.train_count
    if int(job.settings.get("train_samples") or 0) > 0:
        samples = min(samples, int(job.settings["train_samples"]))
    return math.ceil(samples / int(job.settings["batch_size"])) * int(job.settings["epochs"])


def pruning_schedule(target, steps):
    """Return a schedule that reaches ``target`` sparsity within ``steps`` training steps.

    A polynomial ramp that ends at 70% of the fine-tune, pruning every tenth of
    it, leaves the rest of the steps to recover. (``frequency=100`` on a short
    fine-tune would never prune at all.)
    """
    from optlib._keras import tfmot

    sparsity = tfmot().sparsity.keras
    frequency = max(1, steps // 10)
    end = frequency * max(1, int(steps * 0.7) // frequency)
    if steps < 4:
        return sparsity.ConstantSparsity(target, begin_step=0, frequency=1), {
            "schedule": "ConstantSparsity", "target_sparsity": target, "begin_step": 0, "frequency": 1}
    return (sparsity.PolynomialDecay(initial_sparsity=0.0, final_sparsity=target, begin_step=0,
                                     end_step=end, frequency=frequency),
            {"schedule": "PolynomialDecay", "initial_sparsity": 0.0, "final_sparsity": target,
             "begin_step": 0, "end_step": end, "frequency": frequency})



class Training:
    """What a technique's ``run`` works with: the job, the scheme's entry, the fine-tuning and the step log.

    Attributes:
        job: the :class:`~optlib.engine.schemes.base.Job` (settings, data, progress).
        entry: the scheme's registry entry (its techniques, its ``preserve``).
        log: the steps recorded so far (plain data, stored with the run as ``recipe["training"]``).
    """

    def __init__(self, job, entry):
        self.job, self.entry, self.log = job, entry, []
        self.stages = _Stages(job, len(entry.techniques))

    def copy(self, model):
        """What a technique may wrap: a fresh copy of the job's model with its weights (the toolkit's wrappers reuse
        the layers they wrap, and every job of a worker shares that model), or ``model`` itself when an earlier
        step of this scheme made it (nothing else holds it: copying it again cost half a second a step)."""
        return _fresh_copy(model) if model is self.job.model else model

    def fit(self, model, name, callbacks=()):
        """Fine-tune ``model`` on the training split with the job's settings (one stage of the progress bar);
        return the seconds it took."""
        return _fit(model, self.job, self.stages, name, callbacks)

    def record(self, step, seconds):
        """Add a step (plain data with a ``"step"`` name of the technique's ``steps``) and its training time."""
        self.log.append({**step, "train_s": round(seconds, 2)})


def _prune(model, training):
    sparsity = _toolkit().sparsity.keras
    schedule, described = pruning_schedule(float(training.job.settings["sparsity"]), _steps(training.job))
    wrapped = sparsity.prune_low_magnitude(training.copy(model), pruning_schedule=schedule)
    seconds = training.fit(wrapped, "pruning", [sparsity.UpdatePruningStep()])
    training.record({"step": "prune_low_magnitude", **described}, seconds)
    return sparsity.strip_pruning(wrapped)


def _cluster(model, training):
    clustering, settings = _toolkit().clustering.keras, training.job.settings
    preserve_sparsity = "prune" in training.entry.techniques
    init = getattr(clustering.CentroidInitialization, str(settings["centroids"]).upper())
    kwargs = {"preserve_sparsity": True} if preserve_sparsity else {}
    wrapped = clustering.cluster_weights(training.copy(model), number_of_clusters=int(settings["clusters"]),
                                         cluster_centroids_init=init, **kwargs)
    seconds = training.fit(wrapped, "clustering")
    training.record({"step": "cluster_weights", "number_of_clusters": int(settings["clusters"]),
                     "cluster_centroids_init": init.name if hasattr(init, "name") else str(init),
                     "preserve_sparsity": preserve_sparsity}, seconds)
    return clustering.strip_clustering(wrapped)


def _qat(model, training):
    tfmot = _toolkit()
    quantization, preserve = tfmot.quantization.keras, training.entry.preserve
    copy = training.copy(model)
    if not preserve:
        wrapped, scheme = quantization.quantize_model(copy), "Default8BitQuantizeScheme"
    else:
        combine = tfmot.experimental.combine
        preserving = {"prune": combine.Default8BitPrunePreserveQuantizeScheme(),
                      "cluster": combine.Default8BitClusterPreserveQuantizeScheme(),
                      "prune_cluster": combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)}
        wrapped = quantization.quantize_apply(quantization.quantize_annotate_model(copy), preserving[preserve])
        scheme = type(preserving[preserve]).__name__ + ("(preserve_sparsity=True)" if preserve == "prune_cluster"
                                                        else "")
    seconds = training.fit(wrapped, "quantization-aware training")
    training.record({"step": "quantize_apply" if preserve else "quantize_model", "scheme": scheme}, seconds)
    return wrapped


# --- Code that repeats a recorded step (optlib.views.codegen writes the rest of the script) --------

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SCHEDULES = {"PolynomialDecay", "ConstantSparsity"}
# Schemes that tfmot's collaborative optimization offers for quantize_apply.
PRESERVE_SCHEMES = {
    "Default8BitPrunePreserveQuantizeScheme": "keeps the zeros from pruning",
    "Default8BitClusterPreserveQuantizeScheme": "keeps the shared cluster values",
}


def code_name(value, what):
    """Return ``value`` if it is a plain identifier; refuse anything else that would go into code.

    Raises:
        ValueError: naming ``what`` and the value.
    """
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(f"Cannot generate code: {what} {value!r} is not a plain name.")
    return value


def code_number(value, what):
    """Return the literal of a finite number; refuse anything else that would go into code.

    Raises:
        ValueError: naming ``what`` and the value.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"Cannot generate code: {what} {value!r} is not a number.")
    return repr(value)


def _prune_code(step):
    schedule = step.get("schedule")
    if schedule not in _SCHEDULES:
        raise ValueError(f"Cannot generate code: unknown pruning schedule {schedule!r}; "
                         f"known: {', '.join(sorted(_SCHEDULES))}.")
    args = [f"{code_name(k, 'schedule argument')}={code_number(v, k)}" for k, v in step.items()
            if k not in ("step", "schedule", "train_s")]
    call = f"schedule = sparsity.{schedule}({', '.join(args)})"
    lines = [call] if len(call) <= 100 else [f"schedule = sparsity.{schedule}(", *[f"    {a}," for a in args], ")"]
    return lines + ["model = sparsity.prune_low_magnitude(model, pruning_schedule=schedule)",
                    ("fine_tune(model, callbacks=[sparsity.UpdatePruningStep()])", "the step counter pruning needs"),
                    ("model = sparsity.strip_pruning(model)", "plain layers again, zeros kept")]


def _cluster_code(step):
    init = str(step.get("cluster_centroids_init", "KMEANS_PLUS_PLUS")).rsplit(".", 1)[-1].upper()
    clusters = code_number(step.get("number_of_clusters"), "number_of_clusters")
    lines = ["model = clustering.cluster_weights(",
             "    model,",
             f"    number_of_clusters={clusters},",
             f"    cluster_centroids_init=clustering.CentroidInitialization.{code_name(init, 'centroid init')},"]
    if step.get("preserve_sparsity"):
        lines.append(("    preserve_sparsity=True,", "keep the zeros from pruning"))
    return lines + [")", "fine_tune(model)",
                    ("model = clustering.strip_clustering(model)", "plain layers again, shared values kept")]


def _quantize_apply_code(step):
    text = str(step.get("scheme", ""))
    match = re.match(r"^(\w+)(\(preserve_sparsity=True\))?$", text)
    if not match or match.group(1) not in PRESERVE_SCHEMES:
        raise ValueError(f"Cannot generate code: unknown quantization scheme {text!r}; "
                         f"known: {', '.join(PRESERVE_SCHEMES)}.")
    args = "preserve_sparsity=True" if match.group(2) else ""
    return [(f"preserving = tfmot.experimental.combine.{match.group(1)}({args})",
             PRESERVE_SCHEMES[match.group(1)] + (" and the zeros" if args else "")),
            "model = quantization.quantize_apply(quantization.quantize_annotate_model(model), preserving)",
            "fine_tune(model)"]


# --- The technique table: one row per technique, in the order generated code imports them --------

TECHNIQUES = {
    "prune": Technique(
        "pruning", _prune, _prunable,
        {"prune_low_magnitude": Step("Magnitude pruning: zero the smallest weights during a short fine-tune",
                                     _prune_code)},
        ("sparsity = tfmot.sparsity.keras",)),
    "cluster": Technique(
        "clustering", _cluster, _clusterable,
        {"cluster_weights": Step("Weight clustering: a few shared values per kernel", _cluster_code)},
        ("clustering = tfmot.clustering.keras",)),
    "quantize": Technique(
        "quantization-aware training", _qat, _quantizable,
        {"quantize_model": Step("Quantization-aware training: simulate int8 during a short fine-tune",
                                lambda step: ["model = quantization.quantize_model(model)", "fine_tune(model)"]),
         "quantize_apply": Step("Quantization-aware training that preserves the previous step's structure",
                                _quantize_apply_code)},
        ("quantization = tfmot.quantization.keras",)),
}


def register_technique(name, technique):
    """Add a fine-tuning technique (a plugin's entry point); a scheme entry names it in ``techniques``; return it.

    Raises:
        ValueError: the name or one of its step names is taken.
    """
    taken = {step for known in TECHNIQUES.values() for step in known.steps}
    if name in TECHNIQUES or taken & set(technique.steps):
        raise ValueError(f"a technique named '{name}' (or one of its steps) is already registered")
    TECHNIQUES[name] = technique
    return technique


def step_of(kind):
    """The :class:`Step` recorded under the name ``kind`` (codegen repeats it).

    Raises:
        ValueError: no technique records such a step; the message lists the known ones.
    """
    for technique in TECHNIQUES.values():
        if kind in technique.steps:
            return technique.steps[kind]
    known = [step for technique in TECHNIQUES.values() for step in technique.steps]
    raise ValueError(f"Cannot generate code: unknown training step {kind!r}; known: {', '.join(known)}.")


# --- The builder -----------------------------------------------------------------------

def build(job):
    """Fine-tune with the techniques of the scheme's entry, in order, then convert with the entry's recipe.

    A ``ptq`` setting other than "none" names a post-training scheme whose converter recipe (calibrated on
    the representative sample when it needs one) replaces the entry's, as prune's ``ptq=int8`` does.
    """
    entry = schemes.get(job.scheme)
    preflight(job.model, entry.techniques)
    job.data.training(int(job.settings.get("train_samples") or 0))  # fails early without training data
    training, model = Training(job, entry), job.model
    for technique in entry.techniques:
        model = TECHNIQUES[technique].run(model, training)
    recipe, representative = dict(entry.recipe or {}), None
    if job.settings.get("ptq", "none") != "none":
        recipe = recipe_for(job.settings["ptq"], job.settings)
        representative = job.representative() if recipe.get("representative_samples") else None
    job.progress(0.9, "converting")
    tflite = convert(model, recipe, representative)
    return Built(tflite, {"training": training.log, "converter": recipe}, model,
                 {"train_s": round(sum(step["train_s"] for step in training.log), 2)})
