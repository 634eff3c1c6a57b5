"""The store: every run is kept; what a page shows per run key is the newest good result."""

from types import SimpleNamespace

from optlib.engine.job import Inputs, Result, Spec
from optlib.engine.store import Store, run_key

INPUTS = Inputs(SimpleNamespace(name="m", fingerprint="mfp"), SimpleNamespace(name="d", fingerprint="dfp"))


def _run(store, scheme, status, accuracy=None):
    spec = Spec(0, scheme, {}, run_key("mfp", "dfp", scheme, {}))
    result = (Result(spec, "ok", metrics={"accuracy": accuracy}, artifact=b"TFL3") if status == "ok"
              else Result(spec, status, f"{status} on purpose"))
    return store.finish(store.start(INPUTS, spec, "host", 1), result)


def test_a_failed_or_timed_out_rerun_never_hides_the_newest_ok_result(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    good_qat = _run(store, "qat", "ok", 0.97)
    _run(store, "qat", "timeout")
    _run(store, "qat", "failed")
    _run(store, "cluster", "ok", 0.90)
    newer_cluster = _run(store, "cluster", "ok", 0.95)
    _run(store, "cluster", "interrupted")
    only_failed = _run(store, "int16x8", "failed")
    shown = {row["scheme"]: row for row in store.rows(latest=True)}
    assert {name: row["id"] for name, row in shown.items()} == {"qat": good_qat, "cluster": newer_cluster,
                                                                 "int16x8": only_failed}
    assert shown["qat"]["metrics"]["accuracy"] == 0.97
    assert len(store.rows()) == 7  # the history keeps every run


def test_marking_dead_runs_never_overwrites_a_run_that_finished_meanwhile(tmp_path, monkeypatch):
    """A worker killed for its time budget leaves its row 'running' for a moment; another sweep that checks for
    dead runs then must not turn the 'timeout' its own sweep writes meanwhile into 'interrupted'."""
    import socket

    from optlib.engine import store as store_module

    store = Store(tmp_path / "r.sqlite")
    spec = Spec(0, "qat", {}, run_key("mfp", "dfp", "qat", {}))
    run_id = store.start(INPUTS, spec, socket.gethostname(), 4_000_000)

    def dead_and_meanwhile_finished(pid):
        store.finish(run_id, Result(spec, "timeout", "took longer than its budget"))
        return False

    monkeypatch.setattr(store_module, "_alive", dead_and_meanwhile_finished)
    store.mark_interrupted()
    assert store.get(run_id)["status"] == "timeout"


def test_a_run_made_again_keeps_the_older_runs_bytes(tmp_path):
    """Recompute (or two sweeps at once) makes a key again: the older row still points at the bytes its figures
    were measured on."""
    from pathlib import Path

    store = Store(tmp_path / "r.sqlite")
    spec = Spec(0, "qat", {}, run_key("mfp", "dfp", "qat", {}))
    older = store.finish(store.start(INPUTS, spec, "host", 1), Result(spec, "ok", metrics={}, artifact=b"first"))
    newer = store.finish(store.start(INPUTS, spec, "host", 1), Result(spec, "ok", metrics={}, artifact=b"again"))
    assert Path(store.get(older)["tflite_path"]).read_bytes() == b"first"
    assert Path(store.get(newer)["tflite_path"]).read_bytes() == b"again"
    assert store.lookup(spec.key)["id"] == newer
