"""optlib.views.charts: figures and comparison tables from a hand-made results frame."""

import math

import plotly.graph_objects as go
import pytest

from optlib.analysis import report, tables
from optlib.engine import schemes
from optlib.views import charts
from rows import result


@pytest.fixture()
def df():
    """Two models: a trained one with every kind of row, and an untrained one (no accuracy)."""
    rows = [
        # Given out of registry order on purpose.
        result("qat", 6, accuracy=0.89, size=260, gzip=180, median=0.6),
        result("float32", 1, accuracy=0.90, size=1000, gzip=900, median=2.0, std=0.2, p90=2.4),
        result("int8", 4, accuracy=0.88, size=250, gzip=200, median=0.5, std=0.05, p90=0.7),
        result("float16", 2, accuracy=0.90, size=500, gzip=450, median=2.1),
        result("int16x8", 5, status="failed"),
        result("cluster", 7, accuracy=0.91, size=1000, gzip=150, median=2.0),
        result("float32", 10, model="big", accuracy=None, size=14_000_000, gzip=13_000_000, median=8.3),
        result("int8", 11, model="big", accuracy=None, size=3_900_000, gzip=3_500_000, median=4.1),
    ]
    return report.frame(rows)


def trained(df):
    return df[df["model"] == "m"]


def registry_sorted(names):
    order = schemes.names()
    return sorted(names, key=order.index)


def annotations(fig):
    """The text a figure writes around its plot: annotations, and the note under its title."""
    return " ".join([a.text for a in fig.layout.annotations] + [fig.layout.title.subtitle.text or ""])


# --- Colours and order -------------------------------------------------------

def test_every_registry_scheme_has_its_own_colour():
    colors = [charts.color_of(name) for name in schemes.names()]
    assert len(set(colors)) == len(colors)
    assert charts.color_of("not-a-scheme") == charts.color_of("not-a-scheme")


def test_in_registry_order():
    assert charts.in_registry_order(["qat", "int8", "zzz", "float32", "int8"]) == ["float32", "int8", "qat", "zzz"]


# --- Table 1 -----------------------------------------------------------------

def test_table1_values_and_deltas(df):
    table = tables.runs_table1(df)
    assert tuple(table.columns) == tables.RUNS_TABLE1_COLUMNS
    mine = table[table["Model"] == "m"]
    assert list(mine["Scheme"]) == ["float32", "float16", "int8", "int16x8", "qat", "cluster"]
    int8 = mine[mine["Scheme"] == "int8"].iloc[0]
    assert int8["Top-1 accuracy (%)"] == pytest.approx(88.0)
    assert int8["Δ top-1 vs float32 (points)"] == pytest.approx(-2.0)
    assert int8["Latency (ms)"] == pytest.approx(0.5) and int8["Speed-up vs float32 (×)"] == pytest.approx(4.0)
    assert int8["Size (MB)"] == pytest.approx(0.00025) and int8["Smaller than float32 (×)"] == pytest.approx(4.0)
    assert int8["Gzipped (MB)"] == pytest.approx(0.0002) and int8["Gzipped smaller than float32 (×)"] == 4.5
    assert int8["Note"] == ""
    failed = mine[mine["Scheme"] == "int16x8"].iloc[0]
    assert math.isnan(failed["Top-1 accuracy (%)"]) and failed["Note"].startswith("failed")
    big = table[(table["Model"] == "big") & (table["Scheme"] == "int8")].iloc[0]
    assert math.isnan(big["Top-1 accuracy (%)"]) and "untrained" in big["Note"]
    assert big["Smaller than float32 (×)"] == pytest.approx(3.59)


def test_table1_figure_is_a_table_with_dashes_for_missing(df):
    fig = charts.table1_figure(df)
    assert isinstance(fig.data[0], go.Table)
    assert "Table 1" in fig.layout.title.text
    cells = fig.data[0].cells.values
    headers = list(fig.data[0].header.values)
    accuracy = cells[headers.index("<b>Top-1 accuracy (%)</b>")]
    assert "88.00" in accuracy and "—" in accuracy


# --- Table 2 -----------------------------------------------------------------

