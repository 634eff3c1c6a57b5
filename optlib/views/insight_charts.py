"""Plotly figures and tables for the Layer insight & search page.

Every function is pure: plain data in — rows of :func:`optlib.engine.layers.compare_layers`,
QuantizationDebugger metrics, dequantized kernels, stored per-kernel facts,
a result of :func:`optlib.analysis.search.search`, a results DataFrame of
:func:`optlib.analysis.report.frame` — and a ``go.Figure`` or a DataFrame out, nothing
drawn and nothing saved. Schemes keep the colours they have in every other
chart (:func:`optlib.views.charts.color_of`).

Importing this module does not import TensorFlow.
"""

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from optlib.analysis import quality, report
from optlib.units import KB
from optlib.views.charts import TEMPLATE, _empty, _figure, color_of
from optlib.views.charts import _annotate as _note

ROUNDING_NOISE = 1 / math.sqrt(12)  # RMSE / scale of pure rounding to a uniform grid
KEPT_COLOR = "#d62728"
TARGET_COLOR = "#d62728"
ERROR_AXIS = "Channel error vs float32 (median RMSE / RMS)"

DEBUGGER_METRICS = {
    "rmse/scale": "RMSE / scale (error in quantization steps)",
    "mean_squared_error": "Mean squared error",
    "max_abs_error": "Max absolute error",
    "scale": "Quantization scale",
}
DEBUGGER_COLUMNS = {
    "position": "#", "layer": "Layer", "op_name": "Op", "num_elements": "Elements",
    "mean_squared_error": "Mean squared error", "max_abs_error": "Max abs error", "scale": "Scale",
    "zero_point": "Zero point", "rmse/scale": "RMSE / scale", "mean_error": "Mean error", "stddev": "Std dev",
    "tensor_name": "Tensor",
}
CANDIDATE_SYMBOLS = ("circle", "diamond", "triangle-up", "hexagon", "pentagon", "triangle-down", "hourglass",
                     "cross", "x")
SEARCH_AXES = {"size": ("size_kb", "Model size (kB)"), "latency": ("latency_ms", "Median latency (ms per inference)")}


# --- Shared helpers ---------------------------------------------------------------

def _finite(value):
    return value is not None and isinstance(value, (int, float, np.number)) and math.isfinite(value)


def short_name(layer):
    """A layer's tensor name as a person reads it: ``digits_cnn/conv2d/Relu;...`` -> ``conv2d/Relu``."""
    first = str(layer).split(";")[0]
    if first.startswith("StatefulPartitionedCall"):
        return "model output"
    parts = first.split("/")
    return "/".join(parts[1:] if len(parts) > 2 else parts)


def layer_label(row):
    """A unique, readable label for a row of :func:`optlib.engine.layers.compare_layers`."""
    return f"{short_name(row['layer'])} · #{row['position']}"


def candidate_label(entry):
    """A search candidate as a person reads it: ``int8_selective · worst 2``."""
    settings = entry.get("settings") or {}
    extra = ", ".join(("worst " if key == "worst_n" else f"{key} ") + str(value) for key, value in settings.items())
    return f"{entry['scheme']} · {extra}" if extra else entry["scheme"]


# --- Per-layer error of int8 and int16x8 ------------------------------------------------

