"""One job: one scheme on a loaded model and dataset, built and measured, as a frozen Result.

A job writes nothing: the artifact travels back in the :class:`Result` (its
bytes) and the sweep's driver, the one process that owns the store, persists
it. So a job can run in this process, in a worker process or on another
machine alike.

    context = Context(inputs, events)          # loads the model and data once
    result = run(context, Spec(0, "int8", settings, key))
"""

import contextlib
import os
import socket
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from optlib.errors import InputError, first_line


@dataclass(frozen=True)
class Inputs:
    """What every job of a sweep shares, by reference: resolved without loading TensorFlow."""

    model: object  # optlib.inputs.models.ModelSource
    data: object  # optlib.inputs.data_refs.DataSource
    trusted: bool = False
    task: str = ""  # "" (detected) or a task setting, see optlib.inputs.tasks.parse

    @property
    def identity(self):
        """Equal for inputs that load the same model and data the same way."""
        return self.model.fingerprint, self.data.fingerprint, self.trusted, self.task


@dataclass(frozen=True)
class Spec:
    """One job of a sweep: the scheme, its settings, its store key and its place in the sweep."""

    index: int
    scheme: str
    settings: dict
    key: str


@dataclass(frozen=True)
class Event:
    """Progress of one job (``index`` -1 and ``scheme`` "" while the shared inputs load).

    ``within`` is the job's own progress, 0..1; ``pid`` and ``host`` say where it runs.
    """

    index: int
    scheme: str
    stage: str  # loading, starting, running
    within: float = 0.0
    message: str = ""
    pid: int = 0
    host: str = ""


@dataclass(frozen=True)
class Result:
    """What one job made and measured.

    Attributes:
        spec: the job.
        status: "ok", "failed", "timeout" or "skipped" (the model cannot take the scheme: ``error`` says why).
        error: why it did not succeed (None when ok).
        metrics: every measured figure (accuracy, sizes, latency, sparsity, ...),
            the converter and training recipe, and timings.
        artifact: the ``.tflite`` bytes (None unless ok).
        started_at, finished_at: wall-clock times (seconds since the epoch).
        host, pid: where it ran.
    """

    spec: Spec
    status: str
    error: str | None = None
    metrics: dict = field(default_factory=dict)
    artifact: bytes | None = None
    started_at: float = 0.0
    finished_at: float = 0.0
    host: str = ""
    pid: int = 0

    @property
    def scheme(self):
        return self.spec.scheme


def here():
    """(host, pid) of this process, as results and events record them."""
    return socket.gethostname(), os.getpid()


def gave_up(spec, status, error, started_at=0.0, host="", pid=0):
    """The Result of a job that an executor stopped or lost (no figures, no artifact)."""
    return Result(spec, status, error, started_at=started_at, finished_at=time.time(), host=host, pid=pid)


