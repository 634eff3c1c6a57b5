"""Bad input on the CLI: exit status 2 and one clear line on stderr, never a traceback."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tests.conftest import build_tiny_model


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "optlib", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def run_cli_here(capfd, *args):
    """``optlib.cli.main`` in this process, its output read from the file descriptors (a sandboxed child's
    lines included): the same checks as :func:`run_cli` without starting Python and TensorFlow again."""
    from optlib import cli

    capfd.readouterr()
    try:
        code = cli.main(list(args))
    except SystemExit as stop:
        code = stop.code
    out, err = capfd.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


def assert_one_clear_line(done, *fragments):
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert done.stdout == ""


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_model_path, digits_arrays):
    """A catalogue of bad inputs, made here."""
    from optlib._keras import keras

    k = keras()
    folder = tmp_path_factory.mktemp("bad")
    x_train, y_train, x_test, y_test = digits_arrays
    made = {}
    made["random.keras"] = folder / "random.keras"
    made["random.keras"].write_bytes(np.random.default_rng(0).bytes(5000))
    data = tiny_model_path.read_bytes()
    made["truncated.keras"] = folder / "truncated.keras"
    made["truncated.keras"].write_bytes(data[: len(data) // 2])
    made["notes.txt"] = folder / "notes.txt"
    made["notes.txt"].write_text("not a model")
    h5 = folder / "tiny.h5"
    build_tiny_model().save(h5)
    made["truncated.h5"] = folder / "truncated.h5"
    made["truncated.h5"].write_bytes(h5.read_bytes()[:3000])
    vector = build_tiny_model([k.layers.Dense(8)], input_shape=(10,))
    made["vector.keras"] = folder / "vector.keras"
    vector.save(made["vector.keras"], save_format="keras_v3")
    lam = build_tiny_model([k.layers.Lambda(lambda t: t * 2.0), k.layers.Flatten()])
    made["lambda.keras"] = folder / "lambda.keras"
    lam.save(made["lambda.keras"], save_format="keras_v3")
    made["lambda.h5"] = folder / "lambda.h5"
    lam.save(made["lambda.h5"])
    made["labels.npz"] = folder / "labels.npz"
    np.savez(made["labels.npz"], x_test=x_test, y_test=y_test + 5)
    made["empty.npz"] = folder / "empty.npz"
    np.savez(made["empty.npz"], x_test=np.zeros((0, 8, 8), np.float32), y_test=np.zeros((0,), np.int64))
    made["nan.npz"] = folder / "nan.npz"
    nan = x_test.copy()
    nan[3, 2, 2] = np.nan
    np.savez(made["nan.npz"], x_test=nan, y_test=y_test)
    made["pickled.npz"] = folder / "pickled.npz"
    np.savez(made["pickled.npz"], x_test=np.array([{"a": 1}] * 3, dtype=object), y_test=np.arange(3))
    made["nokeys.npz"] = folder / "nokeys.npz"
    np.savez(made["nokeys.npz"], images=x_test)
    made["slip.zip"] = folder / "slip.zip"
    with zipfile.ZipFile(made["slip.zip"], "w") as bundle:
        bundle.writestr("../../evil/saved_model.pb", b"x")
    return made


CASES = {
    "not a model file type": (["--model", "{notes.txt}", "--data", "digits"], ["is not a model file"]),
    "random bytes as .keras": (["--model", "{random.keras}", "--data", "digits"], ["not a valid .keras file"]),
    "truncated .keras": (["--model", "{truncated.keras}", "--data", "digits"], ["not a valid .keras file"]),
    "truncated .h5": (["--model", "{truncated.h5}", "--data", "digits"], ["not a readable HDF5"]),
    "missing model file": (["--model", "/nowhere/model.keras", "--data", "digits"], ["does not exist"]),
    "unknown zoo name": (["--model", "mobilenet_v9", "--data", "digits"],
                         ["Unknown model 'mobilenet_v9'", "digits_cnn, mobilenet_v1"]),
    "unknown scheme": (["--model", "digits_cnn", "--data", "digits", "--schemes", "int8,int4"],
                       ["Unknown scheme 'int4'", "float32, float16"]),
    "unknown dataset": (["--model", "digits_cnn", "--data", "mnist"], ["Dataset 'mnist' not found"]),
    "bad tfds reference": (["--model", "digits_cnn", "--data", "tfds:"], ["not a tfds reference"]),
    "bad setting value": (["--model", "digits_cnn", "--data", "digits", "--param", "sparsity=lots"],
                          ["'sparsity' needs a float"]),
    "setting without value": (["--model", "digits_cnn", "--data", "digits", "--param", "sparsity"],
                              ["--param needs KEY=VALUE"]),
    "missing argument": (["--model", "digits_cnn"], ["the following arguments are required: --data"]),
    "input does not fit the data": (["--model", "{vector.keras}", "--data", "{digits.npz}"],
                                    ["expects vectors of 10 values", "(8, 8)"]),
    "labels outside the classes": (["--model", "{tiny.keras}", "--data", "{labels.npz}"],
                                   ["labels run from 5 to 14", "10 classes"]),
    "empty npz": (["--model", "{tiny.keras}", "--data", "{empty.npz}"], ["has no samples"]),
    "NaN in npz": (["--model", "{tiny.keras}", "--data", "{nan.npz}"], ["1 NaN or infinite value"]),
    "pickled npz": (["--model", "{tiny.keras}", "--data", "{pickled.npz}"], ["pickled objects, which are refused"]),
    "npz without the arrays": (["--model", "{tiny.keras}", "--data", "{nokeys.npz}"],
                               ["needs arrays x_test and y_test", "images"]),
    "Lambda layer in .keras": (["--model", "{lambda.keras}", "--data", "digits"], ["Lambda", "refused"]),
    "Lambda layer in .h5": (["--model", "{lambda.h5}", "--data", "digits"], ["Lambda", "refused"]),
    "tfds data not prepared, no network": (["--model", "digits_cnn", "--data", "tfds:mnist"],
                                           ["not prepared on this server", "OPTLIB_TFDS_DOWNLOADS=1"]),
    "zip with ../ paths": (["--model", "{slip.zip}", "--data", "digits"], ["points outside the archive"]),
}


def _sweep_args(case, files, tiny_model_path, digits_npz, store):
    args, fragments = CASES[case]
    names = {**{k: str(v) for k, v in files.items()}, "tiny.keras": str(tiny_model_path),
             "digits.npz": str(digits_npz)}
    args = [names[a[1:-1]] if a.startswith("{") else a for a in args]
    if "--schemes" not in args:
        args += ["--schemes", "float32"]
    return ["sweep", *args, "--store", str(store)], fragments


def _nothing_recorded(store):
    if store.exists():  # nothing was recorded for input that could not be used
        from optlib.engine.store import Store

        assert Store(store).rows() == []


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gives_exit_2_and_one_clear_line(case, files, tiny_model_path, digits_npz, tmp_path, capfd,
                                                   monkeypatch):
    store = tmp_path / "results.sqlite"
    args, fragments = _sweep_args(case, files, tiny_model_path, digits_npz, store)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    assert_one_clear_line(run_cli_here(capfd, *args), *fragments)
    _nothing_recorded(store)


@pytest.mark.parametrize("case", ["not a model file type", "labels outside the classes"])
def test_the_cli_process_itself_exits_2_with_one_clear_line(case, files, tiny_model_path, digits_npz, tmp_path):
    """As a person runs it: a Python of its own (TensorFlow's start-up lines included), here for a file refused
    before anything loads and for data refused by the sandboxed child that read the model."""
    store = tmp_path / "results.sqlite"
    args, fragments = _sweep_args(case, files, tiny_model_path, digits_npz, store)
    done = run_cli(*args, env={**os.environ, "TFDS_DATA_DIR": str(tmp_path / "tfds")})
    assert_one_clear_line(done, *fragments)
    _nothing_recorded(store)


def test_trusted_lambda_model_loads_and_runs(files, digits_npz, tmp_path):
    done = run_cli("sweep", "--model", str(files["lambda.keras"]), "--data", str(digits_npz), "--schemes",
                   "float32", "--runs", "3", "--trust", "--json", "--store", str(tmp_path / "r.sqlite"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"][0]["status"] == "ok"


def test_schemes_and_results_listings(tmp_path):
    done = run_cli("schemes", "--json")
    assert done.returncode == 0
    assert [s["name"] for s in json.loads(done.stdout)][:2] == ["float32", "float16"]
    done = run_cli("results", "--store", str(tmp_path / "empty.sqlite"))
    assert done.returncode == 0 and "No stored results." in done.stdout


@pytest.mark.parametrize("param, message", [
    ("clusters=1", "Setting 'clusters' must be from 2 to 256; got 1."),
    ("prune.sparsity=1.5", "Setting 'sparsity' must be from 0 to 0.99; got 1.5."),
    ("epochs=0", "Setting 'epochs' must be from 1 to 1000; got 0."),
])
def test_a_setting_out_of_its_range_is_refused_before_anything_is_written(tmp_path, param, message):
    store = tmp_path / "store" / "r.sqlite"
    done = run_cli("sweep", "--model", "digits_cnn", "--data", "digits", "--schemes", "all", "--param", param,
                   "--store", str(store))
    assert_one_clear_line(done, message)
    assert not store.parent.exists()


def test_a_setting_given_as_a_number_is_checked_too():
    from optlib.engine import schemes
    from optlib.errors import InputError

    with pytest.raises(InputError, match="'clusters' must be from 2 to 256; got 1"):
        schemes.settings_for("cluster", {"clusters": 1})
    with pytest.raises(InputError, match="'sparsity' needs a float, got 'x'"):
        schemes.check_overrides({"sparsity": "x"})
    assert schemes.settings_for("cluster", {"clusters": 2})["clusters"] == 2