def error_ranking(rows, label="int8", count=12, kept=()):
    """Return the layers with the largest channel error of ``label``, worst at the top.

    Args:
        rows: rows of :func:`optlib.engine.layers.compare_layers`.
        label: which quantized model to rank ("int8" or "int16x8").
        count: how many layers to show.
        kept: layer names chosen to stay in float; drawn in another colour.
    """
    title = f"Layers that lose most in {label} (worst first)"
    scored = [r for r in rows if _finite(r.get(f"{label}_error"))]
    if not scored:
        return _empty(title, f"No layer of the {label} model could be compared with float32.")
    shown = sorted(scored, key=lambda r: -r[f"{label}_error"])[:count]
    kept = set(kept)
    note = f"the {len(shown)} worst of {len(scored)} layers" if len(scored) > len(shown) else ""
    fig = _figure(title, note, xaxis_title=ERROR_AXIS, height=170 + 32 * len(shown), showlegend=bool(kept),
                  legend={"orientation": "h", "x": 0.0, "y": 1.0, "yanchor": "bottom", "xanchor": "left"})
    for is_kept, name in ((False, f"{label}"), (True, "chosen to stay in float")):
        part = [r for r in shown if (r["layer"] in kept) == is_kept]
        if not part:
            continue
        fig.add_trace(go.Bar(
            y=[layer_label(r) for r in part], x=[r[f"{label}_error"] for r in part], orientation="h", name=name,
            marker_color=KEPT_COLOR if is_kept else color_of(label),
            text=[f"{r[f'{label}_error']:.3g}" for r in part], textposition="outside", cliponaxis=False,
            customdata=[[r["op"], r["layer"], r.get(f"{label}_rmse"), r.get(f"{label}_max_abs")] for r in part],
            hovertemplate=("<b>%{y}</b> (%{customdata[0]})<br>channel error %{x:.4g}<br>RMSE %{customdata[2]:.4g}"
                           "<br>max abs error %{customdata[3]:.4g}<br><span style='font-size:10px'>%{customdata[1]}"
                           "</span><extra></extra>")))
    fig.update_yaxes(categoryorder="array", categoryarray=[layer_label(r) for r in shown], autorange="reversed")
    fig.update_xaxes(range=[0, 1.25 * shown[0][f"{label}_error"]])  # room for the value labels
    return fig


def error_sequence(rows, labels=("int8", "int16x8"), problem=""):
    """Return the channel error of each quantized model along the layer sequence (log scale).

    Args:
        rows: rows of :func:`optlib.engine.layers.compare_layers`, in graph order.
        labels: the quantized models to draw, e.g. ("int8", "int16x8").
        problem: why a model is missing (e.g. int16x8 failed), said in a note.
    """
    title = "Layer by layer: int8 against int16 activations" if len(labels) > 1 else \
        "Layer by layer: int8 channel error"
    labels = [label for label in labels if any(_finite(r.get(f"{label}_error")) for r in rows)]
    if not rows or not labels:
        return _empty(title, "No layer could be compared with float32.")
    notes = []
    if "int8" in labels and "int16x8" in labels:
        gains = [r["int8_error"] / r["int16x8_error"] for r in rows
                 if _finite(r.get("int8_error")) and _finite(r.get("int16x8_error")) and r["int16x8_error"] > 0]
        if gains:
            notes.append(f"int16 activations cut the channel error {np.median(gains):.1f}× (median over layers; "
                         f"best {max(gains):.1f}×)")
    if problem:
        notes.append(problem)
    fig = _figure(title, "; ".join(notes), xaxis_title="Layer (graph order)", yaxis_title="Channel error, log scale",
                  legend_title_text="Model", height=460)
    positions = [r["position"] for r in rows]
    for label in labels:
        part = [r for r in rows if _finite(r.get(f"{label}_error")) and r[f"{label}_error"] > 0]
        fig.add_trace(go.Scatter(
            x=[r["position"] for r in part], y=[r[f"{label}_error"] for r in part], mode="lines+markers",
            name=label, line={"color": color_of(label), "width": 2}, marker={"size": 8},
            customdata=[[layer_label(r), r["op"], r.get(f"{label}_rmse"), r.get(f"{label}_max_abs")] for r in part],
            hovertemplate=(f"<b>{label}</b> · %{{customdata[0]}} (%{{customdata[1]}})<br>channel error %{{y:.4g}}"
                           "<br>RMSE %{customdata[2]:.4g}<br>max abs error %{customdata[3]:.4g}<extra></extra>")))
    fig.update_yaxes(type="log")
    if len(rows) <= 30:
        fig.update_xaxes(tickmode="array", tickvals=positions, ticktext=[short_name(r["layer"]) for r in rows],
                         tickangle=-35)
    return fig


# --- TensorFlow Lite's QuantizationDebugger --------------------------------------------------

