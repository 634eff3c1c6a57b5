"""Where a sweep's jobs run: in a worker process (the default) or inline.

The worker process loads TensorFlow, the model and the dataset once, then
runs the jobs one by one, writing each result to the store itself and
sending progress back through a pipe. The parent never imports TensorFlow,
and it watches the clock: a job that runs over its time budget is stopped
(the worker is killed) and marked ``timeout``; a worker that dies (a native
crash in a converter, say) costs one ``failed`` row. Either way a fresh
worker takes the remaining jobs, so the rest of the sweep goes on.
"""

import os
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection

from optlib import paths
from optlib.errors import InputError

CRASHED = "the worker process stopped while running this scheme (exit code {code}); the rest of the sweep went on"
TIMED_OUT = "stopped after {budget:g} s, the time budget per scheme; give it more time with --budget"


def run_inline(model_src, data_src, trusted, store, todo, report):
    """Run jobs in this process; return {scheme: row}."""
    from optlib import sweep

    context = sweep.Context(model_src, data_src, trusted, report)
    return {name: sweep.run_one(context, store, index, name, settings, key)
            for index, name, settings, key in todo}


def serve(conn):
    """Worker process entry point: load once, then run the jobs the parent sends."""
    from optlib import sweep
    from optlib.store import Store

    _die_with_parent()
    _silence_native_logs()
    model_src, data_src, trusted, store_path = conn.recv()

    def report(*event):
        conn.send(("event", event))

    try:
        context = sweep.Context(model_src, data_src, trusted, report)
    except InputError as problem:
        conn.send(("fatal", str(problem)))
        return
    except Exception as problem:
        conn.send(("fatal", f"{type(problem).__name__}: {str(problem).strip()[:300]}"))
        return
    store = Store(store_path)
    conn.send(("ready",))
    while True:
        try:
            job = conn.recv()
        except EOFError:  # the parent went away
            return
        if job is None:
            return
        index, name, settings, key = job
        conn.send(("done", sweep.run_one(context, store, index, name, settings, key)))


def _silence_native_logs():
    """The worker reports through its pipe; its stderr would carry only TensorFlow's and LiteRT's
    native log lines (some printed when objects are freed, outside any quiet block)."""
    if not os.environ.get("OPTLIB_NATIVE_LOGS"):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)


def _die_with_parent():
    """Ask Linux to kill this worker when its parent dies, so a killed sweep leaves no orphan
    finishing a job that the next sweep would run again."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the worker stops at the next job instead (the pipe is closed)


class _Worker:
    """A ``python -m optlib.executor`` process joined to this one by a socket pair.

    Started as a fresh interpreter (not multiprocessing's spawn, which would
    import the parent's main script — under Streamlit, the app itself).
    """

    def __init__(self, model_src, data_src, trusted, store_path):
        ours, theirs = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(paths.REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
        self.process = subprocess.Popen([sys.executable, "-m", "optlib.executor", str(theirs.fileno())],
                                        pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self.conn = Connection(ours.detach())
        self.conn.send((model_src, data_src, trusted, str(store_path)))

    @property
    def pid(self):
        return self.process.pid

    def receive(self, timeout):
        """Return the next message, None on timeout, or ("died", exit code) if the worker is gone."""
        try:
            if self.conn.poll(timeout):
                return self.conn.recv()
        except (EOFError, OSError):
            pass
        else:
            if self.process.poll() is None:
                return None
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        return ("died", self.process.returncode)

    def stop(self, kill=False):
        if not kill:
            try:
                self.conn.send(None)
                self.process.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.conn.close()


def run_in_worker(model_src, data_src, trusted, store, todo, report, budget_s=None):
    """Run jobs in a worker process with a per-job time budget; return {scheme: row}.

    Raises:
        InputError: the worker could not load the model or the data.
    """
    results, worker = {}, None
    try:
        for index, name, settings, key in todo:
            if worker is None:
                worker = _Worker(model_src, data_src, trusted, store.path)
                _wait_ready(worker, report)
            worker.conn.send((index, name, settings, key))
            outcome, value = _follow(worker, report, budget_s)
            if outcome == "done":
                results[name] = value
                continue
            if outcome == "timeout":
                worker.stop(kill=True)
                status, error = "timeout", TIMED_OUT.format(budget=budget_s)
            else:
                status, error = "failed", CRASHED.format(code=value)
            results[name] = _abandoned(store, worker, key, name, status, error)
            report(index, name, status, 1.0, error, results[name])
            worker = None  # a fresh worker takes the remaining jobs
    finally:
        if worker is not None:
            worker.stop()
    return results


def _follow(worker, report, budget_s):
    """Relay the running job's progress; return ("done", row), ("timeout", None) or ("died", exit code)."""
    started = time.monotonic()
    while True:
        message = worker.receive(timeout=1.0)
        if message is None:
            if budget_s and time.monotonic() - started > budget_s:
                return "timeout", None
        elif message[0] == "event":
            report(*message[1])
        elif message[0] == "done":
            return "done", message[1]
        elif message[0] == "died":
            return "died", message[1]


def _wait_ready(worker, report):
    while True:
        message = worker.receive(timeout=1.0)
        if message is None:
            continue
        if message[0] == "event":
            report(*message[1])
        elif message[0] == "ready":
            return
        elif message[0] == "fatal":
            worker.stop()
            raise InputError(message[1])
        else:  # died while loading
            raise InputError(f"The worker process stopped while loading the model and data "
                             f"(exit code {message[1]}); the model may be too large for this machine.")


def _abandoned(store, worker, key, name, status, error):
    """Mark the worker's unfinished row and return it as a result row."""
    from optlib.sweep import result_row

    run_id = store.abandon(worker.pid, key, status, error)
    if run_id is not None:
        return result_row(store.get(run_id))
    return {"scheme": name, "status": status, "error": error, "cached": False, "tflite_path": None}


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