def test_table2_puts_activation_types_side_by_side_blank_where_not_run(df):
    table = tables.runs_table2(df)
    assert tuple(table.columns) == tables.RUNS_TABLE2_COLUMNS
    mine = table[table["Model"] == "m"].iloc[0]
    assert mine["Accuracy (float32 activations)"] == pytest.approx(90.0)
    assert mine["Accuracy (int8 activations)"] == pytest.approx(88.0)
    assert math.isnan(mine["Accuracy (int16 activations)"])  # it failed
    assert "int16x8: failed" in mine["Note"]
    big = table[table["Model"] == "big"].iloc[0]
    assert math.isnan(big["Accuracy (float32 activations)"]) and "untrained" in big["Note"]
    assert "int16x8: not run" in big["Note"]


def test_table2_figure_groups_bars_by_model_and_leaves_out_untrained(df):
    fig = charts.table2_figure(df)
    assert [t.name for t in fig.data] == ["float32 activations (float32)", "int8 activations (int8)",
                                          "int16 activations (int16x8)"]
    assert [t.marker.color for t in fig.data] == [charts.color_of(s) for s in ("float32", "int8", "int16x8")]
    float32, int8, int16 = fig.data
    assert list(float32.x) == ["m"] and list(float32.y) == pytest.approx([90.0])
    assert list(int8.y) == pytest.approx([88.0]) and len(int16.x) == 0
    note = annotations(fig)
    assert "without an accuracy" in note and "big" in note and "int16x8" in note
    assert "%" in fig.layout.yaxis.title.text


# --- Scatter -----------------------------------------------------------------

@pytest.mark.parametrize("x, unit", [("size_mb", "MB"), ("gzip_mb", "MB"), ("latency_ms", "ms")])
def test_scatter_one_trace_per_scheme_in_registry_order_plus_the_front(df, x, unit):
    fig = charts.scatter(df, x)
    names = [t.name for t in fig.data]
    shown = ["float32", "float16", "int8", "qat", "cluster"]  # ok runs with an accuracy
    expected = report.pareto(trained(df), x)
    if len(expected) < 2:  # cluster is both the smallest gzipped and the best: a front of one run is no line
        assert names == registry_sorted(shown)
        return
    assert names == registry_sorted(shown) + ["Pareto front"]
    assert unit in fig.layout.xaxis.title.text and "%" in fig.layout.yaxis.title.text
    for trace in fig.data[:-1]:
        assert trace.marker.color == charts.color_of(trace.name)
        assert "customdata[1]" in trace.hovertemplate  # the model
    front = fig.data[-1]
    assert list(front.x) == pytest.approx(list(expected[x]))
    assert list(front.y) == pytest.approx(list(expected["accuracy"] * 100))


def test_scatter_leaves_out_untrained_and_failed_runs_and_says_so(df):
    fig = charts.scatter(df, "size_mb")
    plotted = [point for trace in fig.data[:-1] for point in trace.customdata]
    assert {p[1] for p in plotted} == {"m"}  # no marker of the untrained model
    assert all(y > 50 for trace in fig.data for y in trace.y)  # nothing drawn as zero
    note = annotations(fig)
    assert "2 runs without an accuracy" in note and "big" in note
    assert "1 failed run (int16x8 on m)" in note


def test_scatter_refuses_an_unknown_axis(df):
    with pytest.raises(ValueError, match="size_mb, gzip_mb, latency_ms"):
        charts.scatter(df, "accuracy")


def test_scatter_pareto_front_known_points():
    rows = [result("float32", 1, accuracy=0.90, size=1000), result("float16", 2, accuracy=0.90, size=500),
            result("int8", 3, accuracy=0.85, size=250), result("qat", 4, accuracy=0.80, size=300)]
    front = charts.scatter(report.frame(rows), "size_mb").data[-1]
    assert list(front.customdata[i][0] for i in range(len(front.x))) == ["int8", "float16"]


def test_scatter_of_only_untrained_runs_explains_instead_of_plotting(df):
    fig = charts.scatter(df[df["model"] == "big"], "size_mb")
    assert len(fig.data) == 0
    assert "without an accuracy" in annotations(fig)


# --- Bars --------------------------------------------------------------------

def test_size_bars_raw_and_gzipped_per_scheme(df):
    fig = charts.size_bars(trained(df))
    assert [t.name for t in fig.data] == ["Raw .tflite", "Gzipped (download)"]
    raw, gz = fig.data
    assert list(raw.x) == ["float32", "float16", "int8", "qat", "cluster"]
    assert list(raw.y) == pytest.approx([0.001, 0.0005, 0.00025, 0.00026, 0.001])
    assert list(gz.y) == pytest.approx([0.0009, 0.00045, 0.0002, 0.00018, 0.00015])
    assert list(raw.marker.color) == [charts.color_of(s) for s in raw.x]
    assert fig.layout.yaxis.title.text == "Size (MB)"
    assert "1 failed run" in annotations(fig)


