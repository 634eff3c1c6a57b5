"""Table 1 and Table 2 of the TensorFlow Lite guide: published rows beside this machine's own.

The published figures come from ``optlib.guide.reference`` (assets/reference/). The
local rows are built from stored runs (a :func:`optlib.analysis.report.frame`), so a
figure here is always the same figure the Compare page shows. Ratios make
machines comparable: size reduction (float32 / int8 size), speed-up
(FP32/INT8 latency) and accuracy change ((INT8 - FP32) / FP32).

The figures (:func:`table1_figure`, :func:`table1_ratio_figure`,
:func:`table2_figure`) are pure functions of these tables: Plotly, no
Streamlit, nothing drawn or saved.
"""

import math
import socket
from dataclasses import dataclass

import pandas as pd

from optlib.engine import schemes
from optlib.guide import reference

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
