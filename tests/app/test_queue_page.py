"""The Optimize page with another sweep running on the machine: this one waits in line, says its place,
and Stop works while it waits (the real sweep driver; only the other sweep is a held place in the queue)."""

import threading

from apphelpers import texts, wait_until

from optlib.engine import admission


def test_a_sweep_waiting_for_its_turn_shows_its_place_and_can_be_stopped(app, home, monkeypatch):
    from optlib.engine.store import Store

    monkeypatch.setenv("OPTLIB_MAX_SWEEPS", "1")
    release, holding = threading.Event(), threading.Event()

    def other_sweep():  # another session's (or the CLI's) sweep holds the one place
        with admission.turn():
            holding.set()
            release.wait(60)

    threading.Thread(target=other_sweep, daemon=True).start()
    assert holding.wait(10)
    try:
        at = app("optimize.py")
        at.button(key="optimize_run_button").click().run()
        job = at.session_state["optimize_job"]
        wait_until(lambda: "waiting in line" in job.state()[1])
        at.run()
        assert not at.exception
        progress = at.get("progress")[0].proto.text
        assert progress.startswith("Not started yet: waiting in line, number 1 (it is next): 1 sweep runs at a time")
        assert "OPTLIB_MAX_SWEEPS" in progress
        at.button(key="optimize_stop_button").click().run()
        job.wait(10)
        assert not job.running
        at.run()
        assert not at.exception
        assert "0 of 5 schemes finished" in texts(at.warning) and "Stopped before they finished" in texts(at.warning)
        assert Store().rows() == []  # nothing started, nothing stored
    finally:
        release.set()
