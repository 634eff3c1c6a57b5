"""optlib.views.insight_charts: figures and tables of the Layer insight & search page from hand-made data."""

import math

import numpy as np
import plotly.graph_objects as go
import pytest

from optlib.views import insight_charts as ic
from optlib.analysis import report
from optlib.views.charts import color_of
from rows import short_result


def layer(position, name, op, int8, int16=None):
    row = {"position": position, "layer": name, "op": op, "int8_error": int8, "int8_rmse": int8 / 2,
           "int8_max_abs": int8 * 3}
    row.update({"int16x8_error": int16, "int16x8_rmse": None if int16 is None else int16 / 2,
                "int16x8_max_abs": None if int16 is None else int16 * 3})
    return row


# The layers of digits_cnn as layers.compare_layers names them, with made-up errors.
LAYERS = [
    layer(0, "digits_cnn/conv2d/Relu;digits_cnn/conv2d/BiasAdd;digits_cnn/conv2d/Conv2D", "CONV_2D", 0.0045, 0.0021),
    layer(1, "digits_cnn/max_pooling2d/MaxPool", "MAX_POOL_2D", 0.0043, 0.0020),
    layer(2, "digits_cnn/dense/MatMul;digits_cnn/dense/Relu;digits_cnn/dense/BiasAdd", "FULLY_CONNECTED", 0.30, 0.01),
    layer(3, "digits_cnn/dense_1/MatMul;digits_cnn/dense_1/BiasAdd", "FULLY_CONNECTED", 0.0092, 0.0044),
    layer(4, "StatefulPartitionedCall:0", "SOFTMAX", 0.0039, 0.0006),
]


def annotations(fig):
    """The text a figure writes around its plot: annotations, and the note under its title."""
    return " ".join([a.text for a in fig.layout.annotations] + [fig.layout.title.subtitle.text or ""])


def test_short_names_drop_the_model_scope_and_the_fused_ops():
    assert ic.short_name("digits_cnn/conv2d/Relu;digits_cnn/conv2d/BiasAdd") == "conv2d/Relu"
    assert ic.short_name("model/bad/MatMul") == "bad/MatMul"
    assert ic.short_name("dense/MatMul") == "dense/MatMul"
    assert ic.short_name("StatefulPartitionedCall:0") == "model output"
    assert ic.layer_label(LAYERS[2]) == "dense/MatMul · #2"
    assert ic.candidate_label({"scheme": "int8_selective", "settings": {"worst_n": 2}}) == "int8_selective · worst 2"
    assert ic.candidate_label({"scheme": "int8", "settings": {}}) == "int8"


# --- Per-layer error ------------------------------------------------------------------------

def test_error_ranking_puts_the_worst_layer_on_top_and_marks_the_kept_ones():
    fig = ic.error_ranking(LAYERS, "int8", count=3, kept=[LAYERS[2]["layer"]])
    assert isinstance(fig, go.Figure)
    assert list(fig.layout.yaxis.categoryarray) == ["dense/MatMul · #2", "dense_1/MatMul · #3", "conv2d/Relu · #0"]
    assert fig.layout.yaxis.autorange == "reversed"  # the first category (the worst) at the top
    kept, = [t for t in fig.data if t.name == "chosen to stay in float"]
    assert list(kept.y) == ["dense/MatMul · #2"] and kept.marker.color == ic.KEPT_COLOR
    others, = [t for t in fig.data if t.name == "int8"]
    assert list(others.x) == [0.0092, 0.0045] and others.marker.color == color_of("int8")
    assert "the 3 worst of 5 layers" in annotations(fig)
    assert fig.layout.xaxis.range[1] > 0.30  # room for the value labels


def test_error_ranking_without_comparable_layers_says_so():
    fig = ic.error_ranking([{"position": 0, "layer": "a/b", "op": "ADD", "int8_error": None}], "int8")
    assert not fig.data and "No layer of the int8 model" in annotations(fig)


def test_error_sequence_draws_int8_against_int16_and_says_how_much_int16_helps():
    fig = ic.error_sequence(LAYERS, ("int8", "int16x8"))
    assert [t.name for t in fig.data] == ["int8", "int16x8"]
    assert list(fig.data[0].x) == [0, 1, 2, 3, 4] and list(fig.data[1].y)[2] == 0.01
    assert fig.layout.yaxis.type == "log"
    gains = [r["int8_error"] / r["int16x8_error"] for r in LAYERS]
    assert f"cut the channel error {np.median(gains):.1f}×" in annotations(fig)
    assert f"best {max(gains):.1f}×" in annotations(fig)
    assert list(fig.layout.xaxis.ticktext)[4] == "model output"


def test_error_sequence_with_int8_alone_says_why():
    rows = [{k: v for k, v in r.items() if not k.startswith("int16x8")} for r in LAYERS]
    fig = ic.error_sequence(rows, ("int8",), problem="int16x8 failed: no_integer_overflow_from_quantization")
    assert [t.name for t in fig.data] == ["int8"]
    assert "no_integer_overflow_from_quantization" in annotations(fig)
    assert fig.layout.title.text == "Layer by layer: int8 channel error"


