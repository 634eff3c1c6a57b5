"""Fixtures for the AppTest tests: private data folders, canned and real stored runs, an app driver.

The pages are driven for real with ``streamlit.testing.v1.AppTest``; only
the slow engine call (``optlib.engine.sweep.run``) is replaced where a test is about
the page, not the engine. One test uses a store filled by a real tiny sweep,
made once per session.
"""

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPTLIB_HOME", tempfile.mkdtemp(prefix="optlib-apptests-"))
# These tests fill the store as an operator would (the CLI, canned rows of model files) and read it in the
# app: the shared gallery shows those. test_workspace.py checks what a visitor sees without it.
os.environ.setdefault("OPTLIB_SHARED_GALLERY", "1")

from apphelpers import APP, PTQ, store_canned  # noqa: E402


@pytest.fixture(autouse=True)
def no_keras3_cleanup_between_runs(monkeypatch):
    """Run the pages as the real server does. After each script run Streamlit clears Keras's session when
    ``keras`` (Keras 3) is imported, which is a full garbage collection: about 0.25 s in a process that
    holds TensorFlow, after every AppTest run. The server never imports Keras 3, which imports TensorFlow:
    ``test_the_server_itself_never_loaded_tensorflow`` (tests/e2e) checks it has not. A test process has, for
    other tests."""
    from streamlit.runtime.scriptrunner import script_runner

    monkeypatch.setattr(script_runner, "_clean_problem_modules", lambda: None)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty, private data folder (OPTLIB_HOME) for one test."""
    folder = tmp_path / "home"
    monkeypatch.setenv("OPTLIB_HOME", str(folder))
    return folder


@pytest.fixture
def filled_home(home):
    """A private data folder whose store holds canned runs of two models, one run failed."""
    from optlib.engine.store import Store

    store = Store()
    for scheme in (*PTQ, "qat", "prune"):
        store_canned(store, scheme, fail=scheme == "int16x8")
    for scheme in ("float32", "int8"):
        store_canned(store, scheme, model="tiny.keras")
    return home


@pytest.fixture(scope="session")
def swept_home(tmp_path_factory, seed_zoo):
    """A data folder filled once per session by a real sweep of three schemes on the built-in model."""
    from optlib.engine import sweep

    folder = seed_zoo(tmp_path_factory.mktemp("swept"))  # the digits_cnn this run trained once
    previous = os.environ["OPTLIB_HOME"]
    os.environ["OPTLIB_HOME"] = str(folder)
    try:
        result = sweep.run("digits_cnn", "digits", "float32,int8,int16x8", {"runs": 3, "warmup": 1})
        assert [row["status"] for row in result["results"]] == ["ok", "ok", "ok"], result
    finally:
        os.environ["OPTLIB_HOME"] = previous
    return folder


@pytest.fixture
def app():
    """Return a function that runs the app (optionally on a page, with preset session state)."""
    from streamlit.testing.v1 import AppTest

    def run(page=None, state=None, timeout=120):
        at = AppTest.from_file(str(APP), default_timeout=timeout)
        for key, value in (state or {}).items():
            at.session_state[key] = value
        at.run()
        if page:
            at.switch_page(f"pages/{page}")
            at.run()
        return at

    return run