class Context:
    """What every job of a sweep shares: the model and dataset, loaded once.

    ``quiet`` is a context manager around the timed invokes of a latency figure;
    the local worker processes use it to have the other workers paused meanwhile.
    """

    def __init__(self, inputs, events=None, quiet=contextlib.nullcontext, worker_start_s=None):
        from optlib.inputs import models, opening

        self.inputs, self.quiet = inputs, quiet
        self.events = events or (lambda event: None)
        host, pid = here()
        self.events(Event(-1, "", "loading", 0.0, f"loading model {inputs.model.name}", pid, host))
        started = time.perf_counter()
        self.model = models.load(inputs.model, inputs.trusted)
        self.events(Event(-1, "", "loading", 0.0, f"loading data {inputs.data.name}", pid, host))
        loaded = time.perf_counter()
        self.data = opening.load_data(inputs.model, self.model, inputs.data, inputs.task)
        xs = [x[:64] for x in self.data.xs_test]
        # A Keras 3 file rebuilt as tf_keras: how far its outputs are from Keras 3's own (None for other models).
        self.rebuild = models.rebuild_difference(self.model, xs[0] if len(xs) == 1 else xs)
        # Once per worker (every job of the worker records it; summing over jobs counts it once per worker).
        self.load_s = {"load_model": round(loaded - started, 3), "load_data": round(time.perf_counter() - loaded, 3)}
        if worker_start_s is not None:  # from the sweep asking for the worker to its loading (a starter's import
            # of TensorFlow, or a fresh Python's start and imports; its sandbox)
            self.load_s = {"worker_start": round(worker_start_s, 3), **self.load_s}
        # Keyed by the model object, not id(): a freed fine-tuned model's id can be reused by the next one.
        self._keras_outputs = weakref.WeakKeyDictionary()
        self._float32 = None  # (bytes, facts), made on first use
        self.float_outputs_reused = None  # the float model's outputs: another worker's (True), made here (False)
        self.reference_s = 0.0  # seconds spent making (or waiting for) them

    @property
    def form(self):
        """What the loaded model is: "keras", "savedmodel", "tflite" or "tflite-quantized"."""
        return getattr(self.model, "form", "keras")

    def float32(self):
        """The model converted to float32 TFLite once (:mod:`optlib.engine.float32_cache`), shared by the
        float32 baseline and every LiteRT Quantizer scheme; a float ``.tflite`` model is its own.
        Returns (bytes, {"convert_s", "reused"})."""
        from optlib.engine.convert import convert
        from optlib.engine.float32_cache import float32_bytes

        if self.form == "tflite":
            return self.model.tflite, {"convert_s": 0.0, "reused": True, "given": True}
        if self._float32 is None:  # while another worker converts, this one makes the float model's outputs
            self._float32 = float32_bytes(self.inputs.model.fingerprint, lambda: convert(self.model, {}),
                                          lambda: self.keras_outputs(self.model))
            return self._float32
        return self._float32[0], {**self._float32[1], "reused": True}

    def calibrations(self):
        """The folder where LiteRT Quantizer's calibrations of this model are shared by the sweep's workers:
        its float32 cache folder (:func:`optlib.engine.float32_cache.folder_for`), which a worker may write."""
        from optlib.engine.float32_cache import folder_for

        return folder_for(self.inputs.model.fingerprint)

    def keras_outputs(self, model):
        """A Keras model's outputs on the test split, one array per output (kept while the model object lives).

        The loaded model's own (every job's reference) are made once per model and test split, by whichever of
        the sweep's workers comes first (:func:`optlib.engine.float32_cache.shared_arrays`), and the same
        arrays read back by the others; ``float_outputs_reused`` says which this worker did.
        """
        if model not in self._keras_outputs and model is self.model:
            from optlib.engine.float32_cache import folder_for, shared_arrays

            started = time.perf_counter()
            self._keras_outputs[model], self.float_outputs_reused = shared_arrays(
                folder_for(self.inputs.model.fingerprint), "outputs", self._outputs_key(),
                lambda: self._outputs_of(model))
            self.reference_s += time.perf_counter() - started
        elif model not in self._keras_outputs:
            self._keras_outputs[model] = self._outputs_of(model)
        return self._keras_outputs[model]

    def _outputs_key(self):
        """What the float model's outputs depend on besides the model (its folder): the test inputs as the
        model sees them, how many outputs it has, its form, and TensorFlow's version."""
        import hashlib

        from optlib._keras import tf
        from optlib.engine.float32_cache import digest_arrays

        digest = hashlib.sha256(f"{self.form}|{len(self.data.outputs)}|{self.data.test_count}|"
                                f"tensorflow {tf().__version__}".encode())
        return digest_arrays(digest, self.data.xs_test).hexdigest()[:32]

    def _outputs_of(self, model):
        """Batch by batch: model.predict would copy all of the inputs into TensorFlow twice over."""
        import numpy as np

        if hasattr(model, "tflite"):  # a .tflite model: its own outputs
            from optlib.engine import outputs

            return outputs.predict(model.tflite, self.data.xs_test, [p.name for p in self.data.inputs],
                                   [o.name for o in self.data.outputs])
        if hasattr(model, "function"):  # a SavedModel's signature
            xs, count = self.data.xs_test, self.data.test_count
            chunks = [model.predict([x[i:i + 64] for x in xs]) for i in range(0, count, 64)]
            return [np.concatenate([c[k] for c in chunks]) for k in range(len(chunks[0]))]
        return keras_predict(model, self.data.xs_test, self.data.test_count, len(self.data.outputs))

    def keras_accuracy(self, model):
        """The primary metric of a Keras model on the test split (None without labels)."""
        from optlib.engine import task_metrics

        return task_metrics.headline(self.data, self.keras_outputs(model))