# --- QuantizationDebugger -------------------------------------------------------------------

METRICS = [
    {"op_name": "CONV_2D", "tensor_name": "digits_cnn/conv2d/Relu;x", "num_elements": 10816.0, "stddev": 0.002,
     "mean_error": -7.9e-05, "max_abs_error": 0.0077, "mean_squared_error": 4.3e-06, "scale": 0.0075,
     "zero_point": -128.0, "rmse/scale": 0.277},
    {"op_name": "MAX_POOL_2D", "tensor_name": "digits_cnn/max_pooling2d/MaxPool", "num_elements": 2704.0,
     "stddev": 1.9e-08, "mean_error": -3.3e-10, "max_abs_error": 1.2e-07, "mean_squared_error": 3.5e-16,
     "scale": 0.0075, "zero_point": -128.0, "rmse/scale": 2.5e-06},
    {"op_name": "FULLY_CONNECTED", "tensor_name": "digits_cnn/dense_1/MatMul;y", "num_elements": 10.0,
     "stddev": 0.062, "mean_error": 0.012, "max_abs_error": 0.12, "mean_squared_error": 0.0046, "scale": 0.219,
     "zero_point": 6.0, "rmse/scale": 0.309},
]


def test_debugger_table_lists_the_largest_offenders_first():
    table = ic.debugger_table(METRICS, by="rmse/scale")
    assert list(table["Layer"]) == ["dense_1/MatMul", "conv2d/Relu", "max_pooling2d/MaxPool"]
    assert list(table["#"]) == [2, 0, 1]
    assert {"Mean squared error", "Max abs error", "Scale", "Zero point", "RMSE / scale"} <= set(table.columns)
    by_mse = ic.debugger_table(METRICS, by="mean_squared_error")
    assert list(by_mse["#"]) == [2, 0, 1]
    assert ic.debugger_table([]).empty


def test_debugger_chart_orders_bars_and_marks_pure_rounding_noise():
    fig = ic.debugger_chart(METRICS, "rmse/scale")
    assert list(fig.data[0].x) == ["dense_1/MatMul · #2", "conv2d/Relu · #0", "max_pooling2d/MaxPool · #1"]
    line, = [s for s in fig.layout.shapes if s.type == "line"]
    assert line.y0 == pytest.approx(1 / math.sqrt(12))
    in_order = ic.debugger_chart(METRICS, "scale", worst_first=False)
    assert list(in_order.data[0].y) == [0.0075, 0.0075, 0.219] and not in_order.layout.shapes
    with pytest.raises(ValueError, match="Unknown debugger metric 'rmse'; choose one of: rmse/scale, "
                                         "mean_squared_error, max_abs_error, scale"):
        ic.debugger_chart(METRICS, "rmse")


# --- Weights ------------------------------------------------------------------------------

def test_weight_histogram_shares_bins_and_shows_how_far_weights_moved():
    rng = np.random.default_rng(0)
    float32 = rng.normal(0, 0.1, (16, 3, 3, 1)).astype(np.float32)
    int8 = np.round(float32 / 0.002) * 0.002
    cluster = np.array([-0.1, 0.0, 0.1], np.float32)[np.digitize(float32, [-0.05, 0.05])]
    fig = ic.weight_histogram({"float32": float32, "int8": int8, "cluster": cluster}, "digits_cnn/conv2d/Conv2D")
    values = [t for t in fig.data if t.xaxis in (None, "x")]
    moved = [t for t in fig.data if t.xaxis == "x2"]
    assert [t.name.split(" · ")[0] for t in values] == ["float32", "int8", "cluster"]
    assert values[2].name == "cluster · 3 distinct"
    assert all(list(t.x) == list(values[0].x) for t in values)  # shared bins
    assert sum(values[0].y) == float32.size
    assert [t.legendgroup for t in moved] == ["int8", "cluster"]
    assert fig.layout.title.text == "Weights of conv2d/Conv2D"


def test_weight_histogram_of_one_version_has_no_change_panel():
    fig = ic.weight_histogram({"float32": np.arange(10.0)})
    assert len(fig.data) == 1 and "xaxis2" not in fig.layout
    assert not ic.weight_histogram({}).data


def test_sparsity_bars_show_what_each_layer_reached_against_the_target():
    kernels = [{"name": "digits_cnn/conv2d/Conv2D", "op": "CONV_2D", "shape": [16, 3, 3, 1], "sparsity": 0.25,
                "unique": 100},
               {"name": "digits_cnn/dense/MatMul", "op": "FULLY_CONNECTED", "shape": [64, 800], "sparsity": 0.5,
                "unique": 200}]
    fig = ic.sparsity_bars(kernels, target=0.5, scheme="prune")
    assert list(fig.data[0].y) == [25.0, 50.0]
    assert list(fig.data[0].x) == ["conv2d/Conv2D · CONV_2D", "dense/MatMul · FULLY_CONNECTED"]
    overall = (0.25 * 144 + 0.5 * 51200) / (144 + 51200)
    assert f"{overall:.1%} zeros" in annotations(fig)
    assert fig.layout.shapes[0].y0 == 50.0 and "target 50%" in annotations(fig)
    assert "no kernels" in annotations(ic.sparsity_bars([], None))


