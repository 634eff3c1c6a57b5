"""The two backends side by side: pairs of the same quantization, with build times from the runs."""

import math

from optlib.analysis import backends, report
from tests.unit.rows import result


def test_side_by_side_pairs_each_quantization_and_says_what_is_missing():
    df = report.frame([
        result("float32", 1, build_s=9.0),
        result("int8", 2, size=300, accuracy=0.9, build_s=8.0),
        result("lq_int8", 3, size=310, accuracy=0.89, build_s=2.0, calibrate_s=1.5, quantize_s=0.1,
               float32_convert_s=9.0),
        result("dynamic", 4, build_s=6.0),
        result("lq_int8", 5, model="other", build_s=1.0, calibrate_s=0.5, quantize_s=0.1),
    ])
    table = backends.side_by_side(df)
    pair = table[table["model"].eq("m") & table["quantization"].eq("int8")].set_index("backend")
    assert list(pair.index) == ["TFLiteConverter", "LiteRT Quantizer"]
    # From the Keras model: the converter's 8 s against the shared float32 conversion (9 s) + 1.6 s.
    assert math.isclose(pair.loc["LiteRT Quantizer", "from_keras_s"], 10.6)
    assert pair.loc["TFLiteConverter", "from_keras_s"] == 8.0
    assert math.isclose(pair.loc["LiteRT Quantizer", "build_ratio"], 8.0 / 10.6)
    assert math.isnan(pair.loc["TFLiteConverter", "build_ratio"])
    assert math.isclose(pair.loc["LiteRT Quantizer", "quantize_s"], 1.6)
    assert pair.loc["LiteRT Quantizer", "float32_convert_s"] == 9.0
    assert pair.loc["LiteRT Quantizer", "size_mb"] == 310 / 1e6
    lonely = table[table["model"].eq("other")]
    assert list(lonely["scheme"]) == ["lq_int8"] and math.isnan(lonely.iloc[0]["build_ratio"])
    assert backends.missing_counterparts(df) == ["int8", "lq_dynamic_int8"]


def test_the_frame_names_each_runs_backend():
    df = report.frame([result("float32", 1), result("lq_weight_int4", 2), result("qat", 3)])
    assert list(df.sort_values("id")["backend"]) == ["converter", "litert-quantizer", "converter"]
    assert backends.side_by_side(df).empty and backends.counterpart("int8") == "lq_int8"
