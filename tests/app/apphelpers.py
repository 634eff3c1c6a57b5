"""Helpers for the AppTest tests: canned runs, a stand-in sweep, zip files and element texts."""

import time
import zipfile
from pathlib import Path

from optlib.engine.job import Inputs, Result, Spec
from optlib.engine.store import result_row
from optlib.engine.sweep import Progress

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
PTQ = ("float32", "float16", "dynamic", "int8", "int16x8")

# scheme: (top-1, size bytes, gzip bytes, median latency ms) — shaped like real digits_cnn runs.
CANNED = {
    "float32": (0.975, 230_400, 211_200, 0.030),
    "float16": (0.975, 118_248, 106_200, 0.028),
    "dynamic": (0.972, 64_216, 59_200, 0.014),
    "int8": (0.969, 64_376, 57_700, 0.012),
    "int16x8": (0.975, 66_136, 58_880, 1.090),
    "qat": (0.978, 63_360, 48_700, 0.011),
    "prune": (0.972, 230_400, 126_000, 0.029),
}
FAILURE = "RuntimeError: no_integer_overflow_from_quantization in DEPTHWISE_CONV_2D"


def canned_metrics(scheme):
    accuracy, size, gz, latency = CANNED.get(scheme, CANNED["int8"])
    return {"size_bytes": size, "gzip_bytes": gz, "threads": 1, "trained": True,
            "recipe": {"converter": {"optimizations": [] if scheme == "float32" else ["DEFAULT"]}},
            "data_recipe": {"scale": "x / 16 -> [0, 1]"},
            "accuracy": accuracy, "top5": 1.0, "accuracy_samples": 360, "keras_accuracy": accuracy,
            "latency_ms": {"median": latency, "p90": latency * 1.1, "mean": latency, "std": latency * 0.05,
                           "min": latency * 0.9, "runs": 50, "warmup": 5, "threads": 1},
            "sparsity": 0.5 if scheme == "prune" else 0.01, "max_unique_weights": 255, "build_s": 1.0,
            "total_s": 1.5}


def put_run(store, scheme, model, model_fp, dataset, data_fp, settings=None, metrics=None, error=None,
            artifact=b"TFL3" + bytes(1000), status="failed"):
    """Write one run the way the sweep's driver does (a 'running' row, then its Result); return its result row.

    ``error`` makes it an unsuccessful run of ``status`` (failed, timeout, ...): no figures, no artifact.
    """
    from types import SimpleNamespace

    from optlib.engine import schemes
    from optlib.engine.store import run_key

    settings = schemes.settings_for(scheme) if settings is None else settings
    inputs = Inputs(SimpleNamespace(name=model, fingerprint=model_fp), SimpleNamespace(name=dataset, fingerprint=data_fp))
    spec = Spec(0, scheme, settings, run_key(model_fp, data_fp, scheme, settings))
    run_id = store.start(inputs, spec, "testhost", 1)
    result = Result(spec, status, error) if error else Result(spec, "ok", None, metrics or {}, artifact)
    return result_row(store.get(store.finish(run_id, result)))


def store_canned(store, scheme, model="digits_cnn", dataset="digits", fail=False, status="failed"):
    """Write one run the way the sweep does (start, artifact, finish); return its result row.

    A model or dataset the engine can resolve (a zoo name, ``digits``) gets its
    real fingerprint, so pages find the run as the current selection's.
    """
    from optlib.errors import InputError
    from optlib.inputs import data_refs, models

    def fingerprint(resolve, ref):
        try:
            return resolve(ref).fingerprint
        except InputError:
            return f"{ref}-fp"

    return put_run(store, scheme, model, fingerprint(models.resolve, model), dataset,
                   fingerprint(data_refs.resolve, dataset), metrics=canned_metrics(scheme), error=FAILURE if fail else None,
                   status=status)


class FakeSweep:
    """Stands in for ``optlib.engine.sweep.run``: reports progress like the engine and stores canned rows."""

    def __init__(self, fail=(), error=None, gate=None):
        """``gate``: a threading.Event the sweep waits for after its first scheme (a slow sweep)."""
        self.fail, self.error, self.gate, self.calls = set(fail), error, gate, []

    def __call__(self, model_ref, data_ref, selection="all", overrides=None, store=None, recompute=False,
                 progress=None, trusted=False, weights=None, budget_s=None, executor=None, cancel=None, task=""):
        from optlib.engine import schemes
        from optlib.engine.store import Store

        self.calls.append({"model": model_ref, "data": data_ref, "selection": selection,
                           "overrides": dict(overrides or {}), "recompute": recompute, "trusted": trusted,
                           "budget_s": budget_s})
        if self.error:
            raise self.error
        names = schemes.select(selection)
        store = Store(store)
        total = len(names)
        progress(Progress("", 0, total, "loading", 0.0, 0, f"loading model {model_ref}"))
        rows = []
        for index, name in enumerate(names):
            progress(Progress(name, index, total, "running", (index + 0.5) / total, index, "converting"))
            row = store_canned(store, name, model=model_ref, dataset=data_ref, fail=name in self.fail)
            progress(Progress(name, index, total, row["status"], (index + 1) / total, index + 1,
                              row["error"] or "done", row))
            rows.append(row)
            if self.gate is not None:  # a slow sweep: wait for the gate, or stop when cancelled
                wait_until(lambda: self.gate.is_set() or (cancel is not None and cancel.is_set()), 60)
            if cancel is not None and cancel.is_set():
                for later_index, later in enumerate(names[index + 1:], index + 1):
                    rows.append({"id": None, "scheme": later, "status": "cancelled", "cached": False,
                                 "error": "the sweep was stopped before this scheme started"})
                    progress(Progress(later, later_index, total, "cancelled", 1.0, later_index + 1,
                                      rows[-1]["error"], rows[-1]))
                break
        return {"model": model_ref, "model_note": "", "dataset": data_ref, "store": str(store.path),
                "results": rows}


def make_zip(path, members):
    """Write a zip with ``members`` {name: bytes}; names are written as given (even ``../x``)."""
    with zipfile.ZipFile(path, "w") as bundle:
        for name, content in members.items():
            bundle.writestr(name, content)
    return path


def texts(elements):
    """All the values of a list of AppTest elements, as one string."""
    return "\n".join(str(getattr(element, "value", "")) for element in elements)


def wait_until(condition, seconds=30.0):
    """Poll ``condition()`` every 50 ms until it is true or ``seconds`` pass; return whether it became true."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False