# --- Before and after -----------------------------------------------------------------------

def test_before_after_draws_accuracy_size_and_latency_per_scheme():
    df = report.frame([short_result("float32", 1, 0.975, 230_400, 0.031), short_result("int8", 2, 0.90, 64_376, 0.012),
                       short_result("int8_selective", 3, 0.97, 79_500, 0.026)])
    fig = ic.before_after(df)
    assert len(fig.data) == 3
    accuracy, size, latency = fig.data
    assert list(accuracy.x) == ["float32", "int8", "int8_selective"]
    assert list(accuracy.y) == pytest.approx([97.5, 90.0, 97.0])
    assert list(size.y) == pytest.approx([230.4, 64.376, 79.5])
    assert list(latency.marker.color) == [color_of(s) for s in ("float32", "int8", "int8_selective")]
    assert fig.layout.yaxis.range[0] == pytest.approx(87.0)  # zoomed so a point or two stays visible


# --- Search -------------------------------------------------------------------------------

def search_result(met=True):
    trail = [
        {"scheme": "int8", "settings": {}, "id": 11, "status": "ok", "accuracy": 0.9611, "size_bytes": 64_376,
         "latency_ms": 0.0128, "loss": 0.0143, "objective": 64_376, "met": False,
         "verdict": "loses 1.43% of float32 accuracy, more than the 1.00% accepted"},
        {"scheme": "dynamic", "settings": {}, "id": 12, "status": "ok", "accuracy": 0.9722, "size_bytes": 64_216,
         "latency_ms": 0.0124, "loss": 0.0029, "objective": 64_216, "met": True,
         "verdict": "meets the target; best so far"},
        {"scheme": "int8_selective", "settings": {"worst_n": 1}, "id": 13, "status": "ok", "accuracy": 0.9694,
         "size_bytes": 66_208, "latency_ms": 0.0129, "loss": 0.0057, "objective": 66_208, "met": True,
         "verdict": "meets the target, but dynamic is better on size"},
        {"scheme": "int16x8", "settings": {}, "id": 14, "status": "failed", "accuracy": None, "size_bytes": None,
         "latency_ms": None, "verdict": "failed: RuntimeError: boom"},
        {"scheme": "qat", "settings": {}, "verdict": "not tried: time budget spent"},
    ]
    return {"target": {"max_loss": 0.01, "min_accuracy": 0.975 * 0.99, "objective": "size"},
            "baseline": {"accuracy": 0.975, "size_bytes": 230_400, "latency_ms": 0.0314, "id": 10},
            "best": trail[1] if met else trail[0], "met": met, "explanation": "", "trail": trail}


def test_trail_frame_lists_the_baseline_and_every_candidate_with_its_verdict():
    table = ic.trail_frame(search_result())
    assert list(table["Candidate"]) == ["float32 (baseline)", "int8", "dynamic", "int8_selective · worst 1",
                                        "int16x8", "qat"]
    assert list(table["#"]) == [0, 1, 2, 3, 4, 5]
    assert table["Verdict"][2] == "★ chosen — meets the target; best so far"
    assert sum(v.startswith("★") for v in table["Verdict"]) == 1
    assert table["Loss vs float32 (%)"][1] == pytest.approx(1.43)
    assert table["Size (kB)"][0] == pytest.approx(230.4)
    assert table["Status"][5] == "not tried" and math.isnan(table["Top-1 (%)"][4])
    assert list(table["Run"].astype(object).where(table["Run"].notna(), None)) == [10, 11, 12, 13, 14, None]


def test_search_chart_marks_candidates_the_target_and_the_choice():
    fig = ic.search_chart(search_result(), "size")
    names = [t.name for t in fig.data]
    assert names[0] == "Pareto front"
    assert "float32 (baseline)" in names and "int8 (misses the target)" in names and "dynamic" in names
    assert "★ chosen: dynamic" in names
    star = fig.data[names.index("★ chosen: dynamic")]
    assert list(star.x) == [64.216] and list(star.y) == pytest.approx([97.22])
    missed = fig.data[names.index("int8 (misses the target)")]
    assert missed.marker.color == "white"  # open: it missed the target
    target = [s for s in fig.layout.shapes if s.type == "line"][0]
    assert target.y0 == pytest.approx(100 * 0.975 * 0.99)
    assert "target: top-1 ≥ 96.52%" in annotations(fig) and "★ chosen: dynamic" in annotations(fig)
    assert "Not shown: int16x8 (failed), qat (not tried)" in annotations(fig)
    front = fig.data[0]
    assert list(front.x) == pytest.approx([64.216, 230.4])  # dynamic, then float32: the non-dominated runs


def test_search_chart_against_latency_and_when_no_candidate_met_the_target():
    fig = ic.search_chart(search_result(met=False), "latency")
    assert fig.layout.xaxis.title.text == "Median latency (ms per inference)"
    assert "★ closest (target not met): int8" in [t.name for t in fig.data]
    with pytest.raises(ValueError, match="choose one of: size, latency"):
        ic.search_chart(search_result(), "gzip")
