"""The Python API for notebooks and scripts: sweep, search, recommend.

    import optlib

    result = optlib.sweep("digits_cnn", "digits", "float32,int8", params={"runs": 20})
    result.frame()[["scheme", "accuracy", "size_bytes", "speedup"]]
    result["int8"]["gzip_bytes"]

Each function is the CLI's command of the same name without the printing;
bad input raises :class:`optlib.InputError` with the message the CLI prints.
Importing this module does not import TensorFlow.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SweepResult:
    """The rows of a sweep, one per scheme in the order asked (the CLI's JSON ``results``).

    Attributes:
        model, dataset: the names the sweep resolved.
        rows: one flat dict per scheme: status, error, accuracy, size_bytes,
            gzip_bytes, latency_ms, sparsity, settings, tflite_path, ...
        store: the store's path; model_note: why accuracy is missing (an untrained model), or "".
    """

    model: str
    dataset: str
    rows: list = field(default_factory=list)
    store: str = ""
    model_note: str = ""

    def __getitem__(self, scheme):
        """The row of one scheme (KeyError if it was not in the sweep)."""
        for row in self.rows:
            if row["scheme"] == scheme:
                return row
        raise KeyError(scheme)

    def __iter__(self):
        return iter(self.rows)

    def __len__(self):
        return len(self.rows)

    def frame(self):
        """The rows as a pandas DataFrame, with deltas to the float32 baseline (see optlib.analysis.report)."""
        from optlib.analysis import report

        return report.frame(self.rows)

    def to_json(self):
        """The CLI's ``--json`` document."""
        return {"model": self.model, "model_note": self.model_note, "dataset": self.dataset, "store": self.store,
                "results": self.rows}


def sweep(model, data, schemes="all", params=None, store=None, recompute=False, progress=None, trusted=False,
          weights=None, budget_s=None, executor=None, cancel=None, task=""):
    """Run optimization schemes on a model and dataset, measure each, store each; return a :class:`SweepResult`.

    Args:
        model: a zoo name ("digits_cnn", "mobilenet_v2", ...) or a path to a .keras, .h5, SavedModel or .zip.
        data: "digits", a .npz, an image folder or .zip, or "tfds:NAME[:SPLIT]".
        schemes: "all", a family ("post-training"), or names separated by commas ("float32,int8").
        params: settings {name: value}; "scheme.name" sets one scheme's only (``optlib.schemes`` lists them).
        store: the store's path or an :class:`optlib.Store` (default: the data folder's).
        recompute: run again what the store already has.
        progress: called with an :class:`optlib.engine.sweep.Progress` at every step.
        trusted: load a model whose file runs code (Lambda layers, custom objects).
        budget_s: stop a scheme that runs longer than this (default executor only).
        executor: where the jobs run (default: worker processes on this machine).
        cancel: a ``threading.Event`` that stops the sweep when set (finished schemes stay).
        task: "" to detect each output's task, or e.g. "regression", "out_a=binary,primary=out_a".

    Raises:
        InputError: the model, the data or the settings cannot be used.
    """
    from optlib.engine import sweep as driver

    result = driver.run(model, data, schemes, params, store, recompute=recompute, progress=progress,
                        trusted=trusted, weights=weights, budget_s=budget_s, executor=executor, cancel=cancel,
                        task=task)
    return SweepResult(result["model"], result["dataset"], result["results"], result["store"], result["model_note"])


def search(model, data, max_loss=0.01, objective="size", trials=8, budget_s=None, store=None, params=None,
           progress=None, trusted=False, target=None):
    """The smallest (or fastest) model within ``max_loss`` of float32's accuracy; see :mod:`optlib.analysis.search`.

    ``target`` keeps only models that run there: ``"mcu:ram=64KB,flash=256KB"``, ``"gpu"`` or ``"integer"``.

    Returns:
        dict: target, baseline, best, met, explanation and the trail of every trial.
    """
    from optlib.analysis.search import search as run_search
    from optlib.engine.targets import parse_device

    device = parse_device(target) if target else None
    return run_search(model, data, max_loss, objective, trials, budget_s, store, params, progress, trusted=trusted,
                      device=device)


def recommend(**answers):
    """Walk the wizard's decision tree: ``recommend(data="representative", hardware="edgetpu")``.

    Returns:
        :class:`optlib.guide.wizard.Recommendation`: ranked items (scheme, role, reason, trade-off, source).

    Raises:
        InputError: an unknown question or answer; the message lists the accepted ones.
    """
    from optlib.errors import InputError
    from optlib.guide import wizard

    try:
        return wizard.recommend(answers)
    except ValueError as problem:
        raise InputError(str(problem)) from None
