"""Table 1 and Table 2 of the TensorFlow Lite guide, as frames: published rows beside this machine's own, and
every run in the shape of each table (:func:`runs_table1`, :func:`runs_table2`). Their figures are drawn in
:mod:`optlib.views.table_charts` and :mod:`optlib.views.charts`.

The published figures come from :mod:`optlib.analysis.reference` (assets/reference/). The
local rows are built from stored runs (a :func:`optlib.analysis.report.frame`), so a
figure here is always the same figure the Compare page shows. Ratios make
machines comparable: size reduction (float32 / int8 size), speed-up
(FP32/INT8 latency) and accuracy change ((INT8 - FP32) / FP32).
"""

import math
import socket
from dataclasses import dataclass

import numpy as np
import pandas as pd

from optlib.analysis import quality, reference, report
from optlib.engine import schemes

TABLE1_MODELS = ("mobilenet_v1", "mobilenet_v2", "inception_v3", "resnet_v2_101")
TABLE1_SCHEMES = tuple(s.name for s in schemes.list_schemes(table="table1", variants=True))  # entries' ``tables``
# Table 2's columns and the scheme that gives each: float32, int8 and int16 activations.
TABLE2_SCHEMES = tuple(s.name for s in schemes.list_schemes(table="table2", variants=True))
PUBLISHED = f"Published ({reference.DEVICE})"
PUBLISHED_TABLE2 = f"Published ({reference.DOCUMENT})"
# Table 1 columns shown with the published text as printed (e.g. "0.70", "14").
TEXT_COLUMNS = {"Top-1 (original)": "top1_original", "Top-1 (post-training quantized)": "top1_ptq",
                "Top-1 (quantization-aware trained)": "top1_qat", "Latency original (ms)": "latency_original_ms",
                "Latency PTQ (ms)": "latency_ptq_ms", "Latency QAT (ms)": "latency_qat_ms",
                "Size original (MB)": "size_original_mb", "Size optimized (MB)": "size_optimized_mb"}
TABLE1_COLUMNS = ("Model", "Source", "Top-1 (original)", "Top-1 (post-training quantized)",
                  "Top-1 (quantization-aware trained)", "Latency original (ms)", "Latency PTQ (ms)",
                  "Latency QAT (ms)", "Size original (MB)", "Size optimized (MB)", "Size reduction (x)",
                  "FP32/INT8 latency", "FP32/QAT latency", "(INT8-FP32)/FP32 accuracy", "Note")
TABLE2_COLUMNS = ("Model", "Source", "Accuracy metric type", "Accuracy (float32 activations)",
                  "Accuracy (int8 activations)", "Accuracy (int16 activations)", "(INT8-FP32)/FP32",
                  "(INT16-FP32)/FP32", "Note")


def local_source(threads=1):
    """How a row measured here is labelled: host name, and the interpreter threads when timing matters."""
    if threads is None:
        return f"This machine ({socket.gethostname()})"
    return f"This machine ({socket.gethostname()}, {threads} thread{'s' if threads != 1 else ''})"


def _ratio(top, bottom):
    return top / bottom if has_value(top) and has_value(bottom) and bottom else math.nan


def _change(new, base):
    return (new - base) / base if has_value(new) and has_value(base) and base else math.nan


def has_value(value):
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _published_table1():
    rows = []
    for r in reference.table1().to_dict("records"):
        rows.append(_table1_row(r["model"], PUBLISHED, r["top1_original"], r["top1_ptq"], r["top1_qat"],
                                r["latency_original_ms"], r["latency_ptq_ms"], r["latency_qat_ms"],
                                r["size_original_mb"], r["size_optimized_mb"], "", r["zoo_model"]))
    return rows


def _table1_row(model, source, top1, top1_ptq, top1_qat, lat, lat_ptq, lat_qat, size, size_opt, note, zoo):
    return {"Model": model, "Source": source, "Top-1 (original)": top1, "Top-1 (post-training quantized)": top1_ptq,
            "Top-1 (quantization-aware trained)": top1_qat, "Latency original (ms)": lat,
            "Latency PTQ (ms)": lat_ptq, "Latency QAT (ms)": lat_qat, "Size original (MB)": size,
            "Size optimized (MB)": size_opt, "Size reduction (x)": _ratio(size, size_opt),
            "FP32/INT8 latency": _ratio(lat, lat_ptq), "FP32/QAT latency": _ratio(lat, lat_qat),
            "(INT8-FP32)/FP32 accuracy": _change(top1_ptq, top1), "Note": note, "zoo_model": zoo}


