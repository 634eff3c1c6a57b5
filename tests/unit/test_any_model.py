"""Models people actually have: sequences, token ids, regression, binary, several outputs, TF ops.

Each test makes its model, saves it as a user would, and runs the five
post-training schemes in one sweep: every row is ok or failed with its
reason, and every ok row carries fidelity figures against the Keras float
model (and the task's metric where the data has labels).
"""

import json
import zipfile

import numpy as np
import pytest

from usermodels import FAST, SAMPLES, _classes, _npz, _save, _sweep

from optlib.engine import sweep
from optlib.errors import InputError

def test_lstm_over_sequences(tmp_path, keras_, workers):
    k, rng = keras_, np.random.default_rng(0)
    model = k.Sequential([k.layers.Input((20, 8)), k.layers.LSTM(8), k.layers.Dense(4, activation="softmax")])
    data = _npz(tmp_path, "seq", x_test=rng.normal(size=(SAMPLES, 20, 8)).astype("float32"),
                y_test=_classes(rng, SAMPLES, 4))
    rows = _sweep(_save(model, tmp_path, "lstm"), data, tmp_path, workers)
    assert rows["float32"]["task"] == "classification" and rows["float32"]["accuracy"] is not None
    assert rows["float32"]["fidelity"]["top1_agreement"] == 1.0
    assert rows["float32"]["data_recipe"]["scale"] == "as given (no scaling)"


def test_conv1d_over_a_long_signal(tmp_path, keras_, workers):
    k, rng = keras_, np.random.default_rng(1)
    model = k.Sequential([k.layers.Input((400, 1)), k.layers.Conv1D(4, 9, strides=4, activation="relu"),
                          k.layers.GlobalAveragePooling1D(), k.layers.Dense(3, activation="softmax")])
    data = _npz(tmp_path, "signal", x_test=rng.normal(size=(SAMPLES, 400)).astype("float32"),
                y_test=_classes(rng, SAMPLES, 3))
    rows = _sweep(_save(model, tmp_path, "conv1d"), data, tmp_path, workers)
    assert rows["float32"]["data_recipe"]["reshape"] == "(400,) -> (400, 1)"


def test_embedding_gru_keeps_token_ids_integer(tmp_path, keras_, workers):
    k, rng = keras_, np.random.default_rng(2)
    model = k.Sequential([k.layers.Input((12,), dtype="int32"), k.layers.Embedding(50, 8), k.layers.GRU(8),
                          k.layers.Dense(4, activation="softmax")])
    tokens = rng.integers(0, 50, (SAMPLES, 12)).astype("int32")
    data = _npz(tmp_path, "tokens", x_test=tokens, y_test=_classes(rng, SAMPLES, 4),
                x_train=tokens, y_train=_classes(rng, SAMPLES, 4))
    rows = _sweep(_save(model, tmp_path, "gru"), data, tmp_path, workers)
    recipe = rows["float32"]["data_recipe"]
    assert recipe["dtype"] == "int32" and "never scaled" in recipe["values"]
    # The ids reach the model as they are: float32 on LiteRT agrees with Keras (no GATHER out of bounds).
    assert rows["float32"]["fidelity"]["top1_agreement"] == 1.0
    if rows["int8"]["status"] == "failed":  # a converter limit may stop it, but never a float-for-int mix-up
        assert "FLOAT32 but expected type INT32" not in rows["int8"]["error"]


def test_regression_mlp_reports_mae(tmp_path, keras_, workers):
    k, rng = keras_, np.random.default_rng(3)
    model = k.Sequential([k.layers.Input((10,)), k.layers.Dense(16, activation="relu"), k.layers.Dense(1)])
    x = rng.normal(size=(SAMPLES, 10)).astype("float32") * 5  # features beyond 1 are not rescaled
    data = _npz(tmp_path, "reg", x_test=x, y_test=rng.normal(size=SAMPLES) * 10)
    rows = _sweep(_save(model, tmp_path, "mlp"), data, tmp_path, workers)
    base = rows["float32"]
    assert base["task"] == "regression" and base["metric_name"] == "MAE" and base["higher_is_better"] is False
    assert base["accuracy"] is None and base["metric_value"] == base["mae"] > 0 and base["rmse"] >= base["mae"]
    expected = np.mean(np.abs(model.predict(x, verbose=0)[:, 0] - np.load(data)["y_test"]))
    assert base["mae"] == pytest.approx(expected, rel=1e-4)


