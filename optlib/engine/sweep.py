"""Run many schemes on one model and dataset, measure each, store each as it finishes.

Each scheme is an independent job — (model, dataset, scheme, settings) in,
one result row and one artifact out — so a failure stays with its scheme
and the executor could later be swapped without touching the schemes.
"""

import contextlib
import os
import time

from optlib.engine import executor, measure, schemes
from optlib.inputs import data, models
from optlib.errors import InputError
from optlib.engine.store import Store, run_key


def result_row(row, cached=False):
    """Flatten a stored run into the JSON result row of the CLI contract."""
    metrics = row.get("metrics") or {}
    return {"id": row.get("id"), "scheme": row["scheme"], "status": row["status"], "error": row.get("error"),
            "cached": cached, "model": row.get("model"), "dataset": row.get("dataset"),
            "model_fingerprint": row.get("model_fingerprint"), "dataset_fingerprint": row.get("dataset_fingerprint"),
            "settings": row.get("settings"), **metrics, "tflite_path": row.get("tflite_path")}


class _Progress:
    """Sends plain-dict events to the caller's callback (the app draws them).

    The overall fraction is the sum of each job's own progress, so it only
    grows even when several jobs run at once.
    """

    def __init__(self, callback, total):
        self.callback, self.total = callback or (lambda event: None), max(total, 1)
        self.within = {}

    def __call__(self, index, scheme, stage, within=0.0, message="", row=None):
        if scheme:
            self.within[index] = max(self.within.get(index, 0.0), within)
        fraction = min(1.0, sum(self.within.values()) / self.total)
        self.callback({"scheme": scheme, "index": index, "total": self.total, "stage": stage,
                       "fraction": fraction, "message": message, "row": row})


def plan(model_ref, data_ref, selection="all", overrides=None, weights=None):
    """Resolve references and settings without loading TensorFlow.

    Returns:
        (model source, data source, list of (scheme, settings, key)).

    Raises:
        InputError: unknown model, data, scheme or setting.
    """
    model_src = models.resolve(model_ref, weights)
    data_src = data.resolve(data_ref)
    selected = schemes.select(selection)
    schemes.check_overrides(overrides)
    jobs = []
    for name in selected:
        settings = schemes.settings_for(name, overrides)
        jobs.append((name, settings, run_key(model_src.fingerprint, data_src.fingerprint, name, settings)))
    return model_src, data_src, jobs


def run(model_ref, data_ref, selection="all", overrides=None, store=None, recompute=False,
        progress=None, trusted=False, weights=None, isolate=True, budget_s=None, workers=None):
    """Run a sweep and return ``{"model", "dataset", "results": [row, ...]}``.

    Rows come from the store when the same run exists (unless ``recompute``).
    A scheme that fails gets a 'failed' row with its reason; the rest go on.
    With ``isolate`` (the default) the jobs run in a worker process, where a
    scheme that runs over ``budget_s`` seconds is stopped and marked
    ``timeout``; ``isolate=False`` runs them in this process. ``workers`` worker
    processes share the jobs (default: two for small models on two or more cores);
    or pass open :class:`optlib.engine.executor.Workers` to run on (and keep) them.

    Raises:
        InputError: the model, the data or the settings cannot be used at all.
    """
    store = store if isinstance(store, Store) else Store(store)
    model_src, data_src, jobs = plan(model_ref, data_ref, selection, overrides, weights)
    store.mark_interrupted()
    report = _Progress(progress, len(jobs))
    results, todo = {}, []
    for index, (name, settings, key) in enumerate(jobs):
        row = None if recompute else store.lookup(key)
        if row:
            results[name] = result_row(row, cached=True)
            report(index, name, "cached", 1.0, "served from the store", results[name])
        else:
            todo.append((index, name, settings, key))
    if todo and isolate and isinstance(workers, executor.Workers):
        if not workers.serves(model_src, data_src, trusted, store):
            raise ValueError("these workers were opened for another model, dataset or store")
        results.update(executor.run_in_workers(workers, todo, report, budget_s))
    elif todo and isolate:
        count = workers or executor.default_workers(model_src)
        with executor.Workers(model_src, data_src, trusted, store, count) as own:
            results.update(executor.run_in_workers(own, todo, report, budget_s))
    elif todo:
        results.update(executor.run_inline(model_src, data_src, trusted, store, todo, report))
    return {"model": model_src.name, "model_note": model_src.note, "dataset": data_src.name,
            "store": str(store.path), "results": [results[name] for name, _, _ in jobs]}


