"""Table 1 and Table 2 of the TensorFlow Lite guide: published rows beside this machine's own.

The published figures come from ``optlib.reference`` (assets/reference/). The
local rows are built from stored runs (a :func:`optlib.report.frame`), so a
figure here is always the same figure the Compare page shows. Ratios make
machines comparable: size reduction (float32 / int8 size), speed-up
(FP32/INT8 latency) and accuracy change ((INT8 - FP32) / FP32).

The figures (:func:`table1_figure`, :func:`table1_ratio_figure`,
:func:`table2_figure`) are pure functions of these tables: Plotly, no
Streamlit, nothing drawn or saved.
"""

import math
import re
import socket

import pandas as pd

from optlib import reference

TABLE1_MODELS = ("mobilenet_v1", "mobilenet_v2", "inception_v3", "resnet_v2_101")
TABLE1_SCHEMES = ("float32", "int8", "qat")
# Table 2's columns and the scheme that gives each: float32, int8 and int16 activations.
TABLE2_SCHEMES = ("float32", "int8", "int16x8")
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
    return top / bottom if _ok(top) and _ok(bottom) and bottom else math.nan


def _change(new, base):
    return (new - base) / base if _ok(new) and _ok(base) and base else math.nan


def _ok(value):
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
            values = [ok.loc[s, "accuracy"] if s in ok.index else None for s in TABLE2_SCHEMES]
            notes = []
            if not any(_ok(v) for v in values):
                notes.append("no accuracy: untrained model (size and latency only)")
            for scheme in TABLE2_SCHEMES:
                if scheme in ok.index:
                    continue
                if scheme in newest.index and newest.loc[scheme, "status"] != "ok":
                    error = newest.loc[scheme, "error"]
                    notes.append(f"{scheme} {newest.loc[scheme, 'status']}" + (f": {error}" if _ok(error) and error
                                                                                else ""))
                else:
                    notes.append(f"{scheme} not run")
            rows.append({"Model": f"{name} on {data}", "Source": local_source(None),
                         "Accuracy metric type": "Top-1 Accuracy", "Accuracy (float32 activations)": _text(values[0]),
                         "Accuracy (int8 activations)": _text(values[1]),
                         "Accuracy (int16 activations)": _text(values[2]),
                         "(INT8-FP32)/FP32": _change(values[1], values[0]),
                         "(INT16-FP32)/FP32": _change(values[2], values[0]), "Note": "; ".join(notes)})
    return pd.DataFrame(rows, columns=list(TABLE2_COLUMNS))


def _text(value):
    return f"{value:.4f}" if _ok(value) else ""


def display(table):
    """Return the table as text cells: published figures exactly as printed, local ones rounded.

    Empty cells stay empty; ratios get three decimals.
    """
    published = {}
    if "Top-1 (original)" in table.columns:  # Table 1: the seed's own text for each published cell
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
    if not _ok(value) or value == "":
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
    return TABLE1_SCHEMES if include_qat else TABLE1_SCHEMES[:2]


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
    from optlib import sweep

    selection = ",".join(table1_schemes(include_qat))
    jobs = []
    for model in models:
        _, _, planned = sweep.plan(model, data, selection, reproduce_overrides(runs), (weights or {}).get(model))
        jobs += [(model, name, key) for name, _, key in planned]
    return jobs


def expected_seconds(jobs, store):
    """Estimate the wall time of ``(model, scheme)`` jobs from this machine's own earlier runs.

    Each job counts the median ``total_s`` (build, measurement) of the ok runs
    of the same model and scheme in ``store``, with any dataset and settings
    (:func:`optlib.timing.typical_seconds`).

    Returns:
        (seconds for the jobs with earlier runs, [(model, scheme) with none to go by]).
    """
    from optlib import timing

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
    from optlib import models

    return (models.keras_cache_dir() / models.ZOO[model].weights_file).is_file()


def reproduce_table1(models=TABLE1_MODELS, data="digits", include_qat=False, store=None, progress=None,
                     runs=50, weights=None):
    """Run the Table 1 architectures through float32, int8 (and QAT) and return the sweep results.

    QAT here fine-tunes one epoch on at most 256 samples: enough to build the
    model whose size and latency Table 1 compares, not to train it.
    """
    from optlib import sweep

    selection = ",".join(table1_schemes(include_qat))
    overrides = reproduce_overrides(runs)
    results = []
    for index, model in enumerate(models):
        def relay(event, index=index):
            if progress:
                progress({**event, "model": model, "model_index": index, "models": len(models)})

        results.append(sweep.run(model, data, selection, overrides, store, progress=relay,
                                 weights=(weights or {}).get(model)))
    return results