def _latest_ok(df):
    ok = df[df["status"] == "ok"].sort_values("id")
    return ok.groupby(["model", "scheme"]).tail(1).set_index(["model", "scheme"])


def local_table1(df):
    """Rows in Table 1's layout from stored runs of the four Table 1 architectures.

    Accuracy appears only where the model had its ImageNet weights and was
    evaluated on a dataset other than the built-in digits; otherwise the
    note says why the cell is empty.
    """
    rows = []
    if df.empty:
        return rows
    latest = _latest_ok(df)
    names = dict(zip(reference.table1()["zoo_model"], reference.table1()["model"]))
    for zoo in TABLE1_MODELS:
        if (zoo, "float32") not in latest.index:
            continue
        runs = {s: latest.loc[(zoo, s)] for s in TABLE1_SCHEMES if (zoo, s) in latest.index}
        base = runs["float32"]
        notes, accuracy = [], {}
        comparable = bool(base.get("trained")) and base.get("dataset") != "digits"
        for scheme, run in runs.items():
            accuracy[scheme] = run["accuracy"] if comparable else None
        if not base.get("trained"):
            notes.append("untrained architecture (no ImageNet weights): size and latency only")
        elif not comparable:
            notes.append("accuracy needs ImageNet evaluation data; the built-in digits are not comparable")
        if "qat" not in runs:
            notes.append("QAT not run")
        threads = int(base.get("threads") or 1)

        def lat(scheme):
            return runs[scheme]["latency_ms"] if scheme in runs else None

        rows.append(_table1_row(names[zoo], local_source(threads), accuracy.get("float32"), accuracy.get("int8"),
                                accuracy.get("qat"), lat("float32"), lat("int8"), lat("qat"), base["size_mb"],
                                runs["int8"]["size_mb"] if "int8" in runs else None, "; ".join(notes), zoo))
    return rows


def table1_comparison(df):
    """Published and local Table 1 rows, each local row after its published one."""
    local = local_table1(df)
    rows = []
    for published in _published_table1():
        rows.append(published)
        rows += [r for r in local if r["zoo_model"] == published["zoo_model"]]
    return pd.DataFrame(rows, columns=[*TABLE1_COLUMNS, "zoo_model"])


def table2_comparison(df, model=None, dataset=None):
    """Published Table 2 rows, then this machine's rows for ``model`` (all models if None).

    A local row takes top-1 accuracy with float32 activations (float32), int8
    activations (int8) and int16 activations (int16x8); a cell is empty where
    the scheme did not run, failed or the model has no meaningful accuracy
    (an untrained architecture), and the Note says which of these it is.
    """
    rows = []
    for r in reference.table2().to_dict("records"):
        float32, int8, int16 = r["float32"], r["int8"], r["int16"]
        rows.append({"Model": r["model"], "Source": PUBLISHED_TABLE2, "Accuracy metric type": r["metric"],
                     "Accuracy (float32 activations)": r["float32_text"],
                     "Accuracy (int8 activations)": r["int8_text"], "Accuracy (int16 activations)": r["int16_text"],
                     "(INT8-FP32)/FP32": _change(int8, float32), "(INT16-FP32)/FP32": _change(int16, float32),
                     "Note": "lower is better" if r["lower_is_better"] else ""})
    if not df.empty:
        chosen = df[df["scheme"].isin(TABLE2_SCHEMES)]
        if model is not None:
            chosen = chosen[chosen["model"] == model]
        if dataset is not None:
            chosen = chosen[chosen["dataset"] == dataset]
        for (name, data), group in chosen.groupby(["model", "dataset"], sort=False):
            newest = group.sort_values("id").groupby("scheme").tail(1).set_index("scheme")
            ok = group[group["status"] == "ok"].sort_values("id").groupby("scheme").tail(1).set_index("scheme")
            if ok.empty:
                continue
            # The task's metric: top-1 for classifiers (as the guide), MAE for regression (lower is better).
            column = "accuracy" if ok["accuracy"].notna().any() or "metric_value" not in ok else "metric_value"
            kind = "Top-1 Accuracy" if column == "accuracy" else str(ok["metric_type"].iloc[0])
            lower = column == "metric_value" and not bool(ok["higher_is_better"].fillna(True).astype(bool).all())
            values = [ok.loc[s, column] if s in ok.index else None for s in TABLE2_SCHEMES]
            notes = ["lower is better"] if lower else []
            if not any(has_value(v) for v in values):
                notes.append("no accuracy: untrained model (size and latency only)")
            for scheme in TABLE2_SCHEMES:
                if scheme in ok.index:
                    continue
                if scheme in newest.index and newest.loc[scheme, "status"] != "ok":
                    error = newest.loc[scheme, "error"]
                    notes.append(f"{scheme} {newest.loc[scheme, 'status']}" + (f": {error}" if has_value(error) and error
                                                                                else ""))
                else:
                    notes.append(f"{scheme} not run")
            rows.append({"Model": f"{name} on {data}", "Source": local_source(None),
                         "Accuracy metric type": kind, "Accuracy (float32 activations)": _text(values[0]),
                         "Accuracy (int8 activations)": _text(values[1]),
                         "Accuracy (int16 activations)": _text(values[2]),
                         "(INT8-FP32)/FP32": _change(values[1], values[0]),
                         "(INT16-FP32)/FP32": _change(values[2], values[0]), "Note": "; ".join(notes)})
    return pd.DataFrame(rows, columns=list(TABLE2_COLUMNS))


