"""Results as a table: one row per run, compared with the float32 baseline.

:func:`frame` turns result rows (the flat dicts of :func:`optlib.engine.store.result_row`,
or rows straight from :meth:`optlib.engine.store.Store.rows`) into a pandas DataFrame
that the charts, the pages and the exports all read. Comparisons with the
float32 run of the same model and dataset are computed here, once; where no
such run exists they are NaN, never guessed.

    >>> df = frame(store.rows(latest=True))
    >>> df[["scheme", "accuracy", "accuracy_delta", "size_ratio", "speedup"]]

Importing this module does not import TensorFlow.
"""

import hashlib
import json
import math

import numpy as np
import pandas as pd

from optlib import units
from optlib.analysis import quality
from optlib.engine import schemes
from optlib.engine.store import flat

BASELINE = "float32"
MB = units.MB  # decimal megabytes, as the TensorFlow Lite guide's tables use

COLUMNS = (
    "id", "model", "dataset", "scheme", "family", "title", "status", "error",
    "accuracy", "top5", "keras_accuracy", "classes",
    "size_bytes", "gzip_bytes", "size_mb", "gzip_mb",
    "latency_ms", "latency_p90_ms", "latency_min_ms", "latency_std_ms", "latency_runs", "latency_warmup",
    "threads", "runtime", "fallback_reason",
    "sparsity", "max_unique_weights", "train_s", "build_s",
    "tflite_path", "settings", "trained",
    "accuracy_delta", "metric_delta", "size_ratio", "gzip_ratio", "speedup",
    "scheme_order", "cached", "accuracy_note", "recipe", "model_fingerprint", "dataset_fingerprint",
    "targets",  # where it runs (optlib.engine.targets): dict per target, None for runs from before
    "phases_s",  # where its time went: {phase: seconds} (optlib.engine.job), {} for runs from before
    "backend", "float32_convert_s", "calibrate_s", "quantize_s",
    # What the outputs are for, and how close each run stays to the Keras float model (optlib.engine.task_metrics).
    "task", "metric_name", "metric_type", "metric_value", "higher_is_better", "mae", "rmse", "auc",
    "fidelity_snr_db", "fidelity_cosine", "fidelity_max_abs_error", "fidelity_top1_agreement",
    # What the model is (optlib.inputs.graph_models.FORMS), and for a Keras 3 file rebuilt as tf_keras how far the
    # rebuild's outputs are from Keras 3's own (NaN for any other model).
    "model_form", "keras3_max_abs_difference",
)
NUMERIC = (
    "accuracy", "top5", "keras_accuracy", "size_bytes", "gzip_bytes", "size_mb", "gzip_mb",
    "latency_ms", "latency_p90_ms", "latency_min_ms", "latency_std_ms", "latency_runs", "latency_warmup", "threads",
    "sparsity", "max_unique_weights",
    "train_s", "build_s", "accuracy_delta", "metric_delta", "size_ratio", "gzip_ratio", "speedup",
    "float32_convert_s", "calibrate_s", "quantize_s",
    "metric_value", "mae", "rmse", "auc",
    "fidelity_snr_db", "fidelity_cosine", "fidelity_max_abs_error", "fidelity_top1_agreement",
    "keras3_max_abs_difference",
)
INTEGERS = ("size_bytes", "gzip_bytes", "threads", "max_unique_weights", "latency_runs", "latency_warmup")  # whole numbers in exports
BULKY = ("kernels",)  # per-kernel lists: too big for a table export


def scheme_order(name):
    """Return the position of a scheme in the registry, a variant just after its scheme (unknown names last)."""
    order = []
    for core in schemes.names():
        order += [core] + [n for n in schemes.names(variants=True) if schemes.get(n).variant_of == core]
    return order.index(name) if name in order else len(order)


