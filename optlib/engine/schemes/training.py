"""Training-time schemes: quantization-aware training, pruning, clustering and their
collaborative combinations from the TensorFlow Model Optimization Toolkit.

Each builder clones the model (the toolkit's wrappers reuse the original
layers, so training them would change the caller's model), fine-tunes it on
the training split with fixed seeds, strips the wrappers and converts.
"""

import math
import time

from optlib.engine.convert import convert
from optlib.errors import InputError
from optlib.engine.schemes.base import Built
from optlib.engine.schemes.post_training import recipe_for

QAT_RECIPE = {"optimizations": ["DEFAULT"]}


# --- Pre-flight: refuse unsupported layers before any training time is spent --

def _registries():
    from optlib._keras import tfmot

    tfmot()
    from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import (
        ClusteringRegistry)
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit.default_8bit_quantize_registry import (  # noqa: E501
        Default8BitQuantizeRegistry)
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry

    quantize = Default8BitQuantizeRegistry()
    return {"prune": ("pruning", PruneRegistry.supports),
            "cluster": ("clustering", ClusteringRegistry.supports),
            "quantize": ("quantization-aware training", quantize.supports)}


def preflight(model, techniques):
    """Raise InputError naming the first layer a technique cannot wrap.

    Args:
        model: the Keras model.
        techniques: names among "prune", "cluster", "quantize".
    """
    from optlib._keras import keras

    k = keras()
    registries = _registries()
    for technique in techniques:
        label, supports = registries[technique]
        for layer in model.layers:
            if isinstance(layer, k.layers.InputLayer):
                continue
            if isinstance(layer, k.Model):
                raise InputError(f"Layer '{layer.name}' is a nested model; {label} needs a flat model "
                                 "(rebuild it without models inside models).")
            if not supports(layer) and not (technique == "quantize" and _folded_into_convolution(layer)):
                raise InputError(f"Layer '{layer.name}' ({type(layer).__name__}) is not supported by "
                                 f"{label} in the Model Optimization Toolkit; it needs a custom config "
                                 "for that layer, or a model without it.")


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


def _from_logits(model):
    activation = getattr(model.layers[-1], "activation", None)
    return getattr(activation, "__name__", "") != "softmax"


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


def _fit(model, job, stages, name, from_logits, extra_callbacks=()):
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


def _prune(model, job, stages, from_logits, steps_log):
    from optlib._keras import tfmot

    sparsity = tfmot().sparsity.keras
    schedule, described = pruning_schedule(float(job.settings["sparsity"]), _steps(job))
    wrapped = sparsity.prune_low_magnitude(_fresh_copy(model), pruning_schedule=schedule)
    seconds = _fit(wrapped, job, stages, "pruning", from_logits, [sparsity.UpdatePruningStep()])
    steps_log.append({"step": "prune_low_magnitude", **described, "train_s": round(seconds, 2)})
    return sparsity.strip_pruning(wrapped)


def _cluster(model, job, stages, from_logits, steps_log, preserve_sparsity=False):
    from optlib._keras import tfmot

    clustering = tfmot().clustering.keras
    init = getattr(clustering.CentroidInitialization, str(job.settings["centroids"]).upper())
    kwargs = {"preserve_sparsity": True} if preserve_sparsity else {}
    wrapped = clustering.cluster_weights(_fresh_copy(model), number_of_clusters=int(job.settings["clusters"]),
                                         cluster_centroids_init=init, **kwargs)
    seconds = _fit(wrapped, job, stages, "clustering", from_logits)
    steps_log.append({"step": "cluster_weights", "number_of_clusters": int(job.settings["clusters"]),
                      "cluster_centroids_init": init.name if hasattr(init, "name") else str(init),
                      "preserve_sparsity": preserve_sparsity, "train_s": round(seconds, 2)})
    return clustering.strip_clustering(wrapped)


def _qat(model, job, stages, from_logits, steps_log, preserve=None):
    from optlib._keras import tfmot

    quantization = tfmot().quantization.keras
    copy = _fresh_copy(model)
    if preserve is None:
        wrapped, scheme = quantization.quantize_model(copy), "Default8BitQuantizeScheme"
    else:
        combine = tfmot().experimental.combine
        schemes = {"prune": combine.Default8BitPrunePreserveQuantizeScheme(),
                   "cluster": combine.Default8BitClusterPreserveQuantizeScheme(),
                   "prune_cluster": combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)}
        wrapped = quantization.quantize_apply(quantization.quantize_annotate_model(copy), schemes[preserve])
        scheme = type(schemes[preserve]).__name__ + ("(preserve_sparsity=True)" if preserve == "prune_cluster" else "")
    seconds = _fit(wrapped, job, stages, "quantization-aware training", from_logits)
    steps_log.append({"step": "quantize_model" if preserve is None else "quantize_apply",
                      "scheme": scheme, "train_s": round(seconds, 2)})
    return wrapped


def _pipeline(job, techniques, preserve=None):
    """Run the fine-tuning stages in order and return (final Keras model, steps log)."""
    preflight(job.model, techniques)
    job.data.training(int(job.settings.get("train_samples") or 0))  # fails early without training data
    from_logits = _from_logits(job.model)
    stages, log, model = _Stages(job, len(techniques)), [], job.model
    for technique in techniques:
        if technique == "prune":
            model = _prune(model, job, stages, from_logits, log)
        elif technique == "cluster":
            model = _cluster(model, job, stages, from_logits, log, preserve_sparsity="prune" in techniques)
        else:
            model = _qat(model, job, stages, from_logits, log, preserve)
    return model, log


def _finish(job, model, log, recipe, representative=None):
    job.progress(0.9, "converting")
    tflite = convert(model, recipe, representative)
    return Built(tflite, {"training": log, "converter": recipe}, model,
                 {"train_s": round(sum(step["train_s"] for step in log), 2)})


def build_qat(job):
    model, log = _pipeline(job, ("quantize",))
    return _finish(job, model, log, QAT_RECIPE)


def build_prune(job):
    model, log = _pipeline(job, ("prune",))
    if job.settings.get("ptq") == "int8":
        recipe = recipe_for("int8", job.settings)
        return _finish(job, model, log, recipe, job.representative())
    return _finish(job, model, log, {})


def build_cluster(job):
    model, log = _pipeline(job, ("cluster",))
    return _finish(job, model, log, {})


def build_prune_qat(job):
    model, log = _pipeline(job, ("prune", "quantize"), preserve="prune")
    return _finish(job, model, log, QAT_RECIPE)


def build_cluster_qat(job):
    model, log = _pipeline(job, ("cluster", "quantize"), preserve="cluster")
    return _finish(job, model, log, QAT_RECIPE)


def build_prune_cluster_qat(job):
    model, log = _pipeline(job, ("prune", "cluster", "quantize"), preserve="prune_cluster")
    return _finish(job, model, log, QAT_RECIPE)
