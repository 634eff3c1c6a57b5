"""Latency timing takes turns on the machine, not only within a data folder: two sweeps with different
``OPTLIB_HOME`` (two apps, two CLIs) never time a latency at the same moment (optlib/engine/machine.py,
try_latency_turn), and each latency records how long it waited for its turn."""

import json
import os
import subprocess
import sys
import time

from optlib.engine import machine


def _wait_for_a_turn():
    """The machine's latency turn, once no other process holds it (another test process's sweep may time now)."""
    deadline = time.monotonic() + 300
    while (turn := machine.try_latency_turn()) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return turn


def test_the_latency_turn_is_one_per_machine_and_comes_back_when_given_back():
    first = _wait_for_a_turn()
    assert first is not None
    assert machine.try_latency_turn() is None  # held (by this process here; by any process in general)
    first.close()
    again = _wait_for_a_turn()
    assert again is not None
    again.close()


def test_two_sweeps_with_different_data_folders_never_time_at_the_same_moment(tmp_path, tiny_model_path,
                                                                              digits_npz):
    sweeps = []
    for name in ("a", "b"):
        env = {**os.environ, "OPTLIB_HOME": str(tmp_path / name)}
        sweeps.append(subprocess.Popen(
            [sys.executable, "-m", "optlib", "sweep", "--model", str(tiny_model_path), "--data", str(digits_npz),
             "--schemes", "float32,float16,dynamic,int8", "--param", "runs=300", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    windows = []
    for index, sweep in enumerate(sweeps):
        out, err = sweep.communicate(timeout=900)
        assert sweep.returncode == 0, err[-2000:]
        rows = json.loads(out)["results"]
        assert all(row["status"] == "ok" for row in rows), [row["error"] for row in rows]
        windows += [(index, *row["latency_ms"]["timed"], row["latency_ms"]["waited_s"]) for row in rows]
    assert len(windows) == 8
    for sweep_a, start_a, end_a, _ in windows:
        for sweep_b, start_b, end_b, _ in windows:
            if sweep_a != sweep_b:
                assert end_a <= start_b or end_b <= start_a, windows  # one after the other, never together