def _number(value):
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _record(row):
    row = flat(row)
    latency = row.get("latency_ms")
    latency = latency if isinstance(latency, dict) else {"median": latency}
    scheme = row.get("scheme")
    known = schemes.find(scheme)
    size, gz = _number(row.get("size_bytes")), _number(row.get("gzip_bytes"))
    return {
        "id": row.get("id"), "model": row.get("model"), "dataset": row.get("dataset"),
        "scheme": scheme, "family": known.family if known else None,
        "title": known.title if known else scheme,
        "status": row.get("status"), "error": row.get("error"),
        "accuracy": _number(row.get("accuracy")), "top5": _number(row.get("top5")),
        "keras_accuracy": _number(row.get("keras_accuracy")), "classes": _number(row.get("classes")),
        "size_bytes": size, "gzip_bytes": gz, "size_mb": size / MB, "gzip_mb": gz / MB,
        "latency_ms": _number(latency.get("median")), "latency_p90_ms": _number(latency.get("p90")),
        "latency_min_ms": _number(latency.get("min")), "latency_runs": _number(latency.get("runs")),
        "latency_warmup": _number(latency.get("warmup")),
        "latency_std_ms": _number(latency.get("std")),
        "threads": _number(row.get("threads", latency.get("threads"))),
        # Which LiteRT runtime timed the figure, and why it was not CompiledModel (see measure.latency).
        "runtime": latency.get("runtime"), "fallback_reason": latency.get("fallback_reason"),
        "sparsity": _number(row.get("sparsity")),
        "max_unique_weights": _number(row.get("max_unique_weights")),
        "train_s": _number(row.get("train_s")), "build_s": _number(row.get("build_s")),
        "tflite_path": row.get("tflite_path"), "settings": row.get("settings") or {},
        "trained": row.get("trained"),
        "scheme_order": scheme_order(scheme), "cached": row.get("cached"),
        "accuracy_note": row.get("accuracy_note"), "recipe": row.get("recipe"),
        # Stored rows carry them: a baseline is always of the very same model file and data.
        "model_fingerprint": row.get("model_fingerprint"), "dataset_fingerprint": row.get("dataset_fingerprint"),
        "targets": row.get("targets"),
        "phases_s": row.get("phases_s") or {},  # where the run's time went (optlib.engine.job)
        # What made the model (training schemes end in a converter conversion), and LiteRT Quantizer's timings.
        "backend": ((known.backend or "converter") if known else None),
        "float32_convert_s": _number(row.get("float32_convert_s")), "calibrate_s": _number(row.get("calibrate_s")),
        "quantize_s": _number(row.get("quantize_s")),
        # Rows from before tasks were recorded are classifiers: their metric is top-1.
        "task": row.get("task") or "classification",
        "metric_name": row.get("metric_name") or "Top-1 accuracy",
        "metric_type": row.get("metric_type") or "Top-1 accuracy",
        "metric_value": _number(row.get("metric_value", row.get("accuracy"))),
        "higher_is_better": row.get("higher_is_better", True),
        **{key: _number(row.get(key)) for key in ("mae", "rmse", "auc", "fidelity_snr_db", "fidelity_cosine",
                                                  "fidelity_max_abs_error", "fidelity_top1_agreement")},
        "model_form": row.get("model_form") or "keras",
        "keras3_max_abs_difference": _number((row.get("keras3_rebuild") or {}).get("max_abs_difference")),
    }


def _ratio(top, bottom):
    return top / bottom if bottom and not math.isnan(top) and not math.isnan(bottom) else math.nan