def debugger_table(metrics, by="rmse/scale"):
    """Return the debugger's per-layer metrics as a table, largest ``by`` first.

    Columns: see :data:`DEBUGGER_COLUMNS` ("#" is the layer's place in the graph).
    """
    if not metrics:
        return pd.DataFrame(columns=list(DEBUGGER_COLUMNS.values()))
    df = pd.DataFrame(metrics)
    df["position"] = range(len(df))
    df["layer"] = df["tensor_name"].map(short_name)
    df = df.sort_values(by, ascending=False, kind="stable", na_position="last") if by in df else df
    columns = [c for c in DEBUGGER_COLUMNS if c in df.columns]
    table = df[columns].rename(columns=DEBUGGER_COLUMNS).reset_index(drop=True)
    for column in ("#", "Elements", "Zero point"):
        if column in table:
            table[column] = table[column].astype("Int64")
    return table


def debugger_chart(metrics, metric="rmse/scale", worst_first=True):
    """Return one QuantizationDebugger metric per layer as bars (largest first, or in graph order).

    For RMSE / scale a line marks pure rounding noise (1/√12 ≈ 0.29 steps):
    a layer near it loses nothing beyond the rounding int8 must do.
    """
    if metric not in DEBUGGER_METRICS:
        raise ValueError(f"Unknown debugger metric '{metric}'; choose one of: {', '.join(DEBUGGER_METRICS)}.")
    title = f"QuantizationDebugger · {DEBUGGER_METRICS[metric]} per layer"
    rows = [dict(r, position=i) for i, r in enumerate(metrics or []) if _finite(r.get(metric))]
    if not rows:
        return _empty(title, "The debugger reported no figures for this metric.")
    if worst_first:
        rows.sort(key=lambda r: -r[metric])
    labels = [f"{short_name(r['tensor_name'])} · #{r['position']}" for r in rows]
    note = "largest first" if worst_first else "in graph order"
    fig = _figure(title, note, yaxis_title=DEBUGGER_METRICS[metric], height=440, showlegend=False)
    fig.add_trace(go.Bar(
        x=labels, y=[r[metric] for r in rows], marker_color=color_of("int8"),
        customdata=[[r.get("op_name"), r.get("mean_squared_error"), r.get("max_abs_error"), r.get("scale"),
                     r.get("rmse/scale"), r.get("tensor_name")] for r in rows],
        hovertemplate=("<b>%{x}</b> (%{customdata[0]})<br>mean squared error %{customdata[1]:.3g}"
                       "<br>max abs error %{customdata[2]:.3g}<br>scale %{customdata[3]:.3g}"
                       "<br>RMSE / scale %{customdata[4]:.3g}<extra></extra>")))
    if metric == "rmse/scale":
        fig.add_hline(y=ROUNDING_NOISE, line={"dash": "dot", "color": "#555"},
                      annotation_text="pure rounding noise (1/√12)", annotation_position="top right")
    fig.update_xaxes(tickangle=-35)
    return fig


# --- Weights ---------------------------------------------------------------------------