def _text(value):
    return f"{value:.4f}" if has_value(value) else ""


def display(table):
    """Return the table as text cells: published figures exactly as printed, local ones rounded.

    Empty cells stay empty; ratios get three decimals.
    """
    published = {}
    if "Top-1 (original)" in table.columns:  # Table 1: each published cell as written in table1.csv
        raw = pd.read_csv(reference.REFERENCE_DIR / "table1.csv", dtype=str, keep_default_na=False)
        published = {r["model"]: r for r in raw.to_dict("records")}
    rows = []
    for row in table.drop(columns=["zoo_model"], errors="ignore").to_dict("records"):
        texts = {}
        for column, value in row.items():
            if row["Source"] == PUBLISHED and column in TEXT_COLUMNS:
                texts[column] = published[row["Model"]][TEXT_COLUMNS[column]] or reference.NA_LABEL
            else:
                texts[column] = _cell(column, value)
        rows.append(texts)
    return pd.DataFrame(rows, columns=[c for c in table.columns if c != "zoo_model"])


def _cell(column, value):
    if not has_value(value) or value == "":
        return ""
    if not isinstance(value, float):
        return str(value)
    if column.startswith("Top-1"):
        return f"{value:.3f}"
    if "(ms)" in column:
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    if "(MB)" in column:
        return f"{value:.2f}" if value < 1 else f"{value:.1f}"
    return f"{value:.3f}"


def to_csv(table):
    """CSV text of a comparison table, as displayed."""
    return display(table).to_csv(index=False)


def to_markdown(table):
    """Markdown text of a comparison table, as displayed."""
    shown = display(table)
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    for row in shown.to_dict("records"):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row.values()) + " |")
    return "\n".join(lines) + "\n"


def table1_schemes(include_qat=False):
    """The schemes a Table 1 reproduction runs: float32 and int8, and QAT when asked for."""
    return tuple(name for name in TABLE1_SCHEMES if include_qat or schemes.get(name).family == "post-training")


def reproduce_overrides(runs=50):
    """The settings a Table 1 reproduction runs with (the same for every architecture)."""
    return {"runs": runs, "rep_samples": 100, "epochs": 1, "train_samples": 256}


def plan_table1(models=TABLE1_MODELS, data="digits", include_qat=False, runs=50, weights=None):
    """What :func:`reproduce_table1` would run, resolved without TensorFlow.

    Returns:
        A list of ``(model, scheme, key)``, one per job; ``key`` is the
        store's run key, so ``Store.lookup(key)`` says whether the result is
        already stored (and would be served at once).

    Raises:
        InputError: an unknown architecture or dataset.
    """
    from optlib.engine import sweep

    selection = ",".join(table1_schemes(include_qat))
    jobs = []
    for model in models:
        _, specs = sweep.plan(model, data, selection, reproduce_overrides(runs), (weights or {}).get(model))
        jobs += [(model, spec.scheme, spec.key) for spec in specs]
    return jobs


def expected_seconds(jobs, store):
    """Estimate the wall time of ``(model, scheme)`` jobs from this machine's own earlier runs.

    Each job counts the median ``total_s`` (build, measurement) of the ok runs
    of the same model and scheme in ``store``, with any dataset and settings
    (:func:`optlib.analysis.timing.typical_seconds`).

    Returns:
        (seconds for the jobs with earlier runs, [(model, scheme) with none to go by]).
    """
    from optlib.analysis import timing

    typical, seconds, unknown = {}, 0.0, []
    for model, scheme in jobs:
        if model not in typical:
            typical[model] = timing.typical_seconds(store.rows(model=model, status="ok"), model=model)
        if scheme in typical[model]:
            seconds += typical[model][scheme]
        else:
            unknown.append((model, scheme))
    return seconds, unknown


