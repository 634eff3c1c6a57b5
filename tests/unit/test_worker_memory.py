"""A memory budget per worker: a job that grows past it is stopped, its row says so, the sweep goes on.

A throwaway scheme (a plugin module named in ``$OPTLIB_PLUGINS``, as in tests/app/test_new_scheme.py)
allocates in small steps until it is stopped; it gives up, and returns a plain float32 model, once it
is 600 MB past the budget, so a watchdog that failed shows as an 'ok' row, never as a machine out of memory.
"""

import sys

import pytest

from optlib.engine import schemes, sweep

PLUGIN = '''
import time

import numpy as np
import psutil

from optlib.engine import schemes
from optlib.engine.convert import convert
from optlib.engine.schemes.base import Built


def build(job):
    job.progress(0.1, "allocating")
    limit = float(__import__("os").environ["OPTLIB_WORKER_MEMORY_MB"]) * 1e6
    held = []
    while psutil.Process().memory_info().rss < limit + 600e6:
        held.append(np.ones(10_000_000, np.uint8))  # 10 MB, touched (zeros would not be resident)
        time.sleep(0.02)
    recipe = {}
    return Built(convert(job.model, recipe), {"converter": recipe, "held_mb": 10 * len(held)}, job.model)


schemes.register(schemes.Scheme(
    "memory_hog", "post-training", "Memory hog", "Allocates until it is stopped (a test's scheme).", "nothing",
    "memory_hog_plugin:build", (), color="#654321"))
'''


@pytest.fixture
def memory_hog(tmp_path, monkeypatch):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "memory_hog_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", str(folder))
    monkeypatch.setenv("OPTLIB_PLUGINS", "memory_hog_plugin")
    monkeypatch.delitem(sys.modules, "memory_hog_plugin", raising=False)
    __import__("memory_hog_plugin")
    yield schemes.get("memory_hog")
    schemes.unregister("memory_hog")
    sys.modules.pop("memory_hog_plugin", None)


def test_a_job_past_its_workers_memory_budget_is_marked_out_of_memory_and_the_sweep_finishes(
        memory_hog, tmp_path, monkeypatch):
    # A digits CNN worker peaks near 850 MB resident (TensorFlow, the model, a conversion): 1,300 MB leaves room.
    monkeypatch.setenv("OPTLIB_WORKER_MEMORY_MB", "1300")
    result = sweep.run("digits_cnn", "digits", "float32,dynamic,memory_hog", {"runs": 5, "warmup": 1},
                       store=tmp_path / "s.sqlite")
    rows = {row["scheme"]: row for row in result["results"]}
    assert rows["float32"]["status"] == "ok" and rows["dynamic"]["status"] == "ok"
    hog = rows["memory_hog"]
    assert hog["status"] == "failed", hog
    assert hog["error"].startswith("out of memory: used ") and "of the 1.30 GB limit per worker process" in hog["error"]
    assert "OPTLIB_WORKER_MEMORY_MB" in hog["error"]
    used = float(hog["error"].split("used ")[1].split(" GB")[0])
    # Past the limit (to two decimals) when stopped; had the watchdog missed it, the hog would have given up
    # 600 MB later and returned a model: an 'ok' row, not this one.
    assert used >= 1.30


def test_a_worker_that_runs_out_of_memory_while_loading_says_so(tmp_path, monkeypatch):
    from optlib.errors import InputError

    monkeypatch.setenv("OPTLIB_WORKER_MEMORY_MB", "60")  # less than Python with numpy takes
    with pytest.raises(InputError, match=r"ran out of memory while loading the model and data \(used .* of the "
                                         r"60.00 MB limit per worker process; .* OPTLIB_WORKER_MEMORY_MB"):
        sweep.run("digits_cnn", "digits", "float32", store=tmp_path / "s.sqlite")