def weight_histogram(versions, kernel="", bins=80):
    """Return histograms of one kernel's weights in several versions, on shared bins.

    Args:
        versions: {label: array of float weights}, e.g. {"float32": ..., "int8": ..., "cluster": ...}
            (dequantized values, as :func:`optlib.engine.layers.weight_values` returns them).
        kernel: the kernel's name, for the title.
        bins: number of bins over the range of all versions.

    Left: the values; right (when the shapes match): how far each weight moved from float32.
    """
    title = f"Weights of {short_name(kernel)}" if kernel else "Weights"
    versions = {label: np.asarray(values, np.float32).ravel() for label, values in versions.items()
                if values is not None and np.size(values)}
    if not versions:
        return _empty(title, "No weights to show.")
    low = min(float(v.min()) for v in versions.values())
    high = max(float(v.max()) for v in versions.values())
    edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
    base = versions.get("float32")
    moved = {label: v - base for label, v in versions.items() if label != "float32" and base is not None
             and v.shape == base.shape}
    fig = make_subplots(rows=1, cols=2 if moved else 1, column_widths=[0.6, 0.4] if moved else None,
                        subplot_titles=("Values (shared bins)",
                                        "Change from float32 per weight") if moved else ("Values",))
    fig.update_layout(title={"text": title, "x": 0.0, "xanchor": "left"}, template=TEMPLATE, barmode="overlay",
                      height=420, hoverlabel={"align": "left"}, legend_title_text="Version",
                      margin={"t": 90})
    centers = (edges[:-1] + edges[1:]) / 2
    for number, (label, values) in enumerate(versions.items()):
        counts, _ = np.histogram(values, edges)
        name = f"{label} · {np.unique(values).size:,} distinct"
        hover = f"<b>{label}</b><br>%{{x:.4g}}: %{{y:,}} weights<extra></extra>"
        if number == 0:  # the reference as bars, the others as outlines over it, so none hides another
            trace = go.Bar(x=centers, y=counts, width=np.diff(edges), name=name, opacity=0.55,
                           marker={"color": color_of(label), "line": {"width": 0}})
        else:
            trace = go.Scatter(x=centers, y=counts, name=name, mode="lines", line_shape="hvh",
                               line={"color": color_of(label), "width": 2})
        fig.add_trace(trace.update(legendgroup=label, hovertemplate=hover), row=1, col=1)
    fig.update_xaxes(title_text="Weight value", row=1, col=1)
    fig.update_yaxes(title_text="Weights per bin", row=1, col=1)
    if moved:
        span = max(float(np.abs(d).max()) for d in moved.values()) or 1e-9
        change_edges = np.linspace(-span, span, 61)
        for label, delta in moved.items():
            counts, _ = np.histogram(delta, change_edges)
            fig.add_trace(go.Bar(
                x=(change_edges[:-1] + change_edges[1:]) / 2, y=counts, width=np.diff(change_edges), name=label,
                marker={"color": color_of(label), "line": {"width": 0}}, opacity=0.55, legendgroup=label,
                showlegend=False,
                hovertemplate=f"<b>{label} − float32</b><br>%{{x:.3g}}: %{{y:,}} weights<extra></extra>"),
                row=1, col=2)
        fig.update_xaxes(title_text="Quantized − float32", row=1, col=2)
    return fig


def sparsity_bars(kernels, target=None, scheme="prune"):
    """Return the achieved share of zero weights per kernel of a pruned model.

    Args:
        kernels: per-kernel facts as stored with a run (``row["kernels"]``: name, op, shape, sparsity).
        target: the sparsity the run asked for (drawn as a line), or None.
        scheme: the run's scheme, for the title.
    """
    title = f"Achieved sparsity per layer ({scheme})"
    if not kernels:
        return _empty(title, "This run recorded no kernels.")
    names = [f"{short_name(k['name'])} · {k['op']}" for k in kernels]
    sizes = [int(np.prod(k.get("shape") or [0])) for k in kernels]
    total = sum(sizes)
    overall = sum(k["sparsity"] * n for k, n in zip(kernels, sizes)) / total if total else 0.0
    fig = _figure(title, f"all kernels together: {overall:.1%} zeros", yaxis_title="Zero weights (%)",
                  showlegend=False, height=400)
    fig.add_trace(go.Bar(
        x=names, y=[100 * k["sparsity"] for k in kernels], marker_color=color_of(scheme),
        text=[f"{100 * k['sparsity']:.1f}%" for k in kernels], textposition="outside", cliponaxis=False,
        customdata=[[str(tuple(k.get("shape") or ())), n, k.get("unique")] for k, n in zip(kernels, sizes)],
        hovertemplate=("<b>%{x}</b><br>%{y:.1f}% zeros<br>shape %{customdata[0]} (%{customdata[1]:,} weights)"
                       "<br>%{customdata[2]} distinct values<extra></extra>")))
    if _finite(target):
        fig.add_hline(y=100 * target, line={"dash": "dash", "color": "#555"},
                      annotation_text=f"target {target:.0%}", annotation_position="top left")
    fig.update_yaxes(range=[0, 105])
    return fig


# --- Before and after selective quantization ----------------------------------------------

