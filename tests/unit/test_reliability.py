"""Nothing finished is lost: crashes, time budgets, killed sweeps and concurrent writers."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter

from optlib.engine.processes import asked_by
from optlib.engine import sweep
from optlib.engine.executors import LocalWorkers
from optlib.engine.store import Store

FAST = {"epochs": "1", "runs": "3", "warmup": "1", "rep_samples": "16"}


def test_a_worker_that_dies_costs_one_failed_row_and_the_sweep_goes_on(tmp_path, tiny_model_path, digits_npz):
    store = Store(tmp_path / "r.sqlite")

    def crash_during_qat(event):
        if event.scheme == "qat" and event.stage == "running" and "epoch" in event.message:
            for child in asked_by(os.getpid(), module="optlib.engine.executors"):  # forked by a starter: not our child
                try:
                    os.kill(child.pid, signal.SIGKILL)
                except ProcessLookupError:  # already gone: killed by an earlier event
                    pass

    with LocalWorkers(count=1) as one_worker:
        result = sweep.run(str(tiny_model_path), str(digits_npz), "float32,qat,int8", FAST, store,
                           progress=crash_during_qat, executor=one_worker)
    rows = {r["scheme"]: r for r in result["results"]}
    assert rows["float32"]["status"] == "ok" and rows["int8"]["status"] == "ok"
    assert rows["qat"]["status"] == "failed" and rows["qat"]["error"].startswith(
        "the worker process was killed by SIGKILL (the kernel's out-of-memory killer")  # what happened, not a guess
    assert Counter(r["status"] for r in store.rows()) == {"ok": 2, "failed": 1}


BUDGET_S = 15


def test_a_scheme_over_its_time_budget_is_stopped_and_marked(tmp_path, tiny_model_path, digits_npz):
    store = Store(tmp_path / "r.sqlite")
    # qat with 1,000 epochs of one-sample batches needs hours; float32 needs seconds even beside qat on a loaded
    # machine (its workers are forked from a starter that has imported TensorFlow)
    result = sweep.run(str(tiny_model_path), str(digits_npz), "qat,float32",
                       {**FAST, "epochs": "1000", "batch_size": "1"}, store, budget_s=BUDGET_S)
    rows = {r["scheme"]: r for r in result["results"]}
    assert rows["qat"]["status"] == "timeout" and "time budget" in rows["qat"]["error"]
    assert rows["float32"]["status"] == "ok"


def test_reruns_that_time_out_never_hide_the_good_results_and_both_stay_in_the_history(tmp_path, tiny_model_path,
                                                                                       digits_npz):
    store = Store(tmp_path / "r.sqlite")
    first = sweep.run(str(tiny_model_path), str(digits_npz), "qat,cluster", FAST, store)
    assert [r["status"] for r in first["results"]] == ["ok", "ok"]
    # The same two runs again, with a one-second budget: far too little to fine-tune.
    again = sweep.run(str(tiny_model_path), str(digits_npz), "qat,cluster", FAST, store, recompute=True, budget_s=1)
    assert [r["status"] for r in again["results"]] == ["timeout", "timeout"]
    newest_ok = {r["scheme"]: r for r in store.rows(latest=True)}  # what Compare, Export and Home read
    for scheme, good in zip(("qat", "cluster"), first["results"]):
        assert newest_ok[scheme]["status"] == "ok" and newest_ok[scheme]["id"] == good["id"]
        assert newest_ok[scheme]["metrics"]["accuracy"] == good["accuracy"]
        assert [r["status"] for r in store.history(good["id"])] == ["timeout", "ok"]  # the rerun, then the good run


def _cli(*args):
    return [sys.executable, "-m", "optlib", "sweep", *args]


def test_killed_cli_sweep_resumes_and_does_every_scheme_exactly_once(tmp_path, tiny_model_path, digits_npz):
    store = tmp_path / "r.sqlite"
    args = _cli("--model", str(tiny_model_path), "--data", str(digits_npz), "--store", str(store),
                "--schemes", "float32,int8,qat,cluster,float16", "--param", "epochs=3", "--param", "qat.epochs=10",
                "--runs", "3")
    process = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    for line in process.stderr:  # kill it while qat (the third scheme) is training
        if line.startswith("[2/5] int8: ok"):
            break
    deadline = time.monotonic() + 300
    while True:
        qat = [r["status"] for r in Store(store).rows() if r["scheme"] == "qat"]
        if qat == ["running"]:
            break
        assert not qat, f"qat was {qat} before it was seen running"
        assert time.monotonic() < deadline, "qat never started"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait(60)
    time.sleep(0.5)  # the worker dies with its parent
    before = Store(store).rows()
    finished = {r["scheme"] for r in before if r["status"] == "ok"}
    running = {r["scheme"] for r in before if r["status"] == "running"}
    assert {"float32", "int8"} <= finished and "qat" in running  # killed mid-sweep, qat in flight
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = Store(store).rows()
    ok = Counter(r["scheme"] for r in rows if r["status"] == "ok")
    assert ok == {"float32": 1, "int8": 1, "qat": 1, "cluster": 1, "float16": 1}
    assert {r["scheme"] for r in rows if r["status"] == "interrupted"} == running
    assert not [r for r in rows if r["status"] == "running"]
    for scheme in finished:
        assert f"{scheme}: cached" in done.stderr
    assert "qat: ok" in done.stderr


def test_four_concurrent_sweeps_into_one_store_lose_no_row(tmp_path, tiny_model_path, digits_npz):
    store = tmp_path / "r.sqlite"
    selections = ["float32,float16", "dynamic,int8", "int16x8,float32", "int8,dynamic"]
    processes = [subprocess.Popen(_cli("--model", str(tiny_model_path), "--data", str(digits_npz), "--store",
                                       str(store), "--schemes", s, "--runs", "3", "--param", f"warmup={i + 1}"),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  env={**os.environ, "OPTLIB_MAX_SWEEPS": "0"})  # all at once, not in turn
                 for i, s in enumerate(selections)]
    for process in processes:
        assert process.wait(600) == 0, process.stderr.read()
    rows = Store(store).rows()
    assert len(rows) == 8 and all(r["status"] == "ok" for r in rows)
    assert all(os.path.isfile(r["tflite_path"]) for r in rows)


def test_a_cancelled_sweep_stops_at_once_keeps_what_finished_and_leaves_no_worker(tmp_path, tiny_model_path,
                                                                                   digits_npz):
    import threading

    store, cancel, seen, qat_epochs = Store(tmp_path / "r.sqlite"), threading.Event(), set(), []

    def stop_when_float32_is_done_and_qat_is_training(event):
        # Whichever comes last: float32 can finish before the other worker has even loaded TensorFlow (its
        # float32 file may come from the cache), and a cancel then finds qat not started yet.
        if (event.scheme, event.stage) == ("float32", "ok"):
            seen.add("float32 done")
        if event.scheme == "qat" and event.stage == "running" and "epoch" in event.message:
            seen.add("qat training")
            qat_epochs.append(event.message)
        if seen == {"float32 done", "qat training"}:
            cancel.set()

    # Two workers: one takes float32 then would take int8, the other starts qat (from the back) at once.
    with LocalWorkers(count=2) as workers:
        result = sweep.run(str(tiny_model_path), str(digits_npz), "float32,int8,qat", {**FAST, "epochs": "500"},
                           store, progress=stop_when_float32_is_done_and_qat_is_training, executor=workers, cancel=cancel)
        assert workers.pool == []  # the worker training qat was stopped, not waited for
    # Stopped mid-training, not waited for: qat never reached its last epoch.
    assert qat_epochs and not any("epoch 500/500" in message for message in qat_epochs), qat_epochs[-3:]
    rows = {r["scheme"]: r for r in result["results"]}
    assert rows["float32"]["status"] == "ok"
    assert rows["qat"]["status"] == "interrupted"
    # int8 waits for the float32 worker: not started yet (cancelled), or started while qat was loading
    # (interrupted), or, on a slow machine, finished before qat's first epoch (ok). Each is kept as it was.
    assert rows["int8"]["status"] in ("cancelled", "interrupted", "ok")
    kept = Counter(r["status"] for r in result["results"] if r["status"] != "cancelled")
    assert Counter(r["status"] for r in store.rows()) == kept and kept["interrupted"] >= 1
    assert not asked_by(os.getpid(), module="optlib.engine.executors")