def weights_found(model):
    """True when the ImageNet weights of a Table 1 architecture are in the Keras cache."""
    from optlib.inputs import models

    return (models.keras_cache_dir() / models.ZOO[model].weights_file).is_file()


@dataclass(frozen=True)
class Table1Progress:
    """Progress of a Table 1 reproduction: which architecture, and its sweep's own progress."""

    model: str
    model_index: int
    models: int
    sweep: object  # the optlib.engine.sweep.Progress of this architecture's sweep


def reproduce_table1(models=TABLE1_MODELS, data="digits", include_qat=False, store=None, progress=None,
                     runs=50, weights=None):
    """Run the Table 1 architectures through float32, int8 (and QAT) and return the sweep results.

    QAT here fine-tunes one epoch on at most 256 samples: enough to build the
    model whose size and latency Table 1 compares, not to train it.
    """
    from optlib.engine import sweep

    selection = ",".join(table1_schemes(include_qat))
    overrides = reproduce_overrides(runs)
    results = []
    for index, model in enumerate(models):
        def relay(event, index=index):
            if progress:
                progress(Table1Progress(model, index, len(models), event))

        results.append(sweep.run(model, data, selection, overrides, store, progress=relay,
                                 weights=(weights or {}).get(model)))
    return results


# --- Every run as a Table 1 / Table 2-style frame (Compare and Export show them) ----------

RUNS_TABLE1_COLUMNS = (
    "Model", "Dataset", "Scheme", "Top-1 accuracy (%)", "Δ top-1 vs float32 (points)",
    "Latency (ms)", "Speed-up vs float32 (×)", "Size (MB)", "Smaller than float32 (×)",
    "Gzipped (MB)", "Gzipped smaller than float32 (×)", "Note",
)
# Table 2 of the guide: accuracy with float32, int8 and int16 activations.
TABLE2_ACCURACY = {s.name: f"Accuracy ({s.activations} activations)"
                   for s in schemes.list_schemes(table="table2", variants=True)}
RUNS_TABLE2_COLUMNS = ("Model", "Dataset", "Accuracy metric type", *TABLE2_ACCURACY.values(), "Note")
RUNS_TABLE2_FORMATS = dict.fromkeys(TABLE2_ACCURACY.values(), "{:.2f}")


def _sig(value, digits=4):
    """Round to significant digits (latencies and sizes span orders of magnitude)."""
    if value is None or not np.isfinite(value) or value == 0:
        return value
    return round(float(value), digits - 1 - int(math.floor(math.log10(abs(value)))))


# --- Table 1: accuracy, latency and size per scheme ----------------------------

def _row_note(row):
    if row["status"] != "ok":
        return f"{row['status']}: {row['error']}" if row["error"] else str(row["status"])
    if pd.isna(row.get("metric_value", row["accuracy"])) and "no labels" in str(row.get("accuracy_note")):
        return f"no labels: fidelity only (SNR {row.get('fidelity_snr_db', math.nan):.1f} dB vs the float model)"
    if pd.isna(row.get("metric_value", row["accuracy"])):
        return "untrained model: no accuracy (size and latency only)"
    return ""


# Table 1's quality columns when a run's metric is not top-1 (a regression model's MAE, a binary accuracy):
# each row names its metric and direction, then its value and its change against float32 in the metric's unit.
METRIC_COLUMNS = ("Metric", "Value", "Δ vs float32")
RUNS_TABLE1_METRIC_COLUMNS = (*RUNS_TABLE1_COLUMNS[:3], *METRIC_COLUMNS, *RUNS_TABLE1_COLUMNS[5:])