class Context:
    """What every job of a sweep shares: the model and dataset, loaded once.

    ``quiet`` is a context manager around the timed invokes of a latency figure;
    the executor's workers use it to have the other workers paused meanwhile.
    """

    def __init__(self, model_src, data_src, trusted, report, quiet=contextlib.nullcontext):
        self.model_src, self.data_src, self.report, self.quiet = model_src, data_src, report, quiet
        report(0, "", "loading", 0.0, f"loading model {model_src.name}")
        self.model = models.load(model_src, trusted)
        scale = models.ZOO[model_src.ref].scale if model_src.kind == "zoo" else "0..1"
        report(0, "", "loading", 0.0, f"loading data {data_src.name}")
        self.data = data.load(data_src, self.model, scale)
        self._keras_accuracy = {}

    def keras_accuracy(self, model):
        """Accuracy of a Keras model on the test split (cached per model object)."""
        if id(model) not in self._keras_accuracy:
            scores = model.predict(self.data.x_test, batch_size=64, verbose=0)
            self._keras_accuracy[id(model)] = measure.accuracy(scores, self.data.y_test)["top1"]
        return self._keras_accuracy[id(model)]


def run_one(context, store, index, name, settings, key):
    from optlib.engine.schemes.base import Job

    scheme = schemes.get(name)
    run_id = store.start(key, context.model_src.name, context.model_src.fingerprint,
                         context.data_src.name, context.data_src.fingerprint, name, settings)
    started = time.perf_counter()
    progress = _ProgressFor(context, index, name)
    progress(0.0, "starting")
    path = None
    try:
        job = Job(name, context.model, context.data, settings, progress)
        built = scheme.build_function()(job)
        build_s = time.perf_counter() - started
        path = store.save_artifact(key, name, built.tflite)
        progress(0.92, "measuring")
        metrics = _measure(context, built, path, settings)
        metrics.update(build_s=round(build_s, 2), total_s=round(time.perf_counter() - started, 2))
        store.finish(run_id, "ok", metrics, tflite_path=path)
        status, error = "ok", None
    except Exception as problem:  # one failing scheme never takes down the sweep
        status = "failed"
        error = str(problem) if isinstance(problem, InputError) else f"{type(problem).__name__}: {_first_line(problem)}"
        store.finish(run_id, "failed", error=error)
        if path is not None:  # e.g. converted but cannot be allocated: no artifact for a failed run
            path.unlink(missing_ok=True)
    row = result_row(store.get(run_id))
    progress.done(status, error, row)
    return row


class _ProgressFor:
    def __init__(self, context, index, scheme):
        self.report = context.report
        self.index, self.scheme = index, scheme

    def __call__(self, within, message):
        self.report(self.index, self.scheme, "running", within, message)

    def done(self, status, error, row):
        self.report(self.index, self.scheme, status, 1.0, error or "done", row)


def _first_line(problem):
    text = str(problem).strip()
    return (text.splitlines()[0] if text else "no message")[:300]


def _measure(context, built, path, settings):
    d = context.data
    raw, gz = measure.sizes(path)
    metrics = {"size_bytes": raw, "gzip_bytes": gz, "threads": settings["threads"],
               "recipe": built.recipe, "data_recipe": d.recipe, "trained": context.model_src.trained}
    if context.model_src.trained:
        result = measure.evaluate(path, d.x_test, d.y_test)
        metrics.update(accuracy=result["top1"], top5=result.get("top5"), accuracy_samples=result["samples"],
                       keras_accuracy=context.keras_accuracy(built.model))
    else:
        metrics.update(accuracy=None, accuracy_note=context.model_src.note)
    with context.quiet():  # the sweep's other workers are paused while the latency is timed
        load = os.getloadavg()[0]  # what else ran on the machine (other sweeps, other programs)
        metrics["latency_ms"] = measure.latency(path, d.x_test[0], settings["threads"],
                                                settings["runs"], settings["warmup"])
    metrics["latency_ms"]["load_1m"] = round(load, 2)
    stats = measure.weight_stats(path)
    metrics.update(sparsity=stats["sparsity"], max_unique_weights=stats["max_unique"],
                   max_unique_per_channel=stats["max_unique_per_channel"], kernels=stats["kernels"])
    metrics.update(built.extra)
    metrics["peak_rss_mb"] = round(measure.peak_rss_mb(), 1)
    return metrics