def before_after(df):
    """Return accuracy, size and latency side by side for a few runs (e.g. float32, int8, int8_selective).

    Args:
        df: a frame of :func:`optlib.analysis.report.frame` with the runs to compare, in the order to show.
    """
    title = "Before and after: keeping layers in float"
    rows = df[df["status"] == "ok"]
    if rows.empty:
        return _empty(title, "No finished runs to compare yet.")
    metric = ("accuracy", "Top-1 accuracy (%)", 100.0, "{:.2f}%")
    if not quality.only_top1(rows):  # the task's metric: a regression model's MAE, a binary accuracy
        first = rows.iloc[0]
        percent = quality.is_percent(first)
        metric = ("metric_value", quality.label(first), 100.0 if percent else 1.0, "{:.2f}%" if percent else "{:.4g}")
    panels = (metric, ("size_bytes", "Size (kB)", 1 / KB, "{:,.1f}"), ("latency_ms", "Median latency (ms)", 1.0, "{:.4g}"))
    fig = make_subplots(rows=1, cols=3, subplot_titles=[p[1] for p in panels], horizontal_spacing=0.08)
    fig.update_layout(title={"text": title, "x": 0.0, "xanchor": "left"}, template=TEMPLATE, showlegend=False,
                      height=380, margin={"t": 90}, hoverlabel={"align": "left"})
    labels = [f"{s} #{int(i)}" if list(rows["scheme"]).count(s) > 1 else s for s, i in zip(rows["scheme"], rows["id"])]
    for col, (column, name, factor, spec) in enumerate(panels, start=1):
        values = [v * factor if _finite(v) else None for v in rows[column]]
        fig.add_trace(go.Bar(
            x=labels, y=values, marker_color=[color_of(s) for s in rows["scheme"]],
            text=[spec.format(v) if v is not None else "—" for v in values], textposition="outside",
            cliponaxis=False, hovertemplate=f"<b>%{{x}}</b><br>{name}: %{{y:.4g}}<extra></extra>"), row=1, col=col)
        finite = [v for v in values if v is not None]
        if factor == 100.0 and finite:  # differences of a point or two must stay visible
            fig.update_yaxes(range=[max(0.0, min(finite) - 3.0), min(100.0, max(finite)) + 1.5], row=1, col=col)
        elif finite:
            fig.update_yaxes(range=[0, max(finite) * 1.18], row=1, col=col)
    if rows[metric[0]].isna().all():
        _note(fig, "no accuracy figures (untrained model, or no labels): size and latency only")
    return fig


# --- Accuracy-targeted search ------------------------------------------------------------

def trail_frame(result):
    """Return the baseline and every candidate of a search as a table, in the order tried.

    Columns: "#", "Candidate", "Status", the task's metric ("Top-1 (%)", "MAE (lower is better)"),
    "Loss vs float32 (%)", "Size (kB)", "Latency (ms)", "Meets target", "Verdict", "Run". The chosen
    candidate's verdict starts with ★.
    """
    base = result["baseline"]
    best = result.get("best") or {}
    metric = _metric_column(base)
    records = [{"#": 0, "Candidate": "float32 (baseline)", "Status": "ok", metric: quality.shown(base),
                "Loss vs float32 (%)": 0.0, "Size (kB)": base["size_bytes"] / KB, "Latency (ms)": base["latency_ms"],
                "Meets target": None, "Verdict": "the baseline: the target is measured against it",
                "Run": base.get("id")}]
    for number, entry in enumerate(result["trail"], start=1):
        chosen = best and entry.get("id") is not None and entry.get("id") == best.get("id") and \
            entry.get("settings") == best.get("settings")
        records.append({
            "#": number, "Candidate": candidate_label(entry), "Status": entry.get("status", "not tried"),
            metric: _shown(entry, base),
            "Loss vs float32 (%)": 100 * entry["loss"] if _finite(entry.get("loss")) else None,
            "Size (kB)": entry["size_bytes"] / KB if _finite(entry.get("size_bytes")) else None,
            "Latency (ms)": entry.get("latency_ms") if _finite(entry.get("latency_ms")) else None,
            "Meets target": entry.get("met"),
            "Verdict": ("★ chosen — " if chosen else "") + str(entry.get("verdict", "")),
            "Run": entry.get("id")})
    table = pd.DataFrame.from_records(records)
    table["Run"] = table["Run"].astype("Int64")
    return table


def _metric_column(base):
    return "Top-1 (%)" if quality.name(base) == quality.TOP1 else quality.label(base)


def _shown(entry, base):
    """A search entry's metric as the trail shows it (percent for accuracies), None if not measured; old
    search results name no metric on their entries, so the baseline's is used."""
    return quality.shown({**entry, "metric_name": quality.name(base)})