def _add_baseline(df):
    """Compare every ok run with the newest ok float32 run of the same model and dataset.

    Speed-ups compare only runs timed with the same number of threads; the
    other comparisons do not depend on threads.
    """
    for column in ("accuracy_delta", "metric_delta", "size_ratio", "gzip_ratio", "speedup"):
        df[column] = math.nan
    ok = df["status"] == "ok"
    bases = df[ok & (df["scheme"] == BASELINE)].sort_values("id", ascending=False, na_position="last")
    for index, row in df[ok].iterrows():
        same = bases[(bases["model"] == row["model"]) & (bases["dataset"] == row["dataset"])]
        for key in ("model_fingerprint", "dataset_fingerprint"):
            if row[key] is not None:  # stored rows carry fingerprints: never compare different files
                same = same[same[key].isna() | (same[key] == row[key])]
        if same.empty:
            continue
        base = same.iloc[0]
        df.at[index, "accuracy_delta"] = (row["accuracy"] - base["accuracy"]) * 100.0
        change = quality.delta(row, base)  # the task's metric, in its unit (a fraction for accuracies, like the value)
        df.at[index, "metric_delta"] = math.nan if change is None else change
        df.at[index, "size_ratio"] = _ratio(base["size_bytes"], row["size_bytes"])
        df.at[index, "gzip_ratio"] = _ratio(base["gzip_bytes"], row["gzip_bytes"])
        timed = same[same["threads"] == row["threads"]]
        if not timed.empty:
            df.at[index, "speedup"] = _ratio(timed.iloc[0]["latency_ms"], row["latency_ms"])
    return df


def _tell_files_apart(df):
    """Add a short hash of the fingerprint to a name that more than one model file uses.

    Zoo models keep their names: their fingerprints are recipes (trained or
    not, which weights), and Table 1 finds its rows by the zoo name.
    """
    from optlib.inputs.models import ZOO

    files = df[df["model_fingerprint"].notna() & ~df["model"].isin(list(ZOO))]
    fingerprints = files.groupby("model")["model_fingerprint"].nunique()
    for name in fingerprints[fingerprints > 1].index:
        same = (df["model"] == name) & df["model_fingerprint"].notna()
        df.loc[same, "model"] = name + " · " + df.loc[same, "model_fingerprint"].map(_short_hash)
    return df


def _short_hash(text):
    return hashlib.sha256(str(text).encode()).hexdigest()[:6]


def of_files(df, model_src, data_src):
    """The runs of exactly this model file and dataset (by fingerprint), under their own names.

    ``model_src`` and ``data_src`` are what :func:`optlib.engine.sweep.plan` resolves a
    selection to; another file that happens to have the same name is left out.
    """
    same = df[df["model_fingerprint"].eq(model_src.fingerprint) & df["dataset_fingerprint"].eq(data_src.fingerprint)]
    return same.assign(model=model_src.name, dataset=data_src.name)


def frame(rows):
    """Build the results DataFrame from result rows.

    Args:
        rows: result rows (flat dicts as from :func:`optlib.engine.store.result_row`
            or the CLI's ``--json``), or stored rows from
            :meth:`optlib.engine.store.Store.rows` (their ``metrics`` are flattened).

    Returns:
        One row per run, sorted by model, dataset, registry order of the
        scheme and id, with the columns in :data:`COLUMNS`: ``id``,
        ``model``, ``dataset``, ``scheme``, ``family`` and ``title`` (from the
        registry), ``status``, ``error``, ``accuracy``, ``top5``,
        ``keras_accuracy`` (fractions 0..1, NaN when not measured, e.g. an
        untrained model), ``size_bytes``, ``gzip_bytes``, ``size_mb``,
        ``gzip_mb`` (decimal MB), ``latency_ms`` (median), ``latency_p90_ms``,
        ``latency_std_ms``, ``threads``, ``runtime`` (the LiteRT runtime that
        timed it) and ``fallback_reason`` (why not CompiledModel; None when it
        was), ``sparsity``, ``max_unique_weights``,
        ``train_s``, ``build_s``, ``tflite_path``, ``settings`` (dict),
        ``trained``; comparisons with the newest ok float32 run of the same
        model and dataset: ``accuracy_delta`` (percentage points, scheme
        minus float32), ``metric_delta`` (the task's metric, scheme minus
        float32, in the unit of ``metric_value``: a fraction for accuracies), ``size_ratio`` and ``gzip_ratio`` (float32 size /
        size: "times smaller"), ``speedup`` (float32 latency / latency, same
        thread count only), all NaN without such a baseline; and
        ``scheme_order``, ``cached``, ``accuracy_note``, ``recipe`` (dict,
        what :func:`optlib.views.codegen.code_for` needs), ``model_fingerprint`` and
        ``dataset_fingerprint`` (stored rows only).

        Two different model files with one name (two uploads of ``model.keras``)
        are told apart: their ``model`` gets a short hash of the file's
        fingerprint, e.g. ``model.keras · 3fa2c1``.
    """
    records = [_record(row) for row in rows or []]
    df = pd.DataFrame.from_records(records, columns=COLUMNS)
    for column in NUMERIC:
        df[column] = pd.to_numeric(df[column], errors="coerce").astype(float)
    df = _add_baseline(df)
    df = _tell_files_apart(df)
    df = df.sort_values(["model", "dataset", "scheme_order", "id"], kind="stable", na_position="last")
    return df.reset_index(drop=True)[list(COLUMNS)]


