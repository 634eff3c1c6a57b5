"""A figure against a setting: how size, accuracy or latency move along a grid of settings.

``varying(df)`` names the numeric settings that take several values among runs of one scheme
(``--param prune.sparsity=0.3,0.5,0.7,0.9`` makes four); ``against(df, "sparsity", "gzip_mb")``
draws one line per model and scheme over that setting's values. Pure functions of the results
frame (:func:`optlib.analysis.report.frame`); importing this module does not import TensorFlow.
"""

import plotly.graph_objects as go

from optlib.views import charts

Y_AXES = {
    "gzip_mb": "Gzipped size (MB, what is downloaded)",
    "size_mb": "Model size (MB)",
    "accuracy": "Top-1 accuracy (%)",
    "latency_ms": "Median latency (ms per inference)",
}


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _values(df, setting):
    """The runs (ok, with a figure) that have ``setting``, with its value in a column ``value``."""
    ok = df[df["status"].eq("ok")] if "status" in df else df
    values = ok["settings"].map(lambda s: s.get(setting) if isinstance(s, dict) else None)
    keep = values.map(_number)
    return ok[keep].assign(value=values[keep].astype(float))


def varying(df):
    """Numeric settings that take at least two values among the finished runs of one model and scheme."""
    found = set()
    for _, group in df[df["status"].eq("ok")].groupby(["model", "scheme"]):
        names = {name for settings in group["settings"] if isinstance(settings, dict) for name in settings}
        for name in names:
            if _values(group, name)["value"].nunique() > 1:
                found.add(name)
    return sorted(found)


def against(df, setting, y="gzip_mb"):
    """One line per model and scheme: ``y`` over the values of ``setting``.

    ``y`` is a column of :data:`Y_AXES`, or "metric" for the task's metric of the runs (top-1 for
    classifiers, MAE for a regression model, its name and direction on the axis).
    """
    if y == "metric":
        y = charts.quality_column(df)
    axis_title, _, percent = charts.metric_axis(df) if y == "metric_value" else (Y_AXES[y], True, y == "accuracy")
    title = f"{axis_title.split(' (')[0]} against {setting}"
    rows = _values(df, setting)
    rows = rows[rows[y].notna()] if y in rows else rows.iloc[0:0]
    if rows.empty:
        return charts._empty(title, f"No finished run with both {setting} and {axis_title.lower()}.")
    fig = charts._figure(title, xaxis_title=setting, yaxis_title=axis_title, legend_title_text="Scheme")
    several_models = rows["model"].nunique() > 1
    for (model, scheme), line in rows.groupby(["model", "scheme"], sort=False):
        line = line.sort_values("value")
        if line["value"].nunique() < 2:
            continue  # one point is no line: the scheme ran at one value of this setting
        shown = line[y] * 100 if percent else line[y]
        fig.add_trace(go.Scatter(
            x=line["value"], y=shown, mode="lines+markers", name=f"{scheme} · {model}" if several_models else scheme,
            line={"color": charts.color_of(scheme)}, marker={"size": 9},
            customdata=charts._custom(line["id"], line["dataset"]),
            hovertemplate=f"{setting} %{{x:g}}<br>{axis_title}: %{{y:.4g}}<br>run #%{{customdata[0]}} · "
                          "%{customdata[1]}<extra></extra>"))
    if not fig.data:
        return charts._empty(title, f"No scheme ran at two or more values of {setting}.")
    return fig

