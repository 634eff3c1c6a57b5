"""Plotly figures and comparison tables from the results DataFrame of :func:`optlib.analysis.report.frame`.

Every function is pure: a DataFrame in, a ``go.Figure`` (or a DataFrame)
out, nothing drawn and nothing saved. Schemes always appear in registry
order and each scheme keeps one colour in every chart. Accuracy charts leave
out runs without an accuracy figure (untrained models, failed runs) and say
so in an annotation, instead of plotting them as zero.

Importing this module does not import TensorFlow.
"""

import math
import textwrap

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from optlib.analysis import explain, quality, report, tables
from optlib.engine import schemes

_SPARE_COLORS = ("#637939", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354")

X_AXES = {
    "size_mb": "Model size (MB)",
    "gzip_mb": "Gzipped size (MB, what is downloaded)",
    "latency_ms": "Median latency (ms per inference)",
}
ACCURACY_AXIS = "Top-1 accuracy (%)"
# What a trade-off chart can put on its y axis: the task's metric, or fidelity to the Keras float model.
Y_AXES = {
    "accuracy": ACCURACY_AXIS,
    "metric_value": "the task's metric",
    "fidelity_snr_db": "Fidelity to the float model: SNR (dB, higher is better)",
    "fidelity_cosine": "Fidelity to the float model: cosine similarity (higher is better)",
    "fidelity_top1_agreement": "Fidelity: top-1 agreement with the float model (%, higher is better)",
}
PERCENT = ("accuracy", "fidelity_top1_agreement")


def metric_axis(df):
    """The y axis of the task's metric: its name and direction ("MAE (lower is better)"), and whether higher is better.

    With several metrics among the runs, their names are joined and higher is taken as better only if all agree.
    """
    rows = df[df["status"] == "ok"] if "status" in df else df
    names = list(dict.fromkeys(rows["metric_name"].dropna())) or ["Top-1 accuracy"]
    higher = bool(rows["higher_is_better"].fillna(True).astype(bool).all()) if len(rows) else True
    percent = names == ["Top-1 accuracy"] or names == ["Accuracy at 0.5"]
    direction = "higher is better" if higher else "lower is better"
    return " / ".join(names) + (f" (%, {direction})" if percent else f" ({direction})"), higher, percent


def quality_column(df):
    """The column a chart of the task's metric reads: ``accuracy`` when every measured run is top-1 (runs of an
    untrained model have none: the chart says why), else ``metric_value`` (MAE, a binary accuracy, a mix)."""
    return "accuracy" if quality.only_top1(df) else "metric_value"
TEMPLATE = "plotly_white"



# --- Shared helpers ---------------------------------------------------------

def color_of(scheme):
    """Return the colour of a scheme (its registry entry's, the same in every chart; a stable spare otherwise)."""
    known = schemes.get(scheme) if schemes.known(scheme) else None
    if known is not None and known.color:
        return known.color
    return _SPARE_COLORS[sum(map(ord, str(scheme))) % len(_SPARE_COLORS)]


def in_registry_order(names):
    """Return the distinct scheme names in registry order (unknown names last, alphabetically)."""
    return sorted(dict.fromkeys(names), key=lambda n: (report.scheme_order(n), str(n)))


def _group_label(df):
    """Return a label per row: the model, plus the dataset when several datasets are shown."""
    if df["dataset"].nunique(dropna=False) > 1:
        return df["model"].astype(str) + " · " + df["dataset"].astype(str)
    return df["model"].astype(str)


def _names(values, limit=4):
    values = list(dict.fromkeys(str(v) for v in values))
    return ", ".join(values[:limit]) + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _unfinished_note(df):
    """Say which runs are missing because they did not finish ok."""
    parts = []
    for status in ("failed", "interrupted", "running"):
        rows = df[df["status"] == status]
        if len(rows):
            what = _names(rows["scheme"] + " on " + rows["model"].astype(str))
            parts.append(f"{len(rows)} {status} run{'s' if len(rows) != 1 else ''} ({what})")
    return parts


def _accuracy_note(df):
    """Say which runs an accuracy chart leaves out, and why; '' when none."""
    parts = []
    no_accuracy = df[(df["status"] == "ok") & df["accuracy"].isna()]
    if len(no_accuracy):
        parts.append(f"{len(no_accuracy)} run{'s' if len(no_accuracy) != 1 else ''} without an accuracy "
                     f"figure (untrained model, size and latency only: {_names(no_accuracy['model'])})")
    parts += _unfinished_note(df)
    return ("Not shown: " + "; ".join(parts)) if parts else ""


def wrap(text, width=90):
    """Break a note into lines that fit a chart 640 px wide (a 1024 px window): Plotly does not wrap text."""
    return "<br>".join(textwrap.wrap(text, width)) if text else ""


def _title(fig, title, note=""):
    """The chart's title, and under it its note (what is not shown and why), wrapped, with room for both."""
    note = wrap(note)
    lines = note.count("<br>") + 1 if note else 0
    fig.update_layout(title={"text": title, "x": 0.0, "xanchor": "left",
                             "subtitle": {"text": note, "font": {"size": 12, "color": "#555"}}},
                      margin={"t": 64 + 16 * lines})


def _missing_note(df, column, what):
    """Say which runs a chart of ``column`` leaves out (no such figure, or not finished); '' when none."""
    parts = []
    missing = df[(df["status"] == "ok") & df[column].isna()]
    if len(missing):
        parts.append(f"{len(missing)} run{'s' if len(missing) != 1 else ''} without a figure for {what.lower()} "
                     f"({_names(missing['scheme'] + ' on ' + missing['model'].astype(str))})")
    parts += _unfinished_note(df)
    return ("Not shown: " + "; ".join(parts)) if parts else ""


def _figure(title, note="", **layout):
    fig = go.Figure()
    fig.update_layout(template=TEMPLATE, hoverlabel={"align": "left"}, **layout)
    _title(fig, title, note)
    return fig


def _annotate(fig, text):
    fig.add_annotation(text=text, xref="paper", yref="paper", x=0.0, y=1.02, xanchor="left",
                       yanchor="bottom", showarrow=False, align="left", font={"size": 12, "color": "#555"})


def _empty(title, why):
    fig = _figure(title)
    fig.add_annotation(text=why, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                       font={"size": 14, "color": "#555"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _custom(*columns):
    """Per-point hover data as plain Python values (numbers stay numbers for d3 formats)."""
    def plain(value):
        value = value.item() if isinstance(value, np.generic) else value
        return None if isinstance(value, float) and math.isnan(value) else value
    return [[plain(v) for v in values] for values in zip(*columns)]


def _accuracy_rows(df):
    return df[(df["status"] == "ok") & df["accuracy"].notna()]


_TABLE1_WIDTHS = {"Model": 1.3, "Dataset": 0.9, "Scheme": 1.4, "Metric": 1.3, "Note": 2.2}


def _cell(value, spec="{}"):
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return spec.format(value)


def table1_figure(df):
    """Return every run's Table 1 (:func:`optlib.analysis.tables.runs_table1`) drawn as a ``go.Table``; missing figures show as "—"."""
    title = "Table 1 · Accuracy, latency and size per scheme (measured here, vs float32)"
    table = tables.runs_table1(df)
    if table.empty:
        return _empty(title, "No runs to show yet: run a sweep first.")
    fig = _figure(title, height=min(1400, 150 + 30 * len(table) + 14 * int(table["Note"].str.len().gt(0).sum())))
    plain = ["#222"] * len(table)
    fig.add_trace(go.Table(
        columnwidth=[_TABLE1_WIDTHS.get(c, 0.9 if "×" in c or "%" in c or "Δ" in c else 0.8) for c in table.columns],
        header={"values": [f"<b>{c}</b>" for c in table.columns], "align": "left", "fill_color": "#e8e8e8"},
        cells={"values": [[_cell(v, tables.RUNS_TABLE1_FORMATS.get(c, "{}")) for v in table[c]] for c in table.columns],
               "align": "left", "height": 26,
               "font": {"color": [plain, plain, [color_of(s) for s in table["Scheme"]]]
                        + [plain] * (len(table.columns) - 3)}},
        name="Table 1"))
    return fig


# --- Table 2: accuracy by activation type -------------------------------------

def table2_figure(df):
    """Return every run's Table 2 (:func:`optlib.analysis.tables.runs_table2`) as a grouped bar chart: one bar group per model.

    One trace per activation type (named after the scheme that gives it),
    in the colour of that scheme. Missing cells are not drawn; an annotation
    says which and why.
    """
    title = "Table 2 · Accuracy with float32, int8 and int16 activations"
    subset = df[df["scheme"].isin(tables.TABLE2_ACCURACY)]
    column = quality_column(subset)
    y_title, _, percent = metric_axis(subset) if column == "metric_value" else (ACCURACY_AXIS, True, True)
    scale = 100 if percent else 1
    newest = report.latest(subset)
    shown = newest[newest[column].notna()]
    if shown.empty:
        why = "No float32, int8 or int16x8 run with an accuracy figure yet."
        note = _accuracy_note(subset)
        return _empty(title, why + (f"<br>{note}" if note else ""))
    note = _accuracy_note(subset) if percent else _missing_note(subset, column, y_title.split(" (")[0])
    fig = _figure(title, note, barmode="group",
                  xaxis_title="Model", yaxis_title=y_title, legend_title_text="Activations")
    shown = shown.assign(label=_group_label(shown))
    for scheme, name_ in tables.TABLE2_ACCURACY.items():
        rows = shown[shown["scheme"] == scheme]
        name = f"{name_.removeprefix('Accuracy (').removesuffix(')')} ({scheme})"
        fig.add_trace(go.Bar(
            x=rows["label"], y=rows[column] * scale, name=name, marker_color=color_of(scheme),
            text=[f"{v:.2f}" if percent else f"{v:.4g}" for v in rows[column] * scale],
            textposition="outside",
            customdata=_custom(rows["scheme"], rows["model"], rows["dataset"], rows["id"]),
            hovertemplate=("<b>%{customdata[0]}</b><br>model %{customdata[1]}<br>dataset %{customdata[2]}"
                           + ("<br>top-1 %{y:.2f}%" if percent else f"<br>{y_title.split(' (')[0]} %{{y:.4g}}")
                           + "<br>run #%{customdata[3]}<extra></extra>")))
    if not percent:
        return fig
    fig.update_yaxes(range=[0, 105])
    return fig


# --- Accuracy against size or latency, with the Pareto front -------------------

def scatter(df, x="size_mb", y=None):
    """Return a quality figure against size or latency: one marker per run and the Pareto front as a line.

    Args:
        df: a frame from :func:`optlib.analysis.report.frame`.
        x: ``"size_mb"``, ``"gzip_mb"`` or ``"latency_ms"``.
        y: a key of :data:`Y_AXES`: ``"accuracy"`` (top-1), ``"metric_value"`` (each run's task metric, its
            axis named with its direction: "MAE (lower is better)"), or a fidelity figure; by default the
            task's metric (:func:`quality_column`).

    Returns:
        A figure with one panel per model (and dataset) when there are several, each with its own axes: in each,
        one marker trace per scheme (registry order, named by scheme, one colour per scheme and one legend entry
        per scheme) and a line trace "Pareto front" through the runs of that panel no other run of it beats on
        both axes (drawn, and named in the legend, only where it joins two runs or more). Runs on one spot are
        concentric rings, named in a hover over the spot; no text is written over the markers.

    Raises:
        ValueError: ``x`` or ``y`` is not one of the accepted columns.
    """
    y = quality_column(df) if y is None else y
    if x not in X_AXES:
        raise ValueError(f"Cannot plot accuracy against '{x}'; choose one of: {', '.join(X_AXES)}.")
    if y not in Y_AXES:
        raise ValueError(f"Cannot plot '{y}'; choose one of: {', '.join(Y_AXES)}.")
    higher, scale = True, 100 if y in PERCENT else 1
    y_title = Y_AXES[y]
    if y == "metric_value":
        y_title, higher, percent = metric_axis(df)
        scale = 100 if percent else 1
    what = "Accuracy" if y == "accuracy" else y_title.split(" (")[0]
    title = f"{what} vs {X_AXES[x].split(' (')[0].lower()}"
    shown = df[(df["status"] == "ok") & df[y].notna()].dropna(subset=[x])
    note = _accuracy_note(df) if y == "accuracy" else _missing_note(df, y, what)
    if shown.empty:
        why = "an accuracy figure" if y == "accuracy" else f"a figure for {what.lower()}"
        return _empty(title, f"No finished run with {why} yet." + (f"<br>{note}" if note else ""))
    facets = _facets(shown)  # one panel per model (and dataset): each its own axes and its own Pareto front
    if len(facets) > 1:
        # Room between panels for one's x axis title and the next one's model: 110 px of each panel's height.
        fig = _faceted(title, note, facets, spacing=110 / (SCATTER_PANEL * len(facets)), legend_title_text="Scheme")
        # The title and note pinned to the top, the first model's name below them (Plotly centres a title in the
        # top margin: a wider margin would move the note onto the name).
        fig.update_layout(height=120 + SCATTER_PANEL * len(facets), margin_t=fig.layout.margin.t + 30,
                          title={"yref": "container", "y": 1, "yanchor": "top", "pad": {"t": 16}})
    else:
        fig = _figure(title, note, legend_title_text="Scheme",
                      height=max(480, 220 + 30 * (shown["scheme"].nunique() + 1)))  # the whole legend, unscrolled
    unit = "ms" if x == "latency_ms" else "MB"
    label = y_title.split(" (")[0]
    shown_y = "top-1 %{y:.2f}%" if y == "accuracy" else f"{label} %{{y:.4g}}{'%' if scale == 100 else ''}"
    in_legend, front_named = set(), False
    for row, (_, rows) in enumerate(facets, 1):
        log = _spans_orders(rows[x])
        sizes = _ring_sizes(rows, x, rows[y] * scale, log)
        for scheme in in_registry_order(rows["scheme"]):
            mine = rows[rows["scheme"] == scheme]
            fig.add_trace(go.Scatter(
                x=mine[x], y=mine[y] * scale, mode="markers", name=scheme, legendgroup=scheme,
                showlegend=scheme not in in_legend,
                marker={"color": color_of(scheme), "size": list(sizes[mine.index]),
                        "line": {"width": 1, "color": "white"}},
                customdata=_custom(mine["scheme"], mine["model"], mine["dataset"], mine["id"], mine["title"]),
                hovertemplate=(f"<b>%{{customdata[0]}}</b> · %{{customdata[4]}}<br>model %{{customdata[1]}}"
                               f"<br>dataset %{{customdata[2]}}<br>{shown_y}<br>{x.split('_')[0]} "
                               f"%{{x:.4g}} {unit}<br>run #%{{customdata[3]}}<extra></extra>")),
                row=row if len(facets) > 1 else None, col=1 if len(facets) > 1 else None)
            in_legend.add(scheme)
        front = report.pareto(rows, x, y, maximize=higher)
        if len(front) > 1:  # a front of one run is no line: the legend names it only where it is drawn
            fig.add_trace(go.Scatter(
                x=front[x], y=front[y] * scale, mode="lines", line={"color": "#444", "dash": "dash"},
                name="Pareto front", legendgroup="front", showlegend=not front_named,
                customdata=_custom(front["scheme"], front["model"]),
                hovertemplate=(f"Pareto front<br><b>%{{customdata[0]}}</b> on %{{customdata[1]}}<br>"
                               f"{shown_y}<br>%{{x:.4g}} {unit}<extra></extra>")),
                row=row if len(facets) > 1 else None, col=1 if len(facets) > 1 else None)
            front_named = True
        axis = {"row": row, "col": 1} if len(facets) > 1 else {}
        fig.update_xaxes(title_text=X_AXES[x], **axis)
        fig.update_yaxes(title_text=y_title, **axis)
        if log:  # e.g. int16x8 reference kernels; a tick per decade keeps the labels apart
            fig.update_xaxes(type="log", dtick=1, title_text=X_AXES[x] + ", log scale", **axis)
        _name_crowds(fig, rows, x, rows[y] * scale, log, axis)
    # Each y tick label above its grid line, so the lowest never meets the first x tick label in the corner
    # (Present's "96.5" on "0.05"); the legend's markers one size, whatever the size of the rings.
    fig.update_yaxes(ticklabelposition="outside top")
    fig.update_layout(legend_itemsizing="constant")
    return fig


SCATTER_PANEL = 330  # px per model's panel of a trade-off chart


def _ring_sizes(rows, x, ys, log, smallest=10, step=7):
    """Marker size per row: runs on one spot are drawn as rings, the first in registry order the widest (and
    drawn first, beneath), so every run on the spot shows its colour and the legend tells them apart."""
    sizes = pd.Series(smallest, index=rows.index)
    points = pd.DataFrame({"x": rows[x].to_numpy(), "y": ys.to_numpy()})
    order = rows["scheme_order"].to_numpy() if "scheme_order" in rows else np.arange(len(rows))
    for group in crowds(points, log):
        ranked = sorted(group, key=lambda i: order[i])
        for rank, i in enumerate(ranked):
            sizes.iloc[i] = smallest + step * (len(ranked) - 1 - rank)
    return sizes


def crowds(points, log_x=False, reach=0.05):
    """Groups of points that would sit on one spot: within ``reach`` of each other on both axes,
    as a share of each axis's span (log x measured in decades). Returns lists of row positions."""
    xs = np.log10(points["x"].clip(lower=1e-12)) if log_x else points["x"].astype(float)
    ys = points["y"].astype(float)
    span_x, span_y = (float(xs.max() - xs.min()) or 1.0), (float(ys.max() - ys.min()) or 1.0)
    groups = []
    for i, (px, py) in enumerate(zip(xs, ys)):
        for group in groups:
            gx, gy = xs.iloc[group[0]], ys.iloc[group[0]]
            if abs(px - gx) <= reach * span_x and abs(py - gy) <= reach * span_y:
                group.append(i)
                break
        else:
            groups.append([i])
    return [group for group in groups if len(group) > 1]


def _name_crowds(fig, shown, x, ys, log, axis):
    """Name the schemes that share one spot in a hover over it: no text on the chart, where it would cover
    other markers; the rings (:func:`_ring_sizes`) and the legend's colours tell them apart on screen."""
    points = pd.DataFrame({"x": shown[x].to_numpy(), "y": ys.to_numpy(),
                           "name": shown["scheme"].to_numpy(), "model": shown["model"].astype(str).to_numpy()})
    for group in crowds(points, log):
        members = points.iloc[group]
        where = "; ".join(f"{row.name} on {row.model}" for row in members.itertuples())
        fig.add_trace(go.Scatter(
            x=[members["x"].iloc[0]], y=[members["y"].iloc[0]], mode="markers", showlegend=False,
            name="same spot", text=[" · ".join(dict.fromkeys(members["name"]))],
            marker={"size": 10 + 7 * len(group), "color": "rgba(0,0,0,0)"},
            hovertemplate=f"Same spot: {where}<extra></extra>"), **axis)


def _spans_orders(values, ratio=30):
    """True when the positive values differ more than ``ratio`` times: a linear axis would flatten the small ones."""
    positive = values[values > 0]
    return bool(len(positive)) and positive.max() / positive.min() > ratio


# --- Bars: size and latency per scheme --------------------------------------

FACET_HEIGHT = 300  # px per model: scheme names stay legible under each model's own bars


def _bar_rows(df):
    """Newest ok run per model, dataset and scheme, in model then registry order."""
    return report.latest(df).sort_values(["model", "dataset", "scheme_order"], kind="stable")


def _facets(rows):
    """(label, rows) per model (and dataset): each gets its own panel and y axis, so one big model
    never flattens the bars of the others."""
    labels = _group_label(rows)
    return [(label, rows[labels == label]) for label in dict.fromkeys(labels)]


def _faceted(title, note, facets, spacing=None, **layout):
    """A figure with one panel per model, stacked; each panel titled with its model when there are several."""
    fig = make_subplots(rows=len(facets), cols=1, vertical_spacing=spacing or min(0.12, 0.5 / len(facets)),
                        subplot_titles=[label for label, _ in facets] if len(facets) > 1 else None)
    fig.update_layout(template=TEMPLATE, hoverlabel={"align": "left"},
                      height=120 + FACET_HEIGHT * len(facets), **layout)
    _title(fig, title, note)
    fig.update_annotations(font={"size": 13}, selector={"text": [label for label, _ in facets]})
    return fig


def _log_if_spread(fig, values, row, title, suffix=""):
    """A log y axis for a panel whose bars differ more than 30 times (e.g. int16x8 reference kernels)."""
    fig.update_yaxes(title_text=title + suffix, row=row, col=1)
    if _spans_orders(values):
        fig.update_yaxes(type="log", dtick=1, title_text=title + ", log scale" + suffix, row=row, col=1)


def _bar_note(df):
    parts = _unfinished_note(df)
    return ("Not shown: " + "; ".join(parts)) if parts else ""


def size_bars(df):
    """Return raw and gzipped model size per scheme as grouped bars (newest ok run of each).

    Two traces per model, "Raw .tflite" and "Gzipped (download)"; each bar has its
    scheme's colour (gzipped bars hatched). With several models, each model has its
    own panel and y axis (stacked), so a 14 MB model beside 0.02 MB ones hides nothing.
    """
    title = "Model size per scheme: stored and downloaded (gzipped)"
    rows = _bar_rows(df)
    note = _bar_note(df)
    if rows.empty:
        return _empty(title, "No finished runs to show yet." + (f"<br>{note}" if note else ""))
    facets = _facets(rows)
    fig = _faceted(title, note, facets, barmode="group", legend_title_text="Size")
    for number, (_, panel) in enumerate(facets, 1):
        colors = [color_of(s) for s in panel["scheme"]]
        for column, name, ratio, pattern in (("size_mb", "Raw .tflite", "size_ratio", ""),
                                             ("gzip_mb", "Gzipped (download)", "gzip_ratio", "/")):
            ratios = [f"{r:.2f}× smaller than float32" if np.isfinite(r) else "no float32 baseline"
                      for r in panel[ratio]]
            fig.add_trace(go.Bar(
                x=list(panel["scheme"]), y=panel[column], name=name, legendgroup=name, showlegend=number == 1,
                marker={"color": colors, "pattern": {"shape": pattern, "fgcolor": "white", "solidity": 0.35}},
                customdata=_custom(panel["scheme"], panel["model"], panel["dataset"],
                                   panel[column.replace("_mb", "_bytes")], ratios),
                hovertemplate=(f"<b>%{{customdata[0]}}</b> · {name}<br>model %{{customdata[1]}}"
                               "<br>%{y:.4g} MB (%{customdata[3]:,.0f} bytes)<br>%{customdata[4]}<extra></extra>")),
                row=number, col=1)
        _log_if_spread(fig, pd.concat([panel["size_mb"], panel["gzip_mb"]]), number, "Size (MB)")
    fig.update_xaxes(title_text="Scheme", row=len(facets), col=1)
    return fig


LATENCY_AXIS = "Median latency (ms per inference)"
WHISKERS = "<br><sup>whiskers: fastest run to 90th percentile</sup>"


def latency_bars(df):
    """Return median latency per scheme with whiskers from the fastest run to the 90th percentile.

    One bar trace per model named "Median latency", each bar in its scheme's colour
    (newest ok run of each scheme per model); several models get a panel each.
    """
    rows = _bar_rows(df)
    threads = sorted({int(t) for t in rows["threads"].dropna()}) if len(rows) else []
    timing = (f"{threads[0]} thread{'s' if threads[0] != 1 else ''}" if len(threads) == 1
              else "mixed thread counts, see hover")
    title = f"Median latency per scheme (LiteRT interpreter, {timing})" if threads else \
        "Median latency per scheme (LiteRT interpreter)"
    note = _bar_note(df)
    if rows.empty:
        return _empty(title, "No finished runs to show yet." + (f"<br>{note}" if note else ""))
    facets = _facets(rows)
    fig = _faceted(title, note, facets, showlegend=False)
    for number, (_, panel) in enumerate(facets, 1):
        speedups = [explain.speed_phrase(s, "float32") or "no float32 baseline" for s in panel["speedup"]]
        # Latencies are skewed (a few slow outliers): the whiskers span the measured fastest run to the 90th
        # percentile, not a standard deviation that can reach below 0 ms.
        above = (panel["latency_p90_ms"] - panel["latency_ms"]).clip(lower=0).fillna(0)
        below = (panel["latency_ms"] - panel["latency_min_ms"]).clip(lower=0).fillna(0)
        fig.add_trace(go.Bar(
            x=list(panel["scheme"]), y=panel["latency_ms"], name="Median latency",
            marker_color=[color_of(s) for s in panel["scheme"]],
            error_y={"type": "data", "array": above.to_list(), "arrayminus": below.to_list(),
                     "visible": True, "color": "#444"},
            customdata=_custom(panel["scheme"], panel["model"], panel["latency_p90_ms"], panel["latency_min_ms"],
                               panel["threads"], speedups),
            hovertemplate=("<b>%{customdata[0]}</b><br>model %{customdata[1]}<br>median %{y:.4g} ms"
                           "<br>fastest %{customdata[3]:.4g} ms · p90 %{customdata[2]:.4g} ms"
                           "<br>threads %{customdata[4]}<br>%{customdata[5]}<extra></extra>")),
            row=number, col=1)
        _log_if_spread(fig, panel["latency_ms"], number, LATENCY_AXIS, WHISKERS)
    fig.update_xaxes(title_text="Scheme", row=len(facets), col=1)
    return fig