# --- Figures ------------------------------------------------------------------
# Pure functions of the comparison tables above: a table in, a Plotly figure out.
# Published bars are hatched and paler, this machine's are solid, so a printed or
# projected chart still tells the two apart; every trace and axis says which is which.

SHORT_PUBLISHED = "Published (Pixel 2)"
SHORT_LOCAL = "This machine"
PUBLISHED_COLOR = "#4c78a8"
LOCAL_COLOR = "#ff6f00"
TEMPLATE = "plotly_white"
_HATCH = {"shape": "/", "fgcolor": "white", "solidity": 0.3}
_SCHEME_COLORS = {"float32": "#7f7f7f", "int8": "#2ca02c", "qat": "#d62728", "int16x8": "#bcbd22"}
_TABLE1_BARS = {  # scheme: (size column, latency column, label)
    "float32": ("Size original (MB)", "Latency original (ms)", "float32 (original)"),
    "int8": ("Size optimized (MB)", "Latency PTQ (ms)", "int8 (post-training quantized)"),
    "qat": (None, "Latency QAT (ms)", "qat (quantization-aware trained)"),
}
_TABLE2_BARS = {"float32": "Accuracy (float32 activations)", "int8": "Accuracy (int8 activations)",
                "int16x8": "Accuracy (int16 activations)"}


def _go():
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    return go, make_subplots


def _is_published(source):
    return str(source).startswith("Published")


def _short(source):
    if source == PUBLISHED:
        return SHORT_PUBLISHED
    return "Published" if _is_published(source) else SHORT_LOCAL


def _layout(fig, title, note="", height=480, top=100, bottom=110):
    """Title with the sources note under it; the legend below the plot's axis titles."""
    plot_height = height - top - bottom
    fig.update_layout(title={"text": title, "x": 0.0, "xanchor": "left", "y": 0.98, "yanchor": "top",
                             "subtitle": {"text": note, "font": {"size": 12, "color": "#555"}}},
                      template=TEMPLATE, height=height, hoverlabel={"align": "left"},
                      margin={"t": top, "l": 20, "r": 20, "b": bottom},
                      legend={"orientation": "h", "yanchor": "top", "y": -62 / plot_height, "xanchor": "left",
                              "x": 0.0, "font": {"size": 12}})
    return fig


def _sources_note(table):
    local = [s for s in dict.fromkeys(table["Source"]) if not _is_published(s)]
    where = local[0].removeprefix("This machine ").strip("()") if len(local) == 1 else "see the table"
    published = (f"Published: {reference.DEVICE}, as printed in the {reference.DOCUMENT}"
                 if PUBLISHED in set(table["Source"]) else f"Published: as printed in the {reference.DOCUMENT}")
    if not local:
        return f"{published} (hatched). No row from this machine yet."
    return f"{published} (hatched). This machine: measured here ({where}) on the LiteRT interpreter (solid)."


def _log_ticks(values):
    """Tick values 1, 2, 5, 10, 20, 50… covering ``values``: a log axis a person can read."""
    values = [v for v in values if v is not None and v > 0]
    if not values:
        return []
    low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    return [m * 10 ** e for e in range(low, high + 1) for m in (1, 2, 5)]


