"""optlib.analysis.report: the results frame, float32 comparisons, the Pareto front and exports.

Hand-made rows keep these tests to milliseconds.
"""

import io
import json
import math
import subprocess
import sys

import pandas as pd
import pytest

from optlib.analysis import report
from optlib.engine import schemes
from rows import result


def by_scheme(df, scheme, model="m"):
    rows = df[(df["scheme"] == scheme) & (df["model"] == model)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_frame_has_the_documented_columns_one_row_per_run_in_registry_order():
    rows = [result("qat", 3), result("int8", 2), result("float32", 1), result("dynamic", 4)]
    df = report.frame(rows)
    assert tuple(df.columns) == report.COLUMNS
    assert list(df["scheme"]) == ["float32", "dynamic", "int8", "qat"]  # registry order, not input order
    int8 = by_scheme(df, "int8")
    assert int8["family"] == "post-training" and int8["title"] == schemes.get("int8").title
    assert by_scheme(df, "qat")["family"] == "training-time"
    assert int8["size_mb"] == pytest.approx(0.001) and int8["gzip_mb"] == pytest.approx(0.0009)
    assert int8["latency_ms"] == 2.0 and int8["latency_p90_ms"] == 2.5 and int8["latency_std_ms"] == 0.1
    assert int8["settings"] == {"threads": 1, "runs": 50, "warmup": 5}
    assert int8["recipe"] == {"converter": {}}


def test_deltas_are_computed_against_the_float32_row_of_the_same_model_and_dataset():
    rows = [result("float32", 1, accuracy=0.90, size=1000, gzip=900, median=2.0),
            result("int8", 2, accuracy=0.88, size=250, gzip=200, median=0.5)]
    df = report.frame(rows)
    int8, base = by_scheme(df, "int8"), by_scheme(df, "float32")
    assert int8["accuracy_delta"] == pytest.approx(-2.0)  # points: 88 - 90
    assert int8["size_ratio"] == pytest.approx(4.0)  # 1000 / 250: four times smaller
    assert int8["gzip_ratio"] == pytest.approx(4.5)
    assert int8["speedup"] == pytest.approx(4.0)
    assert (base["accuracy_delta"], base["size_ratio"], base["speedup"]) == (0.0, 1.0, 1.0)


def test_no_baseline_means_nan_never_an_invented_number():
    rows = [result("float32", 1, model="a"), result("int8", 2, model="b"),
            result("int8", 3, model="a", dataset="other")]
    df = report.frame(rows)
    for model, dataset in (("b", "d"), ("a", "other")):
        row = df[(df["model"] == model) & (df["dataset"] == dataset)].iloc[0]
        for column in ("accuracy_delta", "size_ratio", "gzip_ratio", "speedup"):
            assert math.isnan(row[column]), (model, dataset, column)


def test_a_failed_float32_is_no_baseline_and_failed_rows_get_no_deltas():
    rows = [result("float32", 1, status="failed"), result("int8", 2), result("int16x8", 3, status="failed")]
    df = report.frame(rows)
    assert math.isnan(by_scheme(df, "int8")["size_ratio"])
    failed = by_scheme(df, "int16x8")
    assert failed["status"] == "failed" and failed["error"] == "RuntimeError: boom"
    assert math.isnan(failed["accuracy"]) and math.isnan(failed["size_mb"])


def test_the_newest_ok_float32_is_the_baseline():
    rows = [result("float32", 1, size=2000), result("float32", 5, size=1000), result("int8", 3, size=250)]
    df = report.frame(rows)
    assert by_scheme(df, "int8")["size_ratio"] == pytest.approx(4.0)


def test_speedup_only_compares_the_same_thread_count():
    rows = [result("float32", 1, threads=1, median=2.0), result("int8", 2, threads=2, median=0.5)]
    df = report.frame(rows)
    int8 = by_scheme(df, "int8")
    assert math.isnan(int8["speedup"])
    assert int8["size_ratio"] == pytest.approx(1.0)  # size does not depend on threads


def test_untrained_rows_have_nan_accuracy_but_keep_size_comparisons():
    rows = [result("float32", 1, accuracy=None, size=1000), result("int8", 2, accuracy=None, size=250)]
    df = report.frame(rows)
    int8 = by_scheme(df, "int8")
    assert math.isnan(int8["accuracy"]) and math.isnan(int8["accuracy_delta"])
    assert int8["size_ratio"] == pytest.approx(4.0)
    assert not int8["trained"]


def test_stored_rows_are_flattened_and_fingerprints_keep_different_files_apart():
    def stored(scheme, id, fingerprint, size):
        flat = result(scheme, id, size=size)
        metrics = {k: flat.pop(k) for k in list(flat) if k not in ("id", "scheme", "status", "error", "model",
                                                                   "dataset", "settings", "tflite_path")}
        return {**flat, "metrics": metrics, "model_fingerprint": fingerprint, "dataset_fingerprint": "df"}

    df = report.frame([stored("float32", 1, "fp1abcdef", 1000), stored("int8", 2, "fp1abcdef", 250),
                       stored("int8", 3, "fp2abcdef", 250)])
    assert df[df["id"] == 2]["size_ratio"].iloc[0] == pytest.approx(4.0)
    assert math.isnan(df[df["id"] == 3]["size_ratio"].iloc[0])  # same name, another model file
    assert df[df["id"] == 2]["latency_ms"].iloc[0] == 2.0
    # ... and in tables, charts and filters the two files are two models, named with their fingerprint
    names = dict(zip(df["id"], df["model"]))
    assert names[1] == names[2] != names[3] and names[1].startswith("m · ") and names[3].startswith("m · ")
    one_file = report.frame([stored("float32", 1, "fp1abcdef", 1000), stored("int8", 2, "fp1abcdef", 250)])
    assert set(one_file["model"]) == {"m"}
    # A zoo model keeps its name (its fingerprint says which weights; Table 1 finds rows by zoo name).
    zoo = report.frame([{**stored("float32", 1, "mobilenet_v2-untrained-seed0", 1000), "model": "mobilenet_v2"},
                        {**stored("float32", 2, "mobilenet_v2-imagenet-abc", 1000), "model": "mobilenet_v2"}])
    assert set(zoo["model"]) == {"mobilenet_v2"}


def test_empty_input_gives_an_empty_frame_with_all_columns():
    df = report.frame([])
    assert df.empty and tuple(df.columns) == report.COLUMNS


def test_latest_keeps_the_newest_ok_run_per_scheme():
    rows = [result("int8", 1), result("int8", 4), result("int8", 7, status="failed"), result("float32", 2)]
    kept = report.latest(report.frame(rows))
    assert sorted(kept["id"]) == [2, 4]


def test_pareto_front_on_a_hand_made_frame():
    df = pd.DataFrame({
        "name": ["a", "b", "c", "d", "e", "f", "g"],
        "size_mb": [1.0, 2.0, 3.0, 4.0, 2.0, float("nan"), 5.0],
        "accuracy": [0.5, 0.8, 0.7, 0.9, 0.8, 0.99, 0.9],
    })
    front = report.pareto(df, "size_mb")
    # c is beaten by b (smaller and more accurate); g by d (same accuracy, smaller);
    # f has no size; b and e tie and both stay.
    assert list(front["name"]) == ["a", "b", "e", "d"]
    assert list(report.pareto(df, "size_mb", y="accuracy").index) == list(front.index)


def test_pareto_unknown_column_names_the_columns():
    with pytest.raises(KeyError, match="size_mb"):
        report.pareto(pd.DataFrame({"size_mb": [1.0], "accuracy": [1.0]}), "latency")


def test_csv_export_drops_bulky_columns_and_reads_back():
    df = report.frame([result("float32", 1), result("int8", 2, size=250)])
    df["kernels"] = [[{"big": 1}], [{"big": 2}]]  # a frame with per-kernel lists
    text = report.to_csv(df)
    back = pd.read_csv(io.StringIO(text))
    assert "kernels" not in back.columns
    assert list(back["scheme"]) == ["float32", "int8"]
    assert list(back["size_bytes"]) == [1000, 250]  # whole numbers, not 1000.0
    assert json.loads(back["settings"][0]) == {"runs": 50, "threads": 1, "warmup": 5}
    assert back["size_ratio"][1] == pytest.approx(4.0)


def test_json_export_uses_null_for_missing_values():
    df = report.frame([result("int8", 2, model="b")])
    records = json.loads(report.to_json(df))
    assert len(records) == 1
    record = records[0]
    assert "kernels" not in record
    assert record["size_ratio"] is None and record["accuracy"] == 0.9
    assert record["size_bytes"] == 1000 and isinstance(record["size_bytes"], int)
    assert record["settings"] == {"threads": 1, "runs": 50, "warmup": 5}


def test_importing_report_charts_codegen_does_not_import_tensorflow():
    code = ("import sys, optlib.analysis.report, optlib.views.charts, optlib.views.codegen; "
            "bad = [m for m in ('tensorflow', 'streamlit', 'tf_keras') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
