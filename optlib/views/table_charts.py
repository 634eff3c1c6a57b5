"""Table 1 / Table 2 figures: the guide's published rows beside this machine's, as Plotly figures.

Pure functions of :mod:`optlib.analysis.tables`' comparison tables: a table in,
a figure out. Colours and the template are :mod:`optlib.views.charts`' own.
"""

import math
import re

from optlib.analysis import reference
from optlib.analysis.tables import PUBLISHED, TABLE2_ACCURACY, display, has_value
from optlib.views.charts import TEMPLATE, color_of, wrap

# --- Figures ------------------------------------------------------------------
# Pure functions of the comparison tables above: a table in, a Plotly figure out.
# Published bars are hatched and paler, this machine's are solid, so a printed or
# projected chart still tells the two apart; every trace and axis says which is which.

SHORT_PUBLISHED = "Published (Pixel 2)"
SHORT_LOCAL = "This machine"
PUBLISHED_COLOR = "#4c78a8"
LOCAL_COLOR = "#ff6f00"
_HATCH = {"shape": "/", "fgcolor": "white", "solidity": 0.3}
_TABLE1_BARS = {  # scheme: (size column, latency column, label)
    "float32": ("Size original (MB)", "Latency original (ms)", "float32 (original)"),
    "int8": ("Size optimized (MB)", "Latency PTQ (ms)", "int8 (post-training quantized)"),
    "qat": (None, "Latency QAT (ms)", "qat (quantization-aware trained)"),
}


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
    note = wrap(note)  # Plotly does not wrap: a long note would run off a chart 640 px wide
    top += 16 * note.count("<br>")
    height += 16 * note.count("<br>")
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
    """Tick values 1, 2, 5, 10, 20, 50… covering ``values``: a log axis a person can read.

    Over more than two decades only the powers of ten: 1, 2, 5 in every decade would crowd
    a panel half of a 1024 px window.
    """
    values = [v for v in values if v is not None and v > 0]
    if not values:
        return []
    low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    steps = (1,) if high - low > 2 else (1, 2, 5)
    return [m * 10 ** e for e in range(low, high + 1) for m in steps]


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
                        subplot_titles=("Size (MB, log scale)", "Latency (ms, log scale)"))
    y = [list(table["Model"]), [_short(s) for s in table["Source"]]]
    ticks = {0: [], 1: []}
    for column in (0, 1):
        for published in (True, False):
            keep = [_is_published(s) == published for s in table["Source"]]
            for scheme, columns in _TABLE1_BARS.items():
                name = columns[column]
                if name is None:
                    continue
                values = [float(v) if k and has_value(v) else None for v, k in zip(table[name], keep)]
                if not any(v is not None for v in values):
                    continue
                ticks[column] += values
                label = f"{SHORT_PUBLISHED if published else SHORT_LOCAL} · {columns[2]}"
                rank = (0 if published else 10) + list(_TABLE1_BARS).index(scheme)
                fig.add_trace(go.Bar(
                    y=y, x=values, orientation="h", name=label, legendgroup=label, legendrank=rank,
                    showlegend=column == 0 or scheme == "qat", offsetgroup=scheme,
                    marker={"color": color_of(scheme), "opacity": 0.55 if published else 1.0,
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
            values = [float(rows.loc[m, column]) * scale if m in rows.index and has_value(rows.loc[m, column]) else None
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
        values = [float(v) * scale for v in table[column] if has_value(v)]
        if values:
            low, high = min(0.0, min(values)), max(0.0, max(values))
            pad = (high - low) * 0.22 or 1.0
            fig.update_xaxes(range=[low - (pad if low < 0 else 0), high + pad], row=1, col=panel)
    fig.update_yaxes(autorange="reversed", tickfont={"size": 12})
    fig.update_layout(barmode="group", bargap=0.25)
    local = table[~table["Source"].map(_is_published)]
    note = _sources_note(table)
    if len(local) and not local["(INT8-FP32)/FP32 accuracy"].map(has_value).any():
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
            if any(_leading_number(r[c]) is not None for c in TABLE2_ACCURACY.values())]
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
        values = [_leading_number(r[c]) for c in TABLE2_ACCURACY.values()]
        top = max(v for v in values if v is not None)
        fig.add_trace(go.Bar(
            x=[labels[s] for s in TABLE2_ACCURACY], y=values, showlegend=False, name=r["Model"],
            marker={"color": [color_of(s) for s in TABLE2_ACCURACY], "opacity": 0.6 if published else 1.0,
                    "pattern": _HATCH if published else {"shape": ""}},
            text=[str(r[c]) for c in TABLE2_ACCURACY.values()], textposition="outside", cliponaxis=False,
            textfont={"size": 11}, customdata=[r["Source"]] * 3,
            hovertemplate=(f"<b>{r['Model']}</b> · %{{x}} activations<br>%{{customdata}}<br>"
                           f"{r['Accuracy metric type']}: %{{text}}<extra></extra>")),
            row=index // columns + 1, col=index % columns + 1)
        fig.update_yaxes(range=[0, top * 1.25], row=index // columns + 1, col=index % columns + 1)
    for scheme, label in labels.items():  # a legend for the colours (the panels share them)
        fig.add_trace(go.Bar(x=[None], y=[None], name=f"{label} activations ({scheme})",
                             marker={"color": color_of(scheme)}), row=1, col=1)
    fig.update_annotations(font={"size": 13})
    _layout(fig, "Table 2 · Accuracy with float32, int8 and int16 activations", _sources_note(table),
            height=330 * lines + 190, top=130, bottom=60)
    fig.update_layout(bargap=0.25)
    return fig
