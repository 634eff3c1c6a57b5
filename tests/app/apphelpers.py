"""Helpers for the AppTest tests: canned runs, a stand-in sweep, zip files and element texts."""

import time
import zipfile
from pathlib import Path

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


def store_canned(store, scheme, model="digits_cnn", dataset="digits", fail=False):
    """Write one run the way the sweep does (start, artifact, finish); return its result row.

    A model or dataset the engine can resolve (a zoo name, ``digits``) gets its
    real fingerprint, so pages find the run as the current selection's.
    """
    from optlib import data, models, schemes, sweep
    from optlib.errors import InputError
    from optlib.store import run_key

    def fingerprint(resolve, ref):
        try:
            return resolve(ref).fingerprint
        except InputError:
            return f"{ref}-fp"

    model_fp, data_fp = fingerprint(models.resolve, model), fingerprint(data.resolve, dataset)
    settings = schemes.settings_for(scheme)
    key = run_key(model_fp, data_fp, scheme, settings)
    run_id = store.start(key, model, model_fp, dataset, data_fp, scheme, settings)
    if fail:
        store.finish(run_id, "failed", error=FAILURE)
    else:
        path = store.save_artifact(key, scheme, b"TFL3" + bytes(1000))
        store.finish(run_id, "ok", canned_metrics(scheme), tflite_path=path)
    return sweep.result_row(store.get(run_id))


class FakeSweep:
    """Stands in for ``optlib.sweep.run``: reports progress like the engine and stores canned rows."""

    def __init__(self, fail=(), error=None, gate=None):
        """``gate``: a threading.Event the sweep waits for after its first scheme (a slow sweep)."""
        self.fail, self.error, self.gate, self.calls = set(fail), error, gate, []

    def __call__(self, model_ref, data_ref, selection="all", overrides=None, store=None, recompute=False,
                 progress=None, trusted=False, weights=None, isolate=True, budget_s=None):
        from optlib import schemes
        from optlib.store import Store

        self.calls.append({"model": model_ref, "data": data_ref, "selection": selection,
                           "overrides": dict(overrides or {}), "recompute": recompute, "trusted": trusted,
                           "budget_s": budget_s})
        if self.error:
            raise self.error
        names = schemes.select(selection)
        store = Store(store)
        total = len(names)
        progress({"scheme": "", "index": 0, "total": total, "stage": "loading", "fraction": 0.0,
                  "message": f"loading model {model_ref}", "row": None})
        rows = []
        for index, name in enumerate(names):
            progress({"scheme": name, "index": index, "total": total, "stage": "running",
                      "fraction": (index + 0.5) / total, "message": "converting", "row": None})
            row = store_canned(store, name, model=model_ref, dataset=data_ref, fail=name in self.fail)
            progress({"scheme": name, "index": index, "total": total, "stage": row["status"],
                      "fraction": (index + 1) / total, "message": row["error"] or "done", "row": row})
            rows.append(row)
            if self.gate is not None:
                self.gate.wait(60)
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
