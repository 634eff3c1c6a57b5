"""A room of students: many sweeps started at the same moment, through the entry points the pages and the CLI use.

:func:`run_load` starts ``sessions`` sweeps as the Optimize page does (``pages._jobs.SweepJob``, one per
browser session) and ``cli`` sweeps as separate ``python -m optlib sweep`` processes, all at once, on a
small model with a cheap scheme, and samples memory while they run: the memory of this process and every
process it started (the CLI sweeps), the engine children all of them asked for (the workers) and the starters
those were forked from, and the machine's used memory.
The test (tests/unit/test_load.py) asserts on what it returns; the benchmark reports it.
"""

import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class MemorySampler:
    """Samples, every ``interval_s``, the memory of this process tree (with the engine children its processes asked
    for and the starters serving them) and the machine's used memory.

    A process's share is its proportional set size (PSS: each page it shares with others counted in part):
    the engine's children are forks of one starter (optlib/engine/starter.py) and share most of its pages,
    which summing resident memory (RSS) would count once per process. RSS where PSS cannot be read.
    """

    def __init__(self, interval_s=0.2):
        import psutil

        self.interval_s, self.stop_event = interval_s, threading.Event()
        self.start_used = psutil.virtual_memory().used
        self.peak_tree, self.peak_used, self.samples = 0, self.start_used, 0
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        import psutil

        from optlib.engine import processes, starter

        me = psutil.Process()
        while not self.stop_event.is_set():
            tree = {me, *me.children(recursive=True)}
            # the engine children they asked for (forked by the user's shared starter), and that starter itself
            tree.update(processes.asked_by(*(process.pid for process in tree)))
            tree.update(psutil.Process(pid) for pid in starter.serving() if psutil.pid_exists(pid))
            total = 0
            for process in tree:
                try:
                    total += _proportional(process)
                except psutil.Error:
                    pass
            self.peak_tree = max(self.peak_tree, total)
            self.peak_used = max(self.peak_used, psutil.virtual_memory().used)
            self.samples += 1
            self.stop_event.wait(self.interval_s)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join()


def _proportional(process):
    """Bytes of memory that are ``process``'s own share (PSS), or its resident memory where PSS is unknown."""
    import psutil

    try:
        return process.memory_full_info().pss
    except (AttributeError, psutil.AccessDenied):
        return process.memory_info().rss


def run_load(model, data, store, sessions=20, cli=3, variants=4, runs=20, timeout_s=900):
    """Start ``sessions`` page sweeps and ``cli`` CLI sweeps of float32 at once; wait for all; return what happened.

    The sweeps use ``variants`` different settings among the page sweeps (students who changed a
    setting) and one more each for the CLI sweeps, so several really run and the rest are served from
    the store when their turn comes.

    Returns:
        dict: wall_s, page_jobs (the SweepJobs), cli (list of (returncode, stdout, stderr)),
        peak_tree_mb, machine_used_delta_mb, samples.
    """
    from pages._jobs import SweepJob

    def settings(variant):
        return {"runs": runs, "warmup": 1 + variant}

    started = time.perf_counter()
    with MemorySampler() as sampler:
        jobs = [SweepJob(model_ref=str(model), data_ref=str(data), selection="float32",
                         overrides=settings(i % variants), store=str(store), recompute=False, trusted=False,
                         budget_s=None) for i in range(sessions)]
        processes = [subprocess.Popen([sys.executable, "-m", "optlib", "sweep", "--model", str(model), "--data",
                                       str(data), "--schemes", "float32", "--store", str(store), "--runs", str(runs),
                                       "--param", f"warmup={1 + variants + i}", "--json"],
                                      cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for i in range(cli)]
        for job in jobs:
            job.start()
        outputs = []
        for process in processes:
            out, err = process.communicate(timeout=timeout_s)
            outputs.append((process.returncode, out, err))
        for job in jobs:
            job.wait(timeout_s)
    return {"wall_s": time.perf_counter() - started, "page_jobs": jobs, "cli": outputs,
            "peak_tree_mb": sampler.peak_tree / 1e6,
            "machine_used_delta_mb": (sampler.peak_used - sampler.start_used) / 1e6, "samples": sampler.samples}
