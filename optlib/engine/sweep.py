"""The sweep's driver: plan the jobs, serve what the store has, dispatch the rest, persist every Result.

Each scheme is an independent job — (model, dataset, scheme, settings) in,
one :class:`~optlib.engine.job.Result` out — run by an executor
(:mod:`optlib.engine.executors`: worker processes by default, or in this
process). Only this driver, the process that owns the store, writes it: a
'running' row when a job starts, then the figures and the artifact when its
Result comes back. A failure stays with its scheme.
"""

from dataclasses import dataclass

from optlib.engine import admission, datasets, executors, float32_cache, grid, sandbox, schemes
from optlib.engine.job import Inputs, Spec, gave_up
from optlib.engine.store import Store, result_row, run_key
from optlib.errors import first_line
from optlib.inputs import data_refs, limits, models


@dataclass(frozen=True)
class Progress:
    """What a sweep tells its caller as it goes.

    Attributes:
        scheme: the job's scheme ("" while the model and data load).
        index: the job's place in the sweep; total: the number of jobs.
        stage: queued (waiting for its turn; ``message`` says its place in line), loading, cached,
            starting, running, then ok, failed or timeout.
        fraction: of the whole sweep, 0..1; it only grows, even with jobs in parallel.
        done: jobs finished so far.
        message: what happens now, or why a job failed.
        row: the result row, once a job has finished (the JSON contract's fields).
    """

    scheme: str
    index: int
    total: int
    stage: str
    fraction: float
    done: int
    message: str = ""
    row: dict | None = None


class _Reporter:
    """Turns job events into :class:`Progress` for the caller's callback."""

    def __init__(self, callback, total):
        self.callback, self.total = callback or (lambda progress: None), max(total, 1)
        self.within, self.finished = {}, set()

    def __call__(self, index, scheme, stage, within=0.0, message="", row=None):
        if scheme:
            self.within[index] = max(self.within.get(index, 0.0), within)
            if row is not None:
                self.finished.add(index)
        fraction = min(1.0, sum(self.within.values()) / self.total)
        self.callback(Progress(scheme, max(index, 0), self.total, stage, fraction, len(self.finished),
                               message, row))


def plan(model_ref, data_ref, selection="all", overrides=None, weights=None, trusted=False, task="", signature=""):
    """Resolve references and settings without loading TensorFlow.

    Returns:
        (:class:`~optlib.engine.job.Inputs`, list of :class:`~optlib.engine.job.Spec`).

    Raises:
        InputError: unknown model, data, scheme or setting, or a setting out of its range.
    """
    task = "" if str(task or "").strip() in ("", "auto") else str(task).strip()
    inputs = Inputs(models.resolve(model_ref, weights, signature), data_refs.resolve(data_ref), trusted, task)
    limits.check_inputs(inputs.model, inputs.data)  # what the files declare, before any worker starts
    if inputs.model.kind != "zoo":
        sandbox.require_for_untrusted(trusted)  # no sandbox on this machine: refused unless the operator allows
    models.check(inputs.model, trusted)  # the allowlist, before anything loads
    selected = schemes.select(selection, inputs.model.form)  # all: what this model can take
    grid.check(overrides)  # a setting may take several values: one job per combination
    specs = []
    for name in selected:
        for settings in grid.expand(name, overrides):
            specs.append(Spec(len(specs), name, settings,
                              run_key(inputs.model.fingerprint, inputs.data.fingerprint, name, settings, task)))
    return inputs, specs