KERAS_BATCH = 64  # samples per call, at most
KERAS_BATCH_ELEMENTS = 2_500_000  # input values per call: 64 small inputs, 16 of 224x224x3


def keras_batch(xs):
    """How many samples :func:`keras_predict` passes at once: :data:`KERAS_BATCH`, or fewer large ones.

    TensorFlow's CPU kernels (without oneDNN) run large images faster in small batches, whose activations
    stay in the processor's caches: MobileNetV2's 360 test inputs at 224x224 took 10.1 s in batches of 64
    and 7.4 s in batches of 16 on one thread (5.6-6.9 s and 4.2 s on two), with the same outputs, bit for bit,
    on this machine (batch sizes can change a float's last bit elsewhere: the outputs stay the float model's).
    """
    import math

    values = sum(math.prod(x.shape[1:]) for x in xs)
    return max(1, min(KERAS_BATCH, KERAS_BATCH_ELEMENTS // max(1, values)))


def keras_predict(model, xs, count, outputs, batch=None):
    """A Keras model's outputs on ``count`` samples of ``xs`` (one array per input), one array per output.

    Batch by batch (:func:`keras_batch` samples at a time): ``model.predict`` would copy all of the inputs
    into TensorFlow twice over. The model is called through one function traced for any batch size
    (:func:`_traced_once`), so a last batch of another size (360 small test samples: five of 64, then 40)
    traces nothing again, where ``predict_on_batch`` traced its predict function a second time (seconds on
    MobileNetV2). The outputs are those of ``predict_on_batch``, bit for bit (a test compares them); padding
    the last batch to 64 instead changed the last sample's softmax by one float step on a small model.
    """
    import numpy as np

    batch = batch or keras_batch(xs)
    call = _traced_once(model, xs)
    chunks = []
    for start in range(0, count, batch):
        found = call([x[start:start + batch] for x in xs])
        found = [found[k] for k in range(outputs)] if outputs > 1 else [found]
        chunks.append([np.asarray(f) for f in found])
    return [np.concatenate([c[k] for c in chunks]) for k in range(outputs)]


def _traced_once(model, xs):
    """A function of one batch (a list, one array per input) calling the model as ``predict_on_batch`` does
    (``training=False``), traced once for every batch size; a model whose inputs are not known (a stand-in,
    a subclassed model not yet built) goes through ``predict_on_batch`` itself."""
    if not getattr(model, "inputs", None):
        return lambda part: model.predict_on_batch(part[0] if len(part) == 1 else part)
    from optlib._keras import tf

    tf = tf()
    spec = [tf.TensorSpec((None, *x.shape[1:]), tf.as_dtype(x.dtype)) for x in xs]
    traced = tf.function(lambda *part: model(part[0] if len(part) == 1 else list(part), training=False),
                         input_signature=spec)
    return lambda part: traced(*part)


def run(context, spec):
    """Build and measure one scheme; return its Result. A failure is a 'failed' Result, never raised."""
    from optlib.engine import convert, schemes
    from optlib.engine.schemes.base import Job

    host, pid = here()
    started_at, started = time.time(), time.perf_counter()

    def progress(within, message, stage="running"):
        context.events(Event(spec.index, spec.scheme, stage, within, message, pid, host))

    progress(0.0, "starting", "starting")
    why_not = schemes.refusal(spec.scheme, context.form, getattr(context.model, "untrainable", ""))
    if why_not:  # this model cannot take the scheme: its row says why, nothing ran
        return Result(spec, "skipped", why_not, {}, None, started_at, time.time(), host, pid)
    try:
        job = Job(spec.scheme, context.model, context.data, spec.settings, progress, context.float32,
                  context.calibrations())
        reference_before = context.reference_s
        with convert.timed() as converting:  # the converter's share of the build, whoever calls it
            built = schemes.get(spec.scheme).build_function()(job)
        reference_s = context.reference_s - reference_before  # the float model's outputs, made while waiting
        build_s = time.perf_counter() - started - reference_s
        progress(0.92, "measuring")
        metrics = _measure(context, built, spec.settings)
        metrics.update(build_s=round(build_s, 2), total_s=round(time.perf_counter() - started, 2),
                       convert_s=round(converting["seconds"], 3))
        phases = metrics["phases_s"]
        phases["float_reference"] = round(phases.get("float_reference", 0.0) + reference_s, 3)
        metrics["phases_s"] = {**context.load_s, "build": round(build_s, 3), **phases}
        return Result(spec, "ok", None, metrics, built.tflite, started_at, time.time(), host, pid)
    except Exception as problem:  # one failing scheme never takes down the sweep
        error = str(problem) if isinstance(problem, InputError) else f"{type(problem).__name__}: {first_line(problem)}"
        return Result(spec, "failed", error, {}, None, started_at, time.time(), host, pid)


def _measure(context, built, settings):
    from optlib.engine import measure, task_metrics

    d = context.data
    phases, clock = {}, [time.perf_counter()]

    def phase(name):  # the seconds since the last phase ended, under ``name``
        now = time.perf_counter()
        phases[name] = round(phases.get(name, 0.0) + now - clock[0], 3)
        clock[0] = now

    with tempfile.TemporaryDirectory(prefix="optlib-job-") as folder:  # LiteRT reads a file
        path = Path(folder) / "model.tflite"
        path.write_bytes(built.tflite)
        raw, gz = measure.sizes(path)
        phase("size")  # the file's bytes, and gzipped at level 9
        metrics = {"size_bytes": raw, "gzip_bytes": gz, "threads": settings["threads"], "classes": d.num_classes,
                   "model_form": context.form, "model_signature": getattr(context.model, "signature", None),
                   "keras3_rebuild": context.rebuild,
                   "recipe": built.recipe, "data_recipe": d.recipe, "trained": context.inputs.model.trained}
        scores = {}
        # evaluate; float_reference (the float model's outputs, made once per sweep); fidelity
        metrics.update(task_metrics.measure(context, path, built.model, phase, scores))
        metrics["float_outputs_reused"] = context.float_outputs_reused
        # The sweep's other workers are paused, and no other sweep on the machine times, while this one does.
        with context.quiet():
            phase("latency_wait")  # for the other workers to pause and the machine's latency turn
            load = os.getloadavg()[0]  # what else ran on the machine (other sweeps, other programs)
            sample = d.xs_test[0][0] if len(d.inputs) == 1 else None  # several inputs: zeros in each
            timed_from = time.time()
            metrics["latency_ms"] = measure.latency(path, sample, settings["threads"],
                                                    settings["runs"], settings["warmup"])
            timed_to = time.time()
            phase("latency")
        metrics["latency_ms"].update(load_1m=round(load, 2), waited_s=phases["latency_wait"],
                                     timed=[round(timed_from, 3), round(timed_to, 3)])
        stats = measure.weight_stats(path)
        phase("weights")  # sparsity and unique values, read from the file
        from optlib.engine import targets

        # GPU, integer-only, MCU; accuracy on the microcontroller only where the task has top-1 labels
        metrics["targets"] = targets.of_job(path, d, context.inputs.model.trained and d.num_classes > 0 and d.has_labels,
                                            scores.get("primary"), phase)  # phases "targets" and "micro"
    metrics.update(sparsity=stats["sparsity"], max_unique_weights=stats["max_unique"],
                   max_unique_per_channel=stats["max_unique_per_channel"], kernels=stats["kernels"])
    metrics.update(built.extra)
    metrics["peak_rss_mb"] = round(measure.peak_rss_mb(), 1)
    metrics["phases_s"] = phases
    return metrics