def test_sigmoid_binary_classifier(tmp_path, keras_, workers):
    k, rng = keras_, np.random.default_rng(4)
    model = k.Sequential([k.layers.Input((6,)), k.layers.Dense(8, activation="relu"),
                          k.layers.Dense(1, activation="sigmoid")])
    data = _npz(tmp_path, "bin", x_test=rng.normal(size=(SAMPLES, 6)).astype("float32"),
                y_test=np.arange(SAMPLES) % 2)
    rows = _sweep(_save(model, tmp_path, "binary"), data, tmp_path, workers)
    base = rows["float32"]
    assert base["task"] == "binary" and base["metric_name"] == "Accuracy at 0.5"
    assert 0.0 <= base["accuracy"] <= 1.0 and 0.0 <= base["auc"] <= 1.0
    assert base["fidelity"]["top1_agreement"] == 1.0


def test_two_outputs_each_with_its_metric_and_a_selectable_primary(tmp_path, keras_, workers):
    k, rng = keras_, np.random.default_rng(5)
    inputs = k.Input((6,), name="features")
    hidden = k.layers.Dense(8, activation="relu")(inputs)
    model = k.Model(inputs, [k.layers.Dense(3, activation="softmax", name="kind")(hidden),
                             k.layers.Dense(1, name="amount")(hidden)])
    data = _npz(tmp_path, "two", x_test=rng.normal(size=(SAMPLES, 6)).astype("float32"),
                **{"y_test/kind": _classes(rng, SAMPLES, 3), "y_test/amount": rng.normal(size=SAMPLES)})
    path = _save(model, tmp_path, "two")
    rows = _sweep(path, data, tmp_path, workers)
    base = rows["float32"]
    assert base["primary_output"] == "kind" and base["metric_name"] == "Top-1 accuracy"
    assert {o["name"]: o["task"] for o in base["outputs"]} == {"kind": "classification", "amount": "regression"}
    assert set(base["outputs"][1]["metrics"]) == {"mae", "rmse"}
    chosen = _sweep(path, data, tmp_path, workers, "float32", task="primary=amount")["float32"]
    assert chosen["primary_output"] == "amount" and chosen["metric_name"] == "MAE" and chosen["accuracy"] is None


def test_functional_model_with_tf_ops_loads_in_safe_mode(tmp_path, keras_, workers):
    from optlib._keras import tf

    k, rng = keras_, np.random.default_rng(6)
    inputs = k.Input((8,))
    model = k.Model(inputs, k.layers.Dense(3, activation="softmax")(tf().nn.relu(inputs * 2.0 + 1.0)))
    data = _npz(tmp_path, "ops", x_test=rng.normal(size=(SAMPLES, 8)).astype("float32"),
                y_test=_classes(rng, SAMPLES, 3))
    rows = _sweep(_save(model, tmp_path, "ops"), data, tmp_path, workers)
    assert rows["int8"]["status"] == "ok"


def test_x_test_only_gives_fidelity_and_no_accuracy(tmp_path, keras_, workers):
    k, rng = keras_, np.random.default_rng(7)
    model = k.Sequential([k.layers.Input((5,)), k.layers.Dense(4, activation="softmax")])
    data = _npz(tmp_path, "unlabelled", x_test=rng.normal(size=(SAMPLES, 5)).astype("float32"))
    rows = _sweep(_save(model, tmp_path, "unlabelled"), data, tmp_path, workers, "float32,int8")
    for row in rows.values():
        assert row["accuracy"] is None and row["metric_value"] is None and row["labels"] is False
        assert "fidelity" in row["accuracy_note"]


def _write_file_model(tmp_path, keras_):
    """A .keras file whose TFOpLambda names tf.io.write_file (written by hand: Keras cannot trace it)."""
    from optlib._keras import tf

    inputs = keras_.Input((4,))
    model = keras_.Model(inputs, keras_.layers.Dense(2, activation="softmax")(tf().nn.relu(inputs)))
    good = _save(model, tmp_path, "good")
    with zipfile.ZipFile(good) as bundle:
        members = {name: bundle.read(name) for name in bundle.namelist()}
    config = json.loads(members["config.json"])
    text = json.dumps(config).replace('"nn.relu"', '"io.write_file"')
    assert "io.write_file" in text
    members["config.json"] = text.encode()
    bad = tmp_path / "writes.keras"
    with zipfile.ZipFile(bad, "w") as bundle:
        for name, content in members.items():
            bundle.writestr(name, content)
    return bad