def table1_figure(table):
    """Table 1 as grouped bars: size and latency per architecture, published beside this machine.

    Args:
        table: a frame from :func:`table1_comparison`.

    Returns:
        Two panels side by side, size (MB) and latency (ms), both on a log
        axis: the four architectures span 50x in size, and a Pixel 2 and this
        machine differ 10-500x in latency. Bars are horizontal; the y axis is
        grouped by architecture, then source ("Published (Pixel 2)", "This
        machine"), in the table's order. One trace per source and scheme, in
        the scheme's colour, published ones hatched and paler. Bar labels
        are the cells as :func:`display` shows them, so published figures
        read exactly as printed.
    """
    go, make_subplots = _go()
    shown = display(table)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.04, shared_yaxes=True,
                        subplot_titles=("Model size (MB, log scale)", "Latency (ms per inference, log scale)"))
    y = [list(table["Model"]), [_short(s) for s in table["Source"]]]
    ticks = {0: [], 1: []}
    for column in (0, 1):
        for published in (True, False):
            keep = [_is_published(s) == published for s in table["Source"]]
            for scheme, columns in _TABLE1_BARS.items():
                name = columns[column]
                if name is None:
                    continue
                values = [float(v) if k and _ok(v) else None for v, k in zip(table[name], keep)]
                if not any(v is not None for v in values):
                    continue
                ticks[column] += values
                label = f"{SHORT_PUBLISHED if published else SHORT_LOCAL} · {columns[2]}"
                rank = (0 if published else 10) + list(_TABLE1_BARS).index(scheme)
                fig.add_trace(go.Bar(
                    y=y, x=values, orientation="h", name=label, legendgroup=label, legendrank=rank,
                    showlegend=column == 0 or scheme == "qat", offsetgroup=scheme,
                    marker={"color": _SCHEME_COLORS[scheme], "opacity": 0.55 if published else 1.0,
                            "pattern": _HATCH if published else {"shape": ""}},
                    text=[t if k else "" for t, k in zip(shown[name], keep)], textposition="outside",
                    cliponaxis=False, textfont={"size": 11},
                    customdata=list(zip(table["Source"], table["Note"].fillna(""))),
                    hovertemplate=(f"<b>%{{y[0]}}</b> · {columns[2]}<br>%{{customdata[0]}}<br>"
                                   f"{name}: %{{text}}<br>%{{customdata[1]}}<extra></extra>")), row=1, col=column + 1)
    for column in (0, 1):
        values = _log_ticks(ticks[column])
        fig.update_xaxes(type="log", tickvals=values, ticktext=[f"{v:g}" for v in values], row=1, col=column + 1,
                         title_text="MB" if column == 0 else "ms", range=_log_range(ticks[column]))
    fig.update_yaxes(autorange="reversed", tickfont={"size": 12})
    fig.update_layout(barmode="group", bargap=0.2, bargroupgap=0.05)
    groups = len(table)
    _layout(fig, "Table 1 · Size and latency: published (Pixel 2) and this machine", _sources_note(table),
            height=240 + 62 * groups)
    return fig


def _log_range(values):
    values = [v for v in values if v is not None and v > 0]
    if not values:
        return None
    return [math.log10(min(values)) - 0.3, math.log10(max(values)) + 0.35]  # room for the labels


def table1_ratio_figure(table):
    """The ratios of Table 1 that compare across machines, published beside this machine.

    Args:
        table: a frame from :func:`table1_comparison`.

    Returns:
        Three panels sharing one row per architecture: size reduction
        (float32 / int8 size, x), speed-up (FP32 / INT8 latency, x, with a
        line at 1: left of it int8 is slower) and accuracy change
        ((INT8 - FP32) / FP32, %). Two horizontal bars per architecture,
        one trace per source (named ``PUBLISHED`` and this machine's
        source); a missing figure is not drawn and the subtitle says why.
    """
    go, make_subplots = _go()
    panels = (("Size reduction (x)", "Size reduction (float32 ÷ int8 size)", 1.0, "{:.2f}×"),
              ("FP32/INT8 latency", "Speed-up (FP32 ÷ INT8 latency)", 1.0, "{:.2f}×"),
              ("(INT8-FP32)/FP32 accuracy", "Accuracy change (INT8 − FP32) ÷ FP32", 100.0, "{:+.1f}%"))
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.05, shared_yaxes=True,
                        subplot_titles=[p[1] for p in panels])
    architectures = list(dict.fromkeys(table["Model"]))
    sources = list(dict.fromkeys(table["Source"]))
    for panel, (column, _, scale, spec) in enumerate(panels, start=1):
        for source in sources:
            rows = table[table["Source"] == source].drop_duplicates("Model").set_index("Model")
            values = [float(rows.loc[m, column]) * scale if m in rows.index and _ok(rows.loc[m, column]) else None
                      for m in architectures]
            published = _is_published(source)
            fig.add_trace(go.Bar(
                y=architectures, x=values, orientation="h", name=source, legendgroup=source,
                showlegend=panel == 1,
                marker={"color": PUBLISHED_COLOR if published else LOCAL_COLOR,
                        "opacity": 0.55 if published else 1.0, "pattern": _HATCH if published else {"shape": ""}},
                text=[spec.format(v) if v is not None else "" for v in values], textposition="outside",
                cliponaxis=False, textfont={"size": 11},
                hovertemplate=f"<b>%{{y}}</b><br>{source}<br>%{{text}}<extra></extra>"), row=1, col=panel)
    fig.add_vline(x=1.0, line={"dash": "dash", "color": "#888", "width": 1}, row=1, col=2)
    fig.add_vline(x=0.0, line={"color": "#888", "width": 1}, row=1, col=3)
    fig.update_xaxes(title_text="× (larger: smaller int8 file)", row=1, col=1, rangemode="tozero")
    fig.update_xaxes(title_text="× (above 1: int8 is faster)", row=1, col=2, rangemode="tozero")
    fig.update_xaxes(title_text="% (below 0: int8 loses accuracy)", row=1, col=3)
    for panel, (column, _, scale, _) in enumerate(panels, start=1):  # room for the bar labels
        values = [float(v) * scale for v in table[column] if _ok(v)]
        if values:
            low, high = min(0.0, min(values)), max(0.0, max(values))
            pad = (high - low) * 0.22 or 1.0
            fig.update_xaxes(range=[low - (pad if low < 0 else 0), high + pad], row=1, col=panel)
    fig.update_yaxes(autorange="reversed", tickfont={"size": 12})
    fig.update_layout(barmode="group", bargap=0.25)
    local = table[~table["Source"].map(_is_published)]
    note = _sources_note(table)
    if len(local) and not local["(INT8-FP32)/FP32 accuracy"].map(_ok).any():
        note += "<br>No accuracy change from this machine: " + (local["Note"].iloc[0].split(";")[0]
                                                              or "no accuracy measured") + "."
    _layout(fig, "Table 1 · Ratios that compare across machines", note, height=260 + 58 * len(architectures),
            top=120 if "<br>" in note else 100, bottom=90)
    return fig