def runs_table1(df):
    """Return a Table 1-style comparison: accuracy, latency and size of every run, with deltas.

    Args:
        df: a frame from :func:`optlib.analysis.report.frame` (pass :func:`optlib.analysis.report.latest`
            of it for one row per scheme).

    Returns:
        A DataFrame, one row per run in ``df``, ordered by model, dataset and registry order. When every run
        is a classifier, its columns are :data:`RUNS_TABLE1_COLUMNS` (the guide's): top-1 in percent and "Δ top-1"
        in percentage points (scheme minus float32). Otherwise (a regression model's MAE, a binary
        accuracy) they are :data:`RUNS_TABLE1_METRIC_COLUMNS`: "Metric" names each run's metric and which
        direction is better, "Value" is in percent for accuracies and in the metric's unit otherwise, and
        "Δ vs float32" in points or that unit. "×" columns are float32 / scheme. Missing figures are NaN;
        "Note" says why (failed run, untrained model, no labels).
    """
    rows = df.sort_values(["model", "dataset", "scheme_order", "id"], kind="stable")
    figures = {
        "Model": rows["model"], "Dataset": rows["dataset"], "Scheme": rows["scheme"],
        "Latency (ms)": rows["latency_ms"].map(_sig),
        "Speed-up vs float32 (×)": rows["speedup"].round(2),
        "Size (MB)": rows["size_mb"].map(_sig),
        "Smaller than float32 (×)": rows["size_ratio"].round(2),
        "Gzipped (MB)": rows["gzip_mb"].map(_sig),
        "Gzipped smaller than float32 (×)": rows["gzip_ratio"].round(2),
        "Note": [_row_note(row) for _, row in rows.iterrows()],
    }
    if quality.only_top1(rows):
        figures.update({"Top-1 accuracy (%)": (rows["accuracy"] * 100).round(2),
                        "Δ top-1 vs float32 (points)": rows["accuracy_delta"].round(2)})
        columns = RUNS_TABLE1_COLUMNS
    else:
        records = [row for _, row in rows.iterrows()]
        figures.update({"Metric": [quality.label(row) if row["status"] == "ok" else "" for row in records],
                        "Value": [quality.shown(row) for row in records],
                        "Δ vs float32": [row["metric_delta"] * (100 if quality.is_percent(row) else 1)
                                         for row in records]})
        columns = RUNS_TABLE1_METRIC_COLUMNS
    table = pd.DataFrame(figures, columns=list(columns))
    for column in ("Value", "Δ vs float32"):
        if column in table:
            table[column] = table[column].astype(float).map(_sig)
    return table.reset_index(drop=True)


RUNS_TABLE1_FORMATS = {
    "Top-1 accuracy (%)": "{:.2f}", "Δ top-1 vs float32 (points)": "{:+.2f}", "Value": "{:.4g}",
    "Δ vs float32": "{:+.3g}", "Latency (ms)": "{:.4g}",
    "Speed-up vs float32 (×)": "{:.2f}×", "Size (MB)": "{:.4g}", "Smaller than float32 (×)": "{:.2f}×",
    "Gzipped (MB)": "{:.4g}", "Gzipped smaller than float32 (×)": "{:.2f}×",
}


def runs_table2(df):
    """Return a Table 2-style comparison: accuracy with float32, int8 and int16 activations.

    Args:
        df: a frame from :func:`optlib.analysis.report.frame`.

    Returns:
        A DataFrame with the columns in :data:`RUNS_TABLE2_COLUMNS`: one row per
        model and dataset that has a float32, int8 or int16x8 run; accuracy
        in percent from the newest ok run of schemes ``float32`` /
        ``int8`` / ``int16x8``; NaN where the scheme was not run, failed or
        has no accuracy (untrained model), with the reason in "Note".
    """
    subset = df[df["scheme"].isin(TABLE2_ACCURACY)]
    newest = report.latest(subset)
    records = []
    for (model, dataset), group in subset.groupby(["model", "dataset"], sort=True, dropna=False):
        kinds = list(dict.fromkeys(group["metric_type"].dropna())) or ["Top-1 accuracy"]
        percent = kinds[0] in ("Top-1 accuracy", "Binary accuracy")
        column_of = "accuracy" if percent else "metric_value"
        higher = bool(group["higher_is_better"].fillna(True).astype(bool).all())
        record = {"Model": model, "Dataset": dataset,
                  "Accuracy metric type": kinds[0] + ("" if percent else
                                                      f" ({'higher' if higher else 'lower'} is better)")}
        notes = []
        for scheme, column in TABLE2_ACCURACY.items():
            ok = newest[(newest["model"] == model) & (newest["dataset"] == dataset) & (newest["scheme"] == scheme)]
            value = ok[column_of].iloc[0] if len(ok) else math.nan
            record[column] = float(value * 100 if percent else value) if len(ok) else math.nan
            if len(ok) and pd.isna(value):
                unlabelled = "no labels" in str(ok["accuracy_note"].iloc[0])
                notes.append(f"{scheme}: no accuracy ({'no labels' if unlabelled else 'untrained model'})")
            elif ok.empty:
                tried = group[group["scheme"] == scheme]
                notes.append(f"{scheme}: {tried['status'].iloc[-1]}" if len(tried) else f"{scheme}: not run")
        record["Note"] = "; ".join(notes)
        records.append(record)
    table = pd.DataFrame.from_records(records, columns=list(RUNS_TABLE2_COLUMNS))
    for column in TABLE2_ACCURACY.values():
        table[column] = table[column].astype(float).round(2)
    return table
