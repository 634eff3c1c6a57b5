"""The Export bundle: one zip with the .tflite, the source model, the code, the recipes and the measured row."""

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile

import pytest

from optlib.engine import sweep
from optlib.engine.store import Store
from optlib.views import bundle
from tests.conftest import save_tiny_digits


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A tiny model and a small .npz, swept with dynamic range quantization into a store of its own."""
    folder = tmp_path_factory.mktemp("bundle")
    model_path, samples = save_tiny_digits(folder)
    store = Store(folder / "store" / "results.sqlite")
    result = sweep.run(str(model_path), str(samples), "dynamic", {"runs": 3, "warmup": 1}, store)
    row = result["results"][0]
    assert row["status"] == "ok", row["error"]
    return folder, model_path, store.get(row["id"])


def members(content):
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_bundle_holds_the_model_the_code_the_recipes_and_the_measured_row(made):
    folder, model_path, stored = made
    tflite = open(stored["tflite_path"], "rb").read()
    files = members(bundle.make(stored, tflite, model_path))

    assert set(files) == {"README.md", "tiny-dynamic.tflite", "model/tiny.keras", "reproduce.py", "measure.py",
                          "data_recipe.json", "recipe.json", "result.json"}
    assert files["tiny-dynamic.tflite"] == tflite
    assert files["model/tiny.keras"] == model_path.read_bytes()
    measured = json.loads(files["result.json"])
    assert measured["size_bytes"] == len(tflite) and measured["scheme"] == "dynamic"
    assert measured["settings"]["runs"] == 3
    assert json.loads(files["recipe.json"])["converter"] == stored["metrics"]["recipe"]["converter"]
    assert json.loads(files["data_recipe.json"]) == stored["metrics"]["data_recipe"]
    readme = files["README.md"].decode()
    assert "`model/tiny.keras`: the source Keras model" in readme
    assert f"({len(tflite):,} bytes)" in readme
    assert "MODEL_PATH = 'model/tiny.keras'" in files["reproduce.py"].decode()
    assert "pip install tensorflow==2.21.0 tf-keras==2.21.0" in readme and "litert-quantizer" not in readme


def test_a_litert_quantizer_run_says_to_install_litert_quantizer(made):
    folder, model_path, stored = made
    lq = {**stored, "scheme": "lq_weight_int4"}
    readme = members(bundle.make(lq, b"TFL3", model_path))["README.md"].decode()
    assert "litert-quantizer==0.11.0" in readme


def test_the_bundled_code_remakes_the_same_file_from_the_bundled_model(made, tmp_path):
    folder, model_path, stored = made
    tflite = open(stored["tflite_path"], "rb").read()
    with zipfile.ZipFile(io.BytesIO(bundle.make(stored, tflite, model_path))) as archive:
        archive.extractall(tmp_path)
    done = subprocess.run([sys.executable, "reproduce.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    # Dynamic range quantization of the same model: the very same bytes, written beside the measured file.
    assert (tmp_path / "reproduced-tiny-dynamic.tflite").read_bytes() == tflite
    assert (tmp_path / "tiny-dynamic.tflite").read_bytes() == tflite


def test_without_the_source_model_the_readme_says_why(made):
    folder, model_path, stored = made
    files = members(bundle.make(stored, b"tflite", None, "tiny.keras is not the current model"))
    assert not any(name.startswith("model/") for name in files)
    readme = files["README.md"].decode()
    assert "No source model: tiny.keras is not the current model." in readme
    assert "set `MODEL_PATH`" in readme


def test_a_run_without_a_recipe_gets_no_script_and_says_why(made):
    folder, model_path, stored = made
    unfinished = {**stored, "scheme": "qat", "status": "failed", "metrics": {}}
    files = members(bundle.make(unfinished, b"", model_path))
    assert "reproduce.py" not in files
    assert "No reproduction script: Run #1 (qat, status failed)" in files["README.md"].decode()
    assert "no recorded recipe" in files["README.md"].decode()


def test_source_model_is_the_file_only_while_it_is_unchanged(made, tmp_path):
    folder, model_path, stored = made
    assert bundle.source_model(str(model_path), stored["model_fingerprint"], tmp_path) == (model_path, "")
    copy = tmp_path / "other.keras"
    copy.write_bytes(model_path.read_bytes() + b"changed")
    path, why = bundle.source_model(str(copy), stored["model_fingerprint"], tmp_path)
    assert path is None and "not the one this run used" in why
    path, why = bundle.source_model(str(tmp_path / "gone.keras"), stored["model_fingerprint"], tmp_path)
    assert path is None and "gone.keras" in why


def test_every_file_extracts_readable_by_everyone_whatever_its_source_mode(made, tmp_path):
    folder, model_path, stored = made
    private = tmp_path / "private" / "tiny.keras"  # an upload is kept owner-only (0600)
    private.parent.mkdir()
    private.write_bytes(model_path.read_bytes())
    private.chmod(0o600)
    content = bundle.make(stored, open(stored["tflite_path"], "rb").read(), private)
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        modes = {info.filename: stat.S_IMODE(info.external_attr >> 16) for info in archive.infolist()}
    assert modes and set(modes.values()) == {0o644}, modes
    if shutil.which("unzip"):  # what a person's unzip makes of it
        (tmp_path / "bundle.zip").write_bytes(content)
        subprocess.run(["unzip", "-q", "bundle.zip", "-d", "out"], cwd=tmp_path, check=True)
        assert stat.S_IMODE(os.stat(tmp_path / "out" / "model" / "tiny.keras").st_mode) == 0o644


def measured(folder, *args):
    done = subprocess.run([sys.executable, "measure.py", *args], cwd=folder, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_bundled_measure_script_times_the_tflite_and_checks_its_top1_on_the_recipes_npz(made, tmp_path):
    folder, model_path, stored = made
    tflite = open(stored["tflite_path"], "rb").read()
    content = bundle.make(stored, tflite, model_path)
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        archive.extractall(tmp_path)
    readme = (tmp_path / "README.md").read_text()
    assert "python measure.py" in readme and "pip install numpy ai-edge-litert" in readme
    assert "`samples.npz` once you put that file beside it" in readme
    without = measured(tmp_path)  # the data is not in the bundle
    assert "latency: median" in without and "after 1 warm-up" in without and "over 3 invokes" in without
    assert "accuracy: not checked (put samples.npz beside this script)" in without
    shutil.copy(folder / "samples.npz", tmp_path / "samples.npz")
    out = measured(tmp_path)
    accuracy = json.loads(stored["metrics"])["accuracy"] if isinstance(stored["metrics"], str) else \
        stored["metrics"]["accuracy"]
    assert f"top-1: {accuracy:.2%} on 120 test samples" in out, out  # the very figure optlib measured


def test_the_measure_script_reads_scikit_learns_digits_itself(made, tmp_path):
    folder, model_path, stored = made
    store = Store(folder / "store" / "results.sqlite")
    result = sweep.run(str(model_path), "digits", "int8", {"runs": 3, "warmup": 1}, store)
    row = result["results"][0]
    assert row["status"] == "ok", row["error"]
    digits_run = store.get(row["id"])
    with zipfile.ZipFile(io.BytesIO(bundle.make(digits_run, open(digits_run["tflite_path"], "rb").read(),
                                                model_path))) as archive:
        archive.extractall(tmp_path)
    out = measured(tmp_path)
    accuracy = row["accuracy"] if row.get("accuracy") is not None else row["metrics"]["accuracy"]
    assert f"top-1: {accuracy:.2%} on 360 test samples" in out, out  # int8 input: quantized as the model says