def latest(df):
    """Keep the newest ok run per model, dataset and scheme (for one bar per scheme).

    Returns:
        A filtered copy of ``df`` in the same order.
    """
    ok = df[df["status"] == "ok"]
    newest = ok.sort_values("id", ascending=False).drop_duplicates(["model", "dataset", "scheme"])
    return ok.loc[ok.index.isin(newest.index)]


def pareto(df, x, y="accuracy", maximize=True):
    """Return the runs on the Pareto front: nothing else is both smaller in ``x`` and better in ``y``.

    Args:
        df: a frame from :func:`frame` (or any DataFrame with columns ``x`` and ``y``).
        x: the column to minimise, e.g. ``"size_mb"``, ``"gzip_mb"``, ``"latency_ms"``.
        y: the column to maximise (default ``"accuracy"``), or to minimise with ``maximize=False`` (an MAE).

    Returns:
        The non-dominated rows (those with both values present), sorted by
        ``x`` ascending. Runs with identical values are all kept.

    Raises:
        KeyError: ``x`` or ``y`` is not a column of ``df``.
    """
    for column in (x, y):
        if column not in df.columns:
            raise KeyError(f"No column '{column}' in the results; columns: {', '.join(map(str, df.columns))}.")
    points = df.dropna(subset=[x, y])
    xs, ys = points[x].to_numpy(float), points[y].to_numpy(float) * (1.0 if maximize else -1.0)
    # j dominates i when it is no worse in both and strictly better in one.
    dominated = ((xs[None, :] <= xs[:, None]) & (ys[None, :] >= ys[:, None])
                 & ((xs[None, :] < xs[:, None]) | (ys[None, :] > ys[:, None]))).any(axis=1)
    return points[~dominated].sort_values([x, y], ascending=[True, not maximize], kind="stable")


def _plain(value):
    """Make a cell JSON-friendly: NaN -> None, numpy scalars -> Python."""
    if isinstance(value, (dict, list)):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _export_frame(df):
    out = df.drop(columns=[c for c in BULKY if c in df.columns])
    for column in INTEGERS:
        if column in out.columns:
            out[column] = out[column].round().astype("Int64")
    return out


def to_csv(df):
    """Return the results as CSV text (bulky columns dropped; dicts as compact JSON).

    Missing values are empty cells.
    """
    out = _export_frame(df).copy()
    for column in out.columns:
        if out[column].map(lambda v: isinstance(v, (dict, list))).any():
            out[column] = out[column].map(
                lambda v: json.dumps(v, sort_keys=True, separators=(",", ":")) if isinstance(v, (dict, list)) else v)
    return out.to_csv(index=False)


def to_json(df):
    """Return the results as a JSON array of objects (bulky columns dropped, NaN as null)."""
    out = _export_frame(df)
    records = [{column: _plain(value) for column, value in row.items()}
               for row in out.to_dict(orient="records")]
    return json.dumps(records, indent=2, default=str)
