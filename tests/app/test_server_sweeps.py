"""One server, several tabs: any tab at the plain address (no ``?job=``) shows the sweeps running on the server —
whose, how far, and a link to follow one — and another visitor's uploaded model stays unnamed unless the
operator shares the gallery (pages/_workspace.py)."""

import threading

import pytest
from apphelpers import APP, FakeSweep, texts, wait_until
from streamlit.testing.v1 import AppTest

from optlib.engine import admission, sweep
from pages import _jobs

SECRET = "/srv/uploads/0123abcd/secret_model.keras"


def plain_tab(workspace=None):
    """A new tab at the plain address (Home, no ``?job=``), of this browser when its ``workspace`` is given."""
    at = AppTest.from_file(str(APP), default_timeout=120)
    if workspace:
        at.query_params["ws"] = workspace
    at.run()
    assert not at.exception and "job" not in at.query_params
    return at


def sidebar_text(at):
    return texts(at.sidebar.markdown) + "\n" + texts(at.sidebar.caption)


@pytest.fixture
def held(monkeypatch):
    """sweep.run stood in by a sweep that waits after each scheme until the test ends."""
    gate = threading.Event()
    monkeypatch.setattr(sweep, "run", FakeSweep(gate=gate))
    yield gate
    gate.set()


def started(model_ref, workspace, selection="float32,int8,int16x8"):
    """A sweep started by another tab (its workspace token given), once its first scheme finished."""
    job = _jobs.SweepJob(model_ref=model_ref, data_ref="digits", selection=selection, overrides={}, store=None,
                         recompute=False, trusted=False, budget_s=None, workspace=workspace).start()
    assert wait_until(lambda: job.state()[2].get("float32", ("",))[0] == "ok")
    return job


def test_a_second_tab_at_the_plain_address_sees_the_sweep_whose_and_how_far_with_a_link(app, home, held,
                                                                                           monkeypatch):
    at = app("optimize.py")
    at.button(key="optimize_run_button").click().run()
    job = at.session_state["optimize_job"]
    assert wait_until(lambda: job.state()[2].get("float32", ("",))[0] == "ok")
    seen = sidebar_text(plain_tab())  # another visitor
    assert "digits_cnn" in seen and "digits" in seen  # a built-in model: named to everyone
    assert "1 of 5 finished" in seen
    assert "another visitor's sweep" in seen
    assert f"job={job.token}" in seen  # the address that follows it
    same = plain_tab(at.query_params["ws"])  # this browser's second tab: its workspace in the address
    assert "your sweep" in sidebar_text(same) and f"job={job.token}" in sidebar_text(same)
    held.set()
    job.wait(30)
    assert job.token not in sidebar_text(plain_tab())  # finished: no longer running on the server


def test_another_visitors_uploaded_model_is_not_named_unless_the_gallery_is_shared(app, home, held, monkeypatch):
    monkeypatch.delenv("OPTLIB_SHARED_GALLERY", raising=False)
    job = started(SECRET, workspace="someone-else-0123456789")
    seen = sidebar_text(plain_tab())
    assert "secret_model" not in seen
    assert "another visitor's model" in seen and "1 of 3 finished" in seen
    assert job.token not in seen  # following it would select their model: no link
    monkeypatch.setenv("OPTLIB_SHARED_GALLERY", "1")
    shared = sidebar_text(plain_tab())
    assert "secret_model.keras" in shared and f"job={job.token}" in shared


def test_a_sweep_of_another_process_on_the_machine_is_shown_from_its_place_in_line(app, home, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("OPTLIB_MAX_SWEEPS", "1")

    code = ("from optlib.engine import admission; import time\n"
            "with admission.turn(label='digits_cnn / digits'):\n    print('held', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        assert len(admission.tickets()) == 1
        seen = sidebar_text(plain_tab())
        assert "another process" in seen and "digits_cnn / digits" in seen
    finally:
        child.kill()
        child.wait()