def run(model_ref, data_ref, selection="all", overrides=None, store=None, recompute=False,
        progress=None, trusted=False, weights=None, budget_s=None, executor=None, cancel=None, task="", signature=""):
    """Run a sweep and return ``{"model", "dataset", "results": [row, ...]}``.

    Rows come from the store when the same run exists (unless ``recompute``).
    A scheme that fails gets a 'failed' row with its reason; the rest go on.

    Args:
        progress: called with a :class:`Progress` at every step.
        budget_s: with the default executor, a scheme running longer is stopped
            and marked ``timeout``.
        executor: an :class:`~optlib.engine.executors.Executor` to run the jobs on
            (kept open for the caller); default: local worker processes, closed at the end.
        cancel: a ``threading.Event``; setting it stops the sweep within a second. Finished
            schemes keep their rows; those in flight are marked 'interrupted' and the ones not
            started come back as 'cancelled' (not stored).
        task: "" (each output's task detected) or a task setting such as "regression" or
            "out_a=classification,out_b=regression,primary=out_b" (see optlib.inputs.tasks.parse).
        signature: a plain SavedModel's signature ("": serving_default, or its only one).

    Raises:
        InputError: the model, the data or the settings cannot be used at all.
    """
    inputs, specs = plan(model_ref, data_ref, selection, overrides, weights, trusted, task, signature)  # nothing written
    datasets.prepare(inputs.data)  # a tfds download, where the operator allows it (workers have no network)
    if budget_s and executor is not None:
        raise ValueError("budget_s applies to the default executor; pass LocalWorkers(budget_s=...) instead")
    store = store if isinstance(store, Store) else Store(store)
    store.mark_interrupted()
    report = _Reporter(progress, len(specs))
    rows = {}
    todo = _from_store(specs, store, report, rows, recompute)
    if todo:
        own = executor is None
        executor = executor or executors.LocalWorkers(budget_s=budget_s)
        try:
            # At most K sweeps run jobs at once on this machine; this one may wait its turn.
            with admission.turn(lambda place, limit: report(-1, "", "queued", 0.0, admission.describe(place, limit)),
                                cancel, f"{inputs.model.name} / {inputs.data.name}"):
                # A sweep that ran meanwhile may have made some of these, even one that ended just before this
                # sweep took its turn without waiting: look again (a few milliseconds).
                todo = _from_store(todo, store, report, rows, recompute)
                if todo:  # (a Ray executor would connect, and pack the inputs, for nothing)
                    _dispatch(executor, inputs, todo, store, report, rows, cancel)
        except executors.Cancelled:
            for spec in todo:
                if spec.index not in rows:  # never started: nothing stored
                    rows[spec.index] = {"id": None, "scheme": spec.scheme, "status": "cancelled",
                                        "error": "the sweep was stopped before this scheme started", "cached": False,
                                        "settings": spec.settings, "tflite_path": None}
                row = rows[spec.index]
                if row["status"] in ("interrupted", "cancelled"):
                    report(spec.index, spec.scheme, row["status"], 1.0, row["error"], row)
        finally:
            if own:
                executor.close()
            float32_cache.prune_all()  # here: a sandboxed worker may not remove other models' conversions
    return {"model": inputs.model.name, "model_note": inputs.model.note, "dataset": inputs.data.name,
            "store": str(store.path), "results": [rows[spec.index] for spec in specs]}


def _from_store(specs, store, report, rows, recompute):
    """Serve the specs the store has into ``rows``; return the others (all of them with ``recompute``)."""
    todo = []
    for spec in specs:
        row = None if recompute else store.lookup(spec.key)
        if row:
            rows[spec.index] = result_row(row, cached=True)
            report(spec.index, spec.scheme, "cached", 1.0, "served from the store", rows[spec.index])
        else:
            todo.append(spec)
    return todo


def dispatch_order(specs):
    """``specs`` (anything with a ``scheme`` name) from the quickest to the longest
    (:attr:`~optlib.engine.schemes.Scheme.cost`), in the given order among equals. A sweep's first worker
    takes them from the front, the others from the back (the longest first), so that the last job to
    finish is a short one."""
    return sorted(specs, key=lambda spec: getattr(schemes.find(spec.scheme), "cost", 1))


def _dispatch(executor, inputs, todo, store, report, rows, cancel=None):
    """Run ``todo`` on the executor, persisting each job as it starts and finishes, into ``rows`` {index: row}.

    A Result that cannot be stored (a full disk, a figure that is not JSON) becomes that scheme's
    failed row. If the sweep stops half-way (Ctrl-C, a lost executor), the jobs it had started are
    marked 'interrupted' at once.
    """
    running = {}
    todo_by_index = {spec.index: spec for spec in todo}
    todo = dispatch_order(todo)  # the rows keep the sweep's order

    def on_event(event):
        if event.stage == "starting":
            if event.index in running:  # started again (an executor retried a job lost with its machine)
                store.finish(running[event.index], gave_up(todo_by_index[event.index], "interrupted",
                                                           "lost with the machine it ran on; run again"))
            running[event.index] = store.start(inputs, todo_by_index[event.index], event.host, event.pid)
        report(event.index, event.scheme, event.stage, event.within, event.message)

    try:
        for result in executor.map(inputs, todo, on_event, cancel):
            index = result.spec.index
            run_id = running.pop(index, None) or store.start(inputs, result.spec, result.host, result.pid,
                                                             result.started_at)
            try:
                store.finish(run_id, result)
            except (OSError, TypeError, ValueError) as problem:
                store.finish(run_id, gave_up(result.spec, "failed", f"the result could not be stored: "
                                             f"{type(problem).__name__}: {first_line(problem)}",
                                             result.started_at, result.host, result.pid))
            rows[index] = result_row(store.get(run_id))
            report(index, result.scheme, rows[index]["status"], 1.0, rows[index]["error"] or "done", rows[index])
    finally:
        for index, run_id in running.items():  # started, never finished: the sweep stopped under them
            store.finish(run_id, gave_up(todo_by_index[index], "interrupted", "the sweep stopped before this "
                                         "scheme finished; run it again to continue"))
            rows[index] = result_row(store.get(run_id))
