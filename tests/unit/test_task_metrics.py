"""Tasks and their metrics, and fidelity figures: pure NumPy, no TensorFlow."""

import numpy as np
import pytest

from optlib.analysis import report, tables
from optlib.engine import metrics
from optlib.errors import InputError
from optlib.inputs import tasks
from optlib.views import charts


def test_detect_tasks_from_shape_activation_and_labels():
    assert tasks.detect(tasks.Port("p", (10,), activation="softmax")) == "classification"
    assert tasks.detect(tasks.Port("p", (1,), activation="sigmoid")) == "binary"
    assert tasks.detect(tasks.Port("p", (1,), activation="linear")) == "regression"
    assert tasks.detect(tasks.Port("p", (3,), activation="linear"), np.array([0, 2, 1])) == "classification"
    assert tasks.detect(tasks.Port("p", (3,), activation="linear"), np.random.rand(4, 3)) == "regression"
    assert tasks.detect(tasks.Port("p", (20, 4))) == "regression"


def test_parse_a_task_setting_names_what_it_accepts():
    outputs = [tasks.Port("kind", (3,)), tasks.Port("amount", (1,))]
    assert tasks.parse("amount=regression,primary=amount", outputs) == ({"amount": "regression"}, "amount")
    assert tasks.parse("auto", outputs) == ({}, "kind")
    with pytest.raises(InputError, match="kind, amount"):
        tasks.parse("primary=nope", outputs)
    with pytest.raises(InputError, match="classification, binary, regression"):
        tasks.parse("kind=detection", outputs)
    with pytest.raises(InputError, match="NAME=TASK"):
        tasks.parse("regression", outputs)


def test_metrics_of_each_task():
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert metrics.classification(scores, np.array([1, 0, 0]))["top1"] == pytest.approx(2 / 3)
    assert metrics.classification(scores, np.eye(2)[[1, 0, 0]])["top1"] == pytest.approx(2 / 3)  # one-hot
    found = metrics.binary(np.array([0.9, 0.2, 0.6, 0.4]), np.array([1, 0, 0, 1]))
    assert found["accuracy"] == 0.5 and found["auc"] == pytest.approx(0.75)
    assert metrics.auc(np.array([0.1, 0.2]), np.array([1, 1])) is None
    found = metrics.regression(np.array([1.0, 2.0, 4.0]), np.array([1.0, 3.0, 2.0]))
    assert found["mae"] == pytest.approx(1.0) and found["rmse"] == pytest.approx(np.sqrt(5 / 3))


def test_fidelity_figures():
    reference = np.array([[1.0, 2.0, 3.0], [0.5, 0.1, 0.2]])
    same = metrics.fidelity("classification", reference, reference)
    assert same == {"snr_db": metrics.SNR_CAP_DB, "cosine": pytest.approx(1.0), "max_abs_error": 0.0,
                    "top1_agreement": 1.0}
    noisy = metrics.fidelity("classification", reference + [[0.0, 0.0, 0.1], [0.0, 0.5, 0.0]], reference)
    assert noisy["max_abs_error"] == pytest.approx(0.5) and noisy["top1_agreement"] == 0.5
    signal, noise = np.sum(reference ** 2), 0.1 ** 2 + 0.5 ** 2
    assert noisy["snr_db"] == pytest.approx(10 * np.log10(signal / noise), abs=1e-3)
    column = metrics.fidelity("regression", np.array([1.0, -2.0]), np.array([1.0, 2.0]))
    assert column["cosine"] == pytest.approx(-3 / 5) and "top1_agreement" not in column


def _row(scheme, mae, size, id_):
    return {"id": id_, "scheme": scheme, "status": "ok", "model": "m", "dataset": "d", "accuracy": None,
            "size_bytes": size, "gzip_bytes": size, "latency_ms": {"median": 1.0}, "threads": 1,
            "task": "regression", "metric_name": "MAE", "metric_type": "Mean absolute error",
            "metric_value": mae, "mae": mae, "higher_is_better": False, "fidelity_snr_db": 40.0}


