"""A visitor's workspace on a shared server (pages/_workspace.py): the built-in models' results and their own
uploads', kept across reloads by the address; everything with the operator's shared gallery."""

from pathlib import Path

import pytest
from apphelpers import APP, canned_metrics, put_run, store_canned
from test_model_data import upload_model

from optlib import paths
from optlib.engine.store import Store
from optlib.inputs import data_refs, models


@pytest.fixture
def private(home, monkeypatch, tiny_model_path):
    """A store with a built-in model's run and another visitor's uploaded model's run; no shared gallery."""
    monkeypatch.delenv("OPTLIB_SHARED_GALLERY", raising=False)
    store = Store(paths.default_store_path())
    store_canned(store, "float32")
    put_run(store, "float32", "tiny.keras", models.resolve(str(tiny_model_path)).fingerprint, "digits",
            data_refs.resolve("digits").fingerprint, metrics=canned_metrics("float32"))
    return store


def models_on_compare(at):
    """The models whose runs this visitor may see: Compare's model filter offers every model with stored runs."""
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    seen = {str(option).split(" · ")[0] for option in at.multiselect(key="compare_filter_model").options}
    return seen


def test_a_visitor_sees_the_built_in_results_and_their_own_uploads_only(app, private, tiny_model_path):
    visitor = app("home.py")
    assert models_on_compare(visitor) == {"digits_cnn"}  # another visitor's upload stays theirs
    at = app("model_data.py")
    upload_model(at, "tiny.keras", Path(tiny_model_path).read_bytes())
    assert models_on_compare(at) == {"digits_cnn", "tiny.keras"}  # the same file, uploaded here: its results too
    assert models_on_compare(visitor) == {"digits_cnn"}


def test_the_workspace_is_kept_across_a_reload_by_the_address(app, private, tiny_model_path):
    at = app("model_data.py")
    upload_model(at, "tiny.keras", Path(tiny_model_path).read_bytes())
    token = at.query_params["ws"]
    assert len(token) >= 16
    reloaded = opened_at(token)  # a reload: a new session, the same address
    assert models_on_compare(reloaded) == {"digits_cnn", "tiny.keras"}
    stranger = opened_at("not a token/../x")  # not a token: a new workspace of its own
    assert models_on_compare(stranger) == {"digits_cnn"} and stranger.query_params["ws"] != token


def opened_at(token):
    """A new session whose address carries ``?ws=token``."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params["ws"] = token
    return at.run()


def test_the_operators_shared_gallery_shows_everything(app, private, monkeypatch):
    monkeypatch.setenv("OPTLIB_SHARED_GALLERY", "1")
    assert models_on_compare(app("home.py")) == {"digits_cnn", "tiny.keras"}


def test_a_sessions_upload_folder_goes_when_the_session_is_dropped():
    """Streamlit drops a closed tab's session state; the upload folder kept there goes with it."""
    import gc

    from pages._uploads import UploadFolder

    folder = UploadFolder()
    (Path(folder.path) / "model.keras").write_bytes(b"x")
    path = Path(folder.path)
    del folder
    gc.collect()
    assert not path.exists()