def _leading_number(text):
    """The figure a Table 2 cell starts with: "6.7%" gives 6.7, "88.81(81.23)" gives 88.81."""
    found = re.match(r"\s*(-?\d+(?:\.\d+)?)", str(text))
    return float(found.group(1)) if found else None


def table2_figure(table):
    """Table 2 as small multiples: one panel per model, bars for float32, int8 and int16 activations.

    Args:
        table: a frame from :func:`table2_comparison`.

    Returns:
        One panel per row that has at least one figure (metrics differ
        between models, so each panel has its own y axis), titled with the
        model, its metric and its source. Bars are in the colour of the
        scheme that gives them (float32, int8, int16x8); published bars are
        hatched and labelled with the cell exactly as printed.
    """
    go, make_subplots = _go()
    rows = [r for r in table.to_dict("records")
            if any(_leading_number(r[c]) is not None for c in _TABLE2_BARS.values())]
    if not rows:
        fig = go.Figure()
        fig.add_annotation(text="No Table 2 figures to show.", xref="paper", yref="paper", x=0.5, y=0.5,
                           showarrow=False)
        return _layout(fig, "Table 2 · Accuracy with float32, int8 and int16 activations")
    columns = min(4, len(rows))
    lines = math.ceil(len(rows) / columns)
    titles = []
    for r in rows:
        better = " (lower is better)" if "lower is better" in str(r["Note"]) else ""
        titles.append(f"<b>{r['Model']}</b><br><span style='font-size:11px'>{r['Accuracy metric type']}{better}"
                      f" · {_short(r['Source'])}</span>")
    fig = make_subplots(rows=lines, cols=columns, subplot_titles=titles, horizontal_spacing=0.06,
                        vertical_spacing=0.22 if lines > 1 else 0.1)
    labels = {"float32": "float32", "int8": "int8", "int16x8": "int16"}
    for index, r in enumerate(rows):
        published = _is_published(r["Source"])
        values = [_leading_number(r[c]) for c in _TABLE2_BARS.values()]
        top = max(v for v in values if v is not None)
        fig.add_trace(go.Bar(
            x=[labels[s] for s in _TABLE2_BARS], y=values, showlegend=False, name=r["Model"],
            marker={"color": [_SCHEME_COLORS[s] for s in _TABLE2_BARS], "opacity": 0.6 if published else 1.0,
                    "pattern": _HATCH if published else {"shape": ""}},
            text=[str(r[c]) for c in _TABLE2_BARS.values()], textposition="outside", cliponaxis=False,
            textfont={"size": 11}, customdata=[r["Source"]] * 3,
            hovertemplate=(f"<b>{r['Model']}</b> · %{{x}} activations<br>%{{customdata}}<br>"
                           f"{r['Accuracy metric type']}: %{{text}}<extra></extra>")),
            row=index // columns + 1, col=index % columns + 1)
        fig.update_yaxes(range=[0, top * 1.25], row=index // columns + 1, col=index % columns + 1)
    for scheme, label in labels.items():  # a legend for the colours (the panels share them)
        fig.add_trace(go.Bar(x=[None], y=[None], name=f"{label} activations ({scheme})",
                             marker={"color": _SCHEME_COLORS[scheme]}), row=1, col=1)
    fig.update_annotations(font={"size": 13})
    _layout(fig, "Table 2 · Accuracy with float32, int8 and int16 activations", _sources_note(table),
            height=330 * lines + 190, top=130, bottom=60)
    fig.update_layout(bargap=0.25)
    return fig