def test_a_regression_pareto_front_prefers_lower_mae_and_the_axis_says_so():
    frame = report.frame([_row("float32", 10.0, 4000, 1), _row("int8", 12.0, 1000, 2),
                          _row("float16", 11.0, 3000, 3), _row("dynamic", 13.0, 1500, 4)])
    front = report.pareto(frame, "size_mb", "metric_value", maximize=False)
    assert list(front["scheme"]) == ["int8", "float16", "float32"]  # dynamic: larger and worse than int8
    figure = charts.scatter(frame, "size_mb", charts.quality_column(frame))
    assert figure.layout.yaxis.title.text == "MAE (lower is better)"
    fidelity = charts.scatter(frame, "latency_ms", "fidelity_snr_db")
    assert "SNR" in fidelity.layout.yaxis.title.text


def test_table1_shows_a_regression_models_mae_and_its_change_not_an_empty_top1():
    frame = report.frame([_row("float32", 10.0, 4000, 1), _row("int8", 12.5, 1000, 2)])
    table = tables.runs_table1(frame).set_index("Scheme")
    assert "Top-1 accuracy (%)" not in table
    assert table.loc["int8", "Metric"] == "MAE (lower is better)"
    assert table.loc["int8", "Value"] == 12.5 and table.loc["int8", "Δ vs float32"] == pytest.approx(2.5)
    formats = tables.RUNS_TABLE1_FORMATS  # how the page shows them
    shown = {column: formats[column].format(table.loc["int8", column]) for column in ("Value", "Δ vs float32")}
    assert shown == {"Value": "12.5", "Δ vs float32": "+2.5"}


def test_table1_with_a_classifier_and_a_regression_model_names_each_rows_metric():
    classifier = [{**_row(scheme, None, 4000 // n, 10 + n), "model": "cnn", "task": "classification",
                   "metric_name": "Top-1 accuracy", "metric_value": top1, "accuracy": top1, "higher_is_better": True}
                  for n, (scheme, top1) in enumerate((("float32", 0.975), ("int8", 0.96)), start=1)]
    table = tables.runs_table1(report.frame(classifier + [_row("float32", 10.0, 4000, 1)]))
    by_model = table.set_index(["Model", "Scheme"])
    assert by_model.loc[("cnn", "int8"), "Metric"] == "Top-1 accuracy (%)"
    assert by_model.loc[("cnn", "int8"), "Value"] == pytest.approx(96.0)
    assert by_model.loc[("cnn", "int8"), "Δ vs float32"] == pytest.approx(-1.5)
    assert by_model.loc[("m", "float32"), "Metric"] == "MAE (lower is better)"
    only_classifier = tables.runs_table1(report.frame(classifier))
    assert tuple(only_classifier.columns) == tables.RUNS_TABLE1_COLUMNS  # the guide's own columns


def test_raw_tables_show_a_binary_models_accuracy_in_percent_and_its_change_in_points():
    from optlib.analysis import quality

    binary = [{**_row(scheme, acc, 4000 // n, n), "model": "b", "task": "binary", "metric_name": "Accuracy at 0.5",
               "metric_value": acc, "accuracy": None, "higher_is_better": True}
              for n, (scheme, acc) in enumerate((("float32", 0.88), ("int8", 0.865)), start=1)]
    shown = quality.in_table_units(report.frame(binary + [_row("int8", 12.5, 1000, 3)])).set_index(["model", "scheme"])
    assert shown.loc[("b", "int8"), "metric_name"] == "Accuracy at 0.5 (%)"
    assert shown.loc[("b", "int8"), "metric_value"] == pytest.approx(86.5)  # not 0.865 beside 88.0% elsewhere
    assert shown.loc[("b", "int8"), "metric_delta"] == pytest.approx(-1.5)  # points
    assert shown.loc[("m", "int8"), "metric_name"] == "MAE (lower is better)"
    assert shown.loc[("m", "int8"), "metric_value"] == 12.5  # its own unit, untouched


def test_the_search_treats_a_growing_mae_as_a_loss():
    from optlib.analysis import quality

    base = {"metric_name": "MAE", "metric_value": 10.0, "higher_is_better": False}
    assert quality.loss({**base, "metric_value": 10.5}, base) == pytest.approx(0.05)
    assert quality.loss({**base, "metric_value": 9.0}, base) == pytest.approx(-0.1)
    assert quality.limit(base, 0.01) == pytest.approx(10.1)
    top1 = {"accuracy": 0.9}  # a row from before tasks were recorded: a classifier
    assert quality.loss({"accuracy": 0.891}, top1) == pytest.approx(0.01) and quality.limit(top1, 0.1) == 0.81
    assert quality.text({**base, "metric_value": 10.5}) == "MAE 10.5 (lower is better)"
    assert quality.text(top1) == "top-1 90.0%"