def search_chart(result, axis="size"):
    """Return the search trail on accuracy against size (or latency), with the target and the choice.

    One marker per candidate tried (filled when it met the target, open when
    not), the float32 baseline, the Pareto front of all of them, the chosen
    candidate as a star, and the target accuracy as a horizontal line.

    Args:
        result: what :func:`optlib.analysis.search.search` returned.
        axis: "size" or "latency".
    """
    if axis not in SEARCH_AXES:
        raise ValueError(f"Cannot plot the search against '{axis}'; choose one of: {', '.join(SEARCH_AXES)}.")
    column, axis_title = SEARCH_AXES[axis]
    target = result["target"]
    base = result["baseline"]
    metric, higher = quality.name(base), quality.higher_is_better(base)
    y_title, short = quality.label(base), quality.short_name(base)
    unit = "%" if quality.is_percent(base) else ""
    title = f"Search trail: {'accuracy' if unit else metric} vs {axis} (objective: {target['objective']})"
    points = [{"label": "float32 (baseline)", "scheme": "float32", "y": _shown(base, base),
               "size_kb": base["size_bytes"] / KB, "latency_ms": base["latency_ms"], "met": None, "id": base.get("id"),
               "verdict": "the baseline"}]
    missing = []
    for entry in result["trail"]:
        if entry.get("status") == "ok" and _finite(_shown(entry, base)) and _finite(entry.get("size_bytes")):
            points.append({"label": candidate_label(entry), "scheme": entry["scheme"], "y": _shown(entry, base),
                           "size_kb": entry["size_bytes"] / KB, "latency_ms": entry.get("latency_ms"),
                           "met": entry.get("met"), "id": entry.get("id"), "settings": entry.get("settings"),
                           "verdict": entry.get("verdict", "")})
        else:
            missing.append(f"{candidate_label(entry)} ({entry.get('status') or 'not tried'})")
    note = ("Not shown: " + ", ".join(missing)) if missing else ""
    fig = _figure(title, note, xaxis_title=axis_title, yaxis_title=y_title, legend_title_text="", height=500)
    df = pd.DataFrame(points)
    front = report.pareto(df.dropna(subset=[column]), column, "y", maximize=higher)
    fig.add_trace(go.Scatter(x=front[column], y=front["y"], mode="lines", name="Pareto front",
                             line={"color": "#444", "dash": "dash", "width": 1.5}, hoverinfo="skip"))
    best = result.get("best")
    chosen_word = "chosen" if result.get("met") else "closest (target not met)"
    best_y = _shown(best, base) if best else None
    if best and _finite(best_y):  # drawn first: a halo behind the candidates' own markers
        fig.add_trace(go.Scatter(
            x=[best["size_bytes"] / KB if axis == "size" else best.get("latency_ms")], y=[best_y],
            mode="markers", name=f"★ {chosen_word}: {candidate_label(best)}",
            marker={"size": 34, "symbol": "star", "color": "rgba(255, 191, 0, 0.45)",
                    "line": {"width": 2, "color": "#b8860b"}},
            hovertemplate=f"<b>{chosen_word}</b>: {candidate_label(best)}<br>{short} %{{y:.4g}}{unit}<extra></extra>"))
    crowded = _crowded([p[column] for p in points], [p["y"] for p in points])
    for number, (point, crowd) in enumerate(zip(points, crowded)):
        crowd = crowd or bool(best) and point["id"] == best.get("id") and point.get("settings") == best.get("settings")
        filled = point["met"] is not False
        symbol = "square" if number == 0 else CANDIDATE_SYMBOLS[(number - 1) % len(CANDIDATE_SYMBOLS)]
        fig.add_trace(go.Scatter(
            x=[point[column]], y=[point["y"]], mode="markers" if crowd else "markers+text",
            name=point["label"] + ("" if point["met"] is not False else " (misses the target)"),
            text=[point["label"]], textposition="top center", textfont={"size": 11, "color": "#333"},
            marker={"size": 14, "color": color_of(point["scheme"]) if filled else "white",
                    "symbol": symbol, "line": {"width": 2, "color": color_of(point["scheme"])}},
            customdata=[[point["size_kb"], point["latency_ms"], point["verdict"], point["id"]]],
            hovertemplate=(f"<b>{point['label']}</b><br>{short} %{{y:.4g}}{unit}<br>%{{customdata[0]:,.1f}} kB · "
                           "%{customdata[1]:.4g} ms<br>%{customdata[2]}<br>run #%{customdata[3]}<extra></extra>")))
    bound = target.get("bound", target.get("min_accuracy"))
    floor = 100 * bound if unit else bound
    fig.add_hline(y=floor, line={"dash": "dot", "color": TARGET_COLOR, "width": 2},
                  annotation_text=f"target: {short} {'≥' if higher else '≤'} {floor:.4g}{unit} "
                                  f"(at most {100 * target['max_loss']:.2f}% loss)",
                  annotation_position="bottom right" if higher else "top right", annotation_font_color=TARGET_COLOR)
    ys = [p["y"] for p in points] + [floor]
    pad = max(0.5 if unit else 0.0, (max(ys) - min(ys)) * 0.15) or abs(floor) * 0.05 or 1.0
    y_range = [min(ys) - pad, min(100.5, max(ys) + pad * 1.5) if unit else max(ys) + pad * 1.5]
    fig.update_yaxes(range=y_range)
    log = _log_axis(points, column)
    xs = [p[column] for p in points if _finite(p[column]) and p[column] > 0]
    x_range = [math.log10(min(xs)) - 0.1, math.log10(max(xs)) + 0.1] if log else [0, max(xs or [1.0]) * 1.12]
    fig.update_xaxes(range=x_range, **({"type": "log", "title_text": axis_title + ", log scale"} if log else {}))
    if best and _finite(best_y):
        x = best["size_bytes"] / KB if axis == "size" else best.get("latency_ms")
        word = chosen_word
        to_px = _pixels(x_range, y_range, log)
        ax, ay = _free_offset(to_px(x, best_y),
                              [to_px(p[column], p["y"]) for p in points if _finite(p[column])]
                              + [to_px(10 ** x_range[1] if log else x_range[1], floor)])
        fig.add_annotation(x=math.log10(x) if log else x, y=best_y,
                           text=f"<b>★ {word}: {candidate_label(best)}</b>", showarrow=True, arrowhead=2,
                           ax=ax, ay=ay, font={"color": "#7a5a00"}, bgcolor="rgba(255,255,255,0.85)")
    return fig


