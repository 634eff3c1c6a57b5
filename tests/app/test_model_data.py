"""The Model & data page: built-in choices, uploads, and problems told in words.

These tests load real models (TensorFlow), so the first one takes a few seconds.
"""

import stat
from pathlib import Path

import numpy as np
import pytest
from apphelpers import make_zip, texts

from pages._uploads import safe_name
from optlib.errors import InputError

OCTET = "application/octet-stream"


def upload_model(at, name, content):
    at.radio(key="data_model_source").set_value("upload").run()
    at.file_uploader(key="data_model_upload").set_value((name, content, OCTET)).run()
    return at


def upload_data(at, kind, name, content):
    at.radio(key="data_data_source").set_value(kind).run()
    at.file_uploader(key="data_data_upload").set_value((name, content, OCTET)).run()
    return at


def test_defaults_show_a_summary_of_the_built_in_model_and_data(app):
    at = app("model_data.py")
    assert not at.exception
    assert not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Input shape"] == "28 × 28 × 1"
    assert metrics["Classes"] == "10" and metrics["Classes in the data"] == "10"
    assert int(metrics["Parameters"].replace(",", "")) > 1000
    assert metrics["Test samples"] == "360" and metrics["Training samples"] == "1,437"
    assert "fit together" in texts(at.success)
    assert len(at.get("image")) == 10  # one example image per class


def test_upload_limit_is_stated(app):
    at = app("model_data.py")
    at.radio(key="data_model_source").set_value("upload").run()
    assert "500 MB" in at.file_uploader(key="data_model_upload").label


def test_an_uploaded_model_is_used_and_saved_under_a_safe_private_name(app, tiny_model_path):
    at = upload_model(app("model_data.py"), "../../my model!.keras", Path(tiny_model_path).read_bytes())
    assert not at.exception
    assert not at.error, texts(at.error)
    ref = Path(at.session_state["app_model_ref"])
    upload_dir = Path(at.session_state["app_upload_dir"])
    assert ref.name == "my_model.keras" and ref.parent.parent == upload_dir
    assert stat.S_IMODE(upload_dir.stat().st_mode) == 0o700
    assert at.session_state["app_model_label"] == "my_model.keras"
    assert {m.label: m.value for m in at.metric}["Input shape"] == "8 × 8 × 1"


@pytest.mark.parametrize("name, content, words", [
    ("notes.keras", b"this is not a model", "not a valid .keras file"),
    ("weights.h5", b"\x89HDF\r\n\x1a\n truncated", "not a readable HDF5"),
    ("escape.zip", None, "points outside the archive folder"),
    ("empty.zip", None, "no SavedModel folder"),
])
def test_a_bad_model_upload_is_an_error_and_the_app_keeps_working(app, tmp_path, name, content, words):
    if name == "escape.zip":
        content = make_zip(tmp_path / name, {"../evil.keras": b"x"}).read_bytes()
    elif name == "empty.zip":
        content = make_zip(tmp_path / name, {"readme.txt": b"nothing here"}).read_bytes()
    at = upload_model(app("model_data.py"), name, content)
    assert not at.exception
    assert words in texts(at.error), texts(at.error)
    assert "Choose" in texts(at.error)  # says what to do next
    at.radio(key="data_model_source").set_value("zoo").run()
    assert not at.exception and not at.error
    assert "fit together" in texts(at.success)