def test_size_bars_give_each_model_its_own_panel_when_there_are_several(df):
    fig = charts.size_bars(df)
    big_raw, big_gzip, m_raw, m_gzip = fig.data
    assert list(big_raw.x) == ["float32", "int8"] and big_raw.y[0] == pytest.approx(14.0)  # untrained: still a size
    assert list(m_raw.x) == ["float32", "float16", "int8", "qat", "cluster"]
    assert (big_raw.yaxis, m_raw.yaxis) == ("y", "y2") and (big_gzip.yaxis, m_gzip.yaxis) == ("y", "y2")
    assert [t.showlegend for t in fig.data] == [True, True, False, False]  # one legend entry per kind of bar
    assert {"big", "m"} <= {a.text for a in fig.layout.annotations}  # each panel is titled with its model
    assert fig.layout.height >= 2 * charts.FACET_HEIGHT
    latency = charts.latency_bars(df)
    assert [list(t.x) for t in latency.data] == [["float32", "int8"], ["float32", "float16", "int8", "qat", "cluster"]]


def test_latency_bars_median_with_whiskers_to_p90_and_p90_in_hover(df):
    fig = charts.latency_bars(trained(df))
    (bars,) = fig.data
    assert list(bars.x) == ["float32", "float16", "int8", "qat", "cluster"]
    assert list(bars.y) == pytest.approx([2.0, 2.1, 0.5, 0.6, 2.0])
    assert list(bars.error_y.array)[:3] == pytest.approx([0.4, 0.4, 0.2])  # p90 - median
    assert "p90" in bars.hovertemplate
    assert [c[2] for c in bars.customdata][:3] == pytest.approx([2.4, 2.5, 0.7])
    assert "ms" in fig.layout.yaxis.title.text and "1 thread" in fig.layout.title.text


def test_latest_run_per_scheme_in_bars():
    rows = [result("float32", 1, size=1000), result("float32", 9, size=2000)]
    assert list(charts.size_bars(report.frame(rows)).data[0].y) == pytest.approx([0.002])


@pytest.mark.parametrize("make", [charts.table1_figure, charts.table2_figure, charts.size_bars,
                                  charts.latency_bars, charts.scatter])
def test_every_figure_has_a_title_and_copes_with_no_results(make):
    fig = make(report.frame([]))
    assert isinstance(fig, go.Figure) and fig.layout.title.text
    assert annotations(fig)  # says there is nothing yet
    assert tables.runs_table1(report.frame([])).empty and tables.runs_table2(report.frame([])).empty


def test_figures_have_titles_and_axis_units(df):
    for fig in (charts.size_bars(df), charts.latency_bars(df), charts.table2_figure(df), charts.scatter(df)):
        assert fig.layout.title.text
        assert all(axis.title.text for axis in fig.select_yaxes())  # every panel says what it plots
        assert list(fig.select_xaxes())[-1].title.text  # the bottom panel names the x axis


def test_latency_whiskers_are_the_fastest_run_to_the_90th_percentile_and_say_so():
    from optlib.analysis import report

    # A skewed distribution: std (3 ms) would reach below 0 ms and far above anything measured.
    df = report.frame([result("float32", 1, median=1.0, std=3.0, p90=1.2, fastest=0.9)])
    fig = charts.latency_bars(df)
    bars = fig.data[0]
    assert list(bars.error_y.arrayminus) == pytest.approx([0.1]) and list(bars.error_y.array) == pytest.approx([0.2])
    assert "whiskers: fastest run to 90th percentile" in fig.layout.yaxis.title.text


def test_one_big_model_does_not_flatten_the_others_and_models_are_named_in_the_legend(df):
    # df holds a 14 MB model beside 0.001 MB ones: a linear axis would show the small bars as nothing.
    # Each model has its own panel and y axis, so each is scaled to its own bars.
    size, latency = charts.size_bars(df), charts.latency_bars(df)
    big, small = size.layout.yaxis, size.layout.yaxis2
    assert big.type != "log" and small.type != "log"  # within a model the sizes are within 30x
    assert big.title.text == small.title.text == "Size (MB)"
    assert latency.layout.yaxis.type != "log"  # 8.3 ms beside 0.5 ms: within 30x, a linear axis reads fine
    spread = report.frame([result("float32", 1, median=0.02), result("int16x8", 2, median=1.5)])
    assert charts.latency_bars(spread).layout.yaxis.type == "log"  # int16x8 reference kernels: 75x slower
    fig = charts.scatter(df, "latency_ms")
    assert "xaxis2" not in fig.layout  # only models with an accuracy are plotted: one panel