def test_a_tf_op_that_writes_files_is_refused_naming_it(tmp_path, keras_, capsys):
    from optlib import cli

    bad = _write_file_model(tmp_path, keras_)
    data = _npz(tmp_path, "four", x_test=np.zeros((4, 4), np.float32), y_test=np.zeros(4, np.int64))
    before = sorted(p.name for p in tmp_path.iterdir())
    status = cli.main(["sweep", "--model", str(bad), "--data", str(data), "--schemes", "float32",
                       "--store", str(tmp_path / "out" / "store.sqlite")])
    error = capsys.readouterr().err
    assert status == 2 and "tf.io.write_file" in error and "files" in error and "Traceback" not in error
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no store, no file from the op


def test_the_allowlist():
    from optlib.inputs import tfops

    for name in ("__operators__.add", "math.multiply", "nn.relu", "reshape", "concat", "image.resize"):
        assert tfops.allowed(name), name
    for name in ("io.write_file", "io.read_file", "py_function", "numpy_function", "raw_ops.WriteFile"):
        assert not tfops.allowed(name), name
    assert "Python" in tfops.why_refused("py_function") and "files" in tfops.why_refused("io.read_file")


def test_several_inputs_are_named_in_the_npz_and_a_mismatch_names_the_expected(tmp_path, keras_):
    from optlib.inputs import data_refs, preparation

    k, rng = keras_, np.random.default_rng(8)
    a, b = k.Input((3,), name="left"), k.Input((2,), name="right")
    model = k.Model([a, b], k.layers.Dense(2, activation="softmax")(k.layers.Concatenate()([a, b])))
    good = _npz(tmp_path, "named", **{"x_test/left": rng.random((6, 3)), "x_test_right": rng.random((6, 2)),
                                      "y_test": np.arange(6) % 2})
    dataset = preparation.load(data_refs.resolve(str(good)), model)
    assert set(dataset.x_test) == {"left", "right"} and set(dataset.recipe["inputs"]) == {"left", "right"}
    wrong = _npz(tmp_path, "wrong", **{"x_test/a": rng.random((6, 3)), "x_test/b": rng.random((6, 2)),
                                       "y_test": np.arange(6) % 2})
    with pytest.raises(InputError, match="left, right"):
        preparation.load(data_refs.resolve(str(wrong)), model)
    plain = _npz(tmp_path, "plain", x_test=rng.random((6, 3)), y_test=np.arange(6) % 2)
    with pytest.raises(InputError, match="x_test/left"):
        preparation.load(data_refs.resolve(str(plain)), model)


def test_the_demos_sequence_table2_and_regression_mae(tmp_path, workers):
    """The built-in demos on real data: the LSTM's Table 2 (float32, int8, int16 activations) and the MLP's MAE."""
    from optlib.analysis import report, tables
    from optlib.views import charts

    lstm = sweep.run("digits_lstm", "digits", "float32,int8,int16x8", FAST, tmp_path / "store.sqlite",
                     executor=workers)["results"]
    assert [r["status"] for r in lstm] == ["ok", "ok", "ok"], [r["error"] for r in lstm]
    assert lstm[0]["accuracy"] > 0.8 and lstm[0]["fidelity"]["top1_agreement"] > 0.99
    table = tables.runs_table2(report.frame(lstm))
    assert table["Accuracy metric type"].tolist() == ["Top-1 accuracy"]
    assert table[list(tables.TABLE2_ACCURACY.values())].notna().all(axis=None)
    mlp = sweep.run("diabetes_mlp", "diabetes", "float32,int8", FAST, tmp_path / "store.sqlite",
                    executor=workers)["results"]
    base = {r["scheme"]: r for r in mlp}["float32"]
    assert base["metric_name"] == "MAE" and base["higher_is_better"] is False and 0 < base["mae"] < 80
    frame = report.frame(mlp)
    assert tables.runs_table2(frame)["Accuracy metric type"].tolist() == ["Mean absolute error (lower is better)"]
    figure = charts.scatter(frame, "size_mb", charts.quality_column(frame))
    assert figure.layout.yaxis.title.text == "MAE (lower is better)"
    local = tables.table2_comparison(frame).iloc[-1]
    assert local["Accuracy metric type"] == "Mean absolute error" and "lower is better" in local["Note"]
