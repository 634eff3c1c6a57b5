"""Export's bundle carries the uploaded model whenever the server still has it, not only while it is the
current model (pages/export.py, pages/_uploads.find_upload)."""

from pathlib import Path

from apphelpers import canned_metrics, put_run, texts
from test_model_data import upload_model

from optlib import paths
from optlib.engine.store import Store
from optlib.inputs import data_refs, models
from pages import _uploads


def test_the_bundle_includes_an_upload_the_visitor_no_longer_has_selected(app, home, tiny_model_path, seed_zoo):
    seed_zoo(home)  # the built-in model it goes back to, trained once by this run
    at = app("model_data.py")
    upload_model(at, "tiny.keras", Path(tiny_model_path).read_bytes())
    assert not at.exception
    uploaded = at.session_state["app_model_ref"]
    fingerprint = models.resolve(uploaded).fingerprint
    run = put_run(Store(paths.default_store_path()), "int8", "tiny.keras", fingerprint, "digits",
                  data_refs.resolve("digits").fingerprint, metrics=canned_metrics("int8"))
    at.radio(key="data_model_source").set_value("zoo").run()  # back to the built-in model
    assert at.session_state["app_model_ref"] == "digits_cnn"
    at.switch_page("pages/export.py").run()
    at.selectbox(key="export_run").set_value(run["id"]).run()
    assert not at.exception
    said = texts(at.caption)
    assert "The optimized `.tflite`, the source model, the code" in said
    assert "not included" not in said
    assert _uploads.find_upload("tiny.keras", fingerprint) == uploaded  # the kept upload, found by its content
    assert _uploads.find_upload("tiny.keras", "another-fingerprint") is None