def test_the_scatter_has_a_panel_and_a_pareto_front_per_model_and_its_legend_names_what_is_drawn():
    # Two models, far apart in size: one panel each (its own axes, titled with its model), a front in each
    # joining only that model's runs, and each scheme and "Pareto front" named once in the legend.
    rows = [result("float32", 1, model="small", accuracy=0.90, size=40_000), result("int8", 2, model="small",
            accuracy=0.88, size=14_000), result("float32", 3, model="big", accuracy=0.72, size=14_000_000),
            result("int8", 4, model="big", accuracy=0.70, size=3_900_000), result("float16", 5, model="big",
            accuracy=0.72, size=7_000_000), result("qat", 6, model="lone", accuracy=0.9, size=10_000)]
    fig = charts.scatter(report.frame(rows), "size_mb")
    titles = [a.text for a in fig.layout.annotations]
    assert {"small", "big", "lone"} <= set(titles)  # each panel names its model
    assert "xaxis3" in fig.layout and "yaxis3" in fig.layout  # each its own axes
    fronts = [t for t in fig.data if t.name == "Pareto front"]
    assert len(fronts) == 2  # big and small; lone's single run draws no line
    for front in fronts:
        assert len({model for _, model in front.customdata}) == 1  # a front never joins two models' runs
    assert [t.showlegend for t in fronts] == [True, False]
    named = [t.name for t in fig.data if t.showlegend is not False and t.name != "same spot"]
    assert sorted(named) == sorted(["float32", "float16", "int8", "qat", "Pareto front"])  # once each
    assert not [t for t in fig.data if t.legendgroup == "models"]  # models told apart by panels, not symbols
    # Each y tick above its grid line: the lowest never meets the first x tick in the corner ("96.5" on "0.05").
    assert all(fig.layout[f"yaxis{n}"].ticklabelposition == "outside top" for n in ("", "2", "3"))
    one = charts.scatter(report.frame([result("float32", 1, accuracy=0.9, size=1000)]), "size_mb")
    assert [t.name for t in one.data] == ["float32"]  # one run: no front, none named


def test_runs_on_one_spot_are_rings_named_in_a_hover_not_text_over_markers():
    # int8, dynamic and qat: the same size and accuracy to a hair; float32 far away.
    df = report.frame([result("float32", 1, accuracy=0.90, size=240_000, median=0.02),
                       result("dynamic", 2, accuracy=0.975, size=66_000, median=0.02),
                       result("int8", 3, accuracy=0.9745, size=65_000, median=0.02),
                       result("qat", 4, accuracy=0.975, size=65_500, median=0.02)])
    fig = charts.scatter(df, "size_mb")
    (spot,) = [t for t in fig.data if t.name == "same spot"]
    assert "text" not in spot.mode  # no words over the markers: they covered other runs' markers
    assert not [t for t in fig.data if t.mode and "text" in t.mode]
    assert "Same spot: dynamic on m; int8 on m; qat on m" in spot.hovertemplate
    sizes = {t.name: t.marker.size[0] for t in fig.data if t.name in ("float32", "dynamic", "int8", "qat")}
    assert sizes["dynamic"] > sizes["int8"] > sizes["qat"] == sizes["float32"]  # rings: each colour shows


def test_crowds_measure_a_log_axis_in_decades():
    import pandas as pd

    points = pd.DataFrame({"x": [0.001, 0.00105, 1.0], "y": [90.0, 90.0, 90.0]})
    assert charts.crowds(points, log_x=True) == [[0, 1]]
    assert charts.crowds(points, log_x=False) == [[0, 1]]  # linear: 0.00005 of a span of 1
    assert charts.crowds(pd.DataFrame({"x": [1.0, 2.0], "y": [50.0, 90.0]})) == []


def test_notes_are_wrapped_to_fit_a_narrow_chart():
    rows = [result("float32", 1, accuracy=0.9)] + [
        result(name, i, model=f"a-model-with-a-long-name-{i}", status="failed") for i, name in
        enumerate(("float16", "dynamic", "int8", "int16x8", "qat"), 2)]
    note = charts.scatter(report.frame(rows), "size_mb").layout.title.subtitle.text
    assert "<br>" in note and all(len(line) <= 90 for line in note.split("<br>"))