def _pixels(x_range, y_range, log, width=800, height=340):
    """Map data to rough plot-area pixels (y down), to keep a label away from the markers."""
    def to_px(x, y):
        x = math.log10(x) if log and x and x > 0 else x
        return ((x - x_range[0]) / ((x_range[1] - x_range[0]) or 1) * width,
                (y_range[1] - y) / ((y_range[1] - y_range[0]) or 1) * height)
    return to_px


def _free_offset(anchor, others, width=800, height=340):
    """The arrow offset (ax, ay) whose label lands farthest from the other markers, inside the plot."""
    best, score = (80, -55), -1.0
    for ax, ay in ((80, -55), (80, 55), (-80, -55), (-80, 55), (0, -75), (0, 75), (130, 0), (-130, 0)):
        cx, cy = anchor[0] + ax + (60 if ax > 0 else -60 if ax < 0 else 0), anchor[1] + ay
        if not (60 <= cx <= width - 60 and 10 <= cy <= height - 10):
            continue
        nearest = min((math.hypot((cx - px) / 2.5, cy - py) for px, py in others), default=1e9)
        if nearest > score:
            best, score = (ax, ay), nearest
    return best


def _crowded(xs, ys):
    """True for points too close to another to carry a readable text label (the legend names them)."""
    finite = [(x, y) for x, y in zip(xs, ys) if _finite(x) and _finite(y)]
    if len(finite) < 2:
        return [False] * len(xs)
    span_x = (max(x for x, _ in finite) - min(x for x, _ in finite)) or 1.0
    span_y = (max(y for _, y in finite) - min(y for _, y in finite)) or 1.0
    return [any(j != i and _finite(xs[j]) and _finite(ys[j]) and abs(xs[j] - xs[i]) < 0.1 * span_x
                and abs(ys[j] - ys[i]) < 0.12 * span_y for j in range(len(xs)))
            for i in range(len(xs))]


def _log_axis(points, column):
    xs = [p[column] for p in points if _finite(p[column]) and p[column] > 0]
    return bool(xs) and max(xs) / min(xs) > 30


# --- Explanations beside results ------------------------------------------------------------