def test_a_truncated_keras_file_is_an_error(app, tiny_model_path):
    content = Path(tiny_model_path).read_bytes()
    at = upload_model(app("model_data.py"), "tiny.keras", content[: len(content) // 2])
    assert not at.exception
    assert "truncated" in texts(at.error)


def test_a_model_that_failed_to_load_cannot_be_run_and_the_reason_is_shown(app, tiny_model_path):
    content = Path(tiny_model_path).read_bytes()
    at = upload_model(app("model_data.py"), "tiny.keras", content[: len(content) // 2])
    assert "truncated" in texts(at.error)
    at.switch_page("pages/optimize.py").run()
    assert not at.exception
    run = at.button(key="optimize_run_button")
    assert run.disabled and "could not be used" in run.help and "truncated" in run.help
    assert "The model could not be used" in texts(at.error)
    at.switch_page("pages/model_data.py").run()
    at.radio(key="data_model_source").set_value("zoo").run()  # a usable model again
    at.switch_page("pages/optimize.py").run()
    assert not at.button(key="optimize_run_button").disabled and not at.error


@pytest.fixture(scope="module")
def lambda_model_path(tmp_path_factory):
    from optlib._keras import keras

    k = keras()
    model = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Lambda(lambda x: x * 2.0), k.layers.Flatten(),
                          k.layers.Dense(10, activation="softmax")])
    path = tmp_path_factory.mktemp("lambda") / "lambda.keras"
    model.save(path, save_format="keras_v3")  # explicit: tf_keras may fall back to HDF5 in other threads
    return path


def test_a_lambda_layer_is_refused_and_visitors_cannot_trust_it(app, lambda_model_path, monkeypatch):
    monkeypatch.delenv("OPTLIB_TRUSTED_LOADING", raising=False)
    at = upload_model(app("model_data.py"), "lambda.keras", Path(lambda_model_path).read_bytes())
    assert not at.exception
    assert "Lambda" in texts(at.error)
    assert not [c for c in at.checkbox if c.key == "data_trusted"]
    assert "Trusted loading is off on this server" in texts(at.caption)
    assert at.session_state["app_trusted"] is False


def test_a_lambda_layer_loads_when_the_operator_allows_trust_and_the_box_is_ticked(app, lambda_model_path,
                                                                                  monkeypatch):
    monkeypatch.setenv("OPTLIB_TRUSTED_LOADING", "1")
    at = upload_model(app("model_data.py"), "lambda.keras", Path(lambda_model_path).read_bytes())
    assert "Lambda" in texts(at.error)
    assert at.session_state["app_trusted"] is False
    at.checkbox(key="data_trusted").check().run()
    assert not at.exception
    assert at.session_state["app_trusted"] is True
    assert not at.error, texts(at.error)


def test_data_that_does_not_fit_the_model_is_explained(app, tmp_path):
    path = tmp_path / "vectors.npz"
    np.savez(path, x_test=np.zeros((20, 5), np.float32), y_test=np.zeros(20, np.int64))
    at = upload_data(app("model_data.py"), "npz", "vectors.npz", path.read_bytes())
    assert not at.exception
    assert "shape" in texts(at.error)
    assert {m.label for m in at.metric} >= {"Input shape", "Parameters"}  # the model summary still shows


def test_an_uploaded_npz_is_summarised(app, digits_npz):
    at = upload_data(app("model_data.py"), "npz", "digits.npz", Path(digits_npz).read_bytes())
    assert not at.exception
    assert not at.error, texts(at.error)
    assert {m.label: m.value for m in at.metric}["Test samples"] == "360"


def test_a_zip_of_class_folders_is_summarised_and_a_traversing_zip_refused(app, tmp_path):
    from PIL import Image

    members = {}
    for label in ("cats", "dogs"):
        for index in range(6):
            image = Image.fromarray(np.full((10, 10, 3), 40 * index, np.uint8))
            file = tmp_path / f"{label}{index}.png"
            image.save(file)
            members[f"pets/{label}/{index}.png"] = file.read_bytes()
    at = upload_data(app("model_data.py"), "zip", "pets.zip", make_zip(tmp_path / "pets.zip", members).read_bytes())
    assert not at.exception
    # digits_cnn predicts ten classes, so two class folders fit; the summary shows them.
    assert not at.error, texts(at.error)
    assert {m.label: m.value for m in at.metric}["Classes in the data"] == "2"

    bad = make_zip(tmp_path / "bad.zip", {"../../outside.png": b"x"}).read_bytes()
    at.file_uploader(key="data_data_upload").set_value(("bad.zip", bad, OCTET)).run()
    assert not at.exception
    assert "points outside the archive folder" in texts(at.error)


def test_a_missing_tfds_dataset_is_an_error(app, monkeypatch, tmp_path):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    at = app("model_data.py")
    at.radio(key="data_data_source").set_value("tfds").run()
    assert not at.exception and not at.error
    at.text_input(key="data_tfds_name").input("surely_not_a_dataset").run()
    assert not at.exception
    assert "surely_not_a_dataset" in texts(at.error)


def test_safe_name_keeps_only_safe_characters_and_allowed_suffixes():
    assert safe_name("../../etc/passwd.keras", ("keras",), "model") == "passwd.keras"
    assert safe_name("..\\..\\win dows.H5", ("h5",), "model") == "win_dows.h5"
    assert safe_name("....keras", ("keras",), "model") == "model.keras"
    with pytest.raises(InputError, match=".keras"):
        safe_name("run.sh", ("keras",), "model")


def test_two_sessions_keep_their_own_selection(app, tmp_path):
    """A choice (and an upload) in one browser session never shows in another."""
    first, second = app("model_data.py"), app("model_data.py")
    first.selectbox(key="data_zoo_model").set_value("mobilenet_v2").run()
    np.savez(tmp_path / "mine.npz", x_test=np.zeros((4, 8, 8), np.float32), y_test=np.arange(4))
    upload_data(first, "npz", "mine.npz", (tmp_path / "mine.npz").read_bytes())
    assert first.session_state["app_model_ref"] == "mobilenet_v2"
    assert first.session_state["app_data_ref"] != "digits"
    second.run()
    assert second.session_state["app_model_ref"] == "digits_cnn"
    assert second.session_state["app_data_ref"] == "digits"
    assert second.session_state["app_upload_dir"] != first.session_state["app_upload_dir"]


def test_a_model_whose_configuration_declares_huge_layers_is_stopped_outside_the_server(app, tmp_path, monkeypatch):
    """Its file is a few kB and passes the size check; building it would take 3.6 GB. It is built in a
    process of its own under the worker budget, so the page says so and the server never grows."""
    import psutil

    from tests import hostile

    from optlib.engine import isolated

    monkeypatch.setenv("OPTLIB_WORKER_MEMORY_MB", "1500")
    content = hostile.huge_layer_keras(tmp_path / "huge.keras").read_bytes()
    assert len(content) < 100_000
    started, real = [], isolated.call
    monkeypatch.setattr(isolated, "call", lambda work, *args, **kwargs: started.append((work.__name__, args))
                        or real(work, *args, **kwargs))
    server = psutil.Process()
    before = server.memory_info().rss
    at = upload_model(app("model_data.py"), "huge.keras", content)
    assert not at.exception
    error = texts(at.error)
    assert "Loading the model and the dataset ran out of memory: it used" in error and "OPTLIB_WORKER_MEMORY_MB" in error, error
    assert server.memory_info().rss - before < 1_000_000_000  # 3.6 GB when it was built in the server
    at.run()
    at.run()
    assert "Loading the model and the dataset ran out of memory" in texts(at.error)
    huge = [name for name, args in started if str(args[0]).endswith("huge.keras")]
    assert huge == ["model_and_data_facts"]  # once: the refusal is remembered, reruns start no new process


def test_a_task_set_on_the_page_is_the_one_the_data_is_read_for(app, monkeypatch):
    """The model's and the data's facts are read together with the task in force; a task changed on the
    page is the one the data is then read for, on this run and the next, by one more child process."""
    from optlib.engine import isolated
    from pages import _uploads

    _uploads._facts_outcome.clear()  # facts other tests read are cached in this process too
    started, real = [], isolated.call
    monkeypatch.setattr(isolated, "call", lambda work, *args, **kwargs: started.append(args[-1])
                        or real(work, *args, **kwargs))
    at = app("model_data.py")
    assert "fit together" in texts(at.success)
    at.selectbox(key="data_task").set_value("binary").run()
    assert not at.exception
    assert "Output 'dense_1' has shape (10,): binary needs one score per sample" in texts(at.error)
    at.run()
    assert "binary needs one score per sample" in texts(at.error)
    assert started[1:] == ["binary"]  # read once for "binary" (it was twice: on that rerun, then the next)
    at.selectbox(key="data_task").set_value("auto").run()
    assert not at.error and "fit together" in texts(at.success)
