"""Where a sweep's jobs run: in a worker process (the default) or inline.

The worker process loads TensorFlow, the model and the dataset once, then
runs the jobs one by one, writing each result to the store itself and
sending progress back through a pipe. The parent never imports TensorFlow,
and it watches the clock: a job that runs over its time budget is stopped
(the worker is killed) and marked ``timeout``; a worker that dies (a native
crash in a converter, say) costs one ``failed`` row. Either way a fresh
worker takes the remaining jobs, so the rest of the sweep goes on.

Several workers share the jobs from both ends of the list: the first takes
them in registry order (the float32 baseline and the quick post-training
schemes appear at once), the others take the long fine-tuning schemes from
the end. While one worker times a latency, the parent pauses the others
(SIGSTOP, then SIGCONT), so no figure is taken beside a busy converter — and
nobody waits for anybody's build; a paused worker's clock stops too.
"""

import contextlib
import os
import signal
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
    from optlib.engine import sweep

    context = sweep.Context(model_src, data_src, trusted, report)
    return {name: sweep.run_one(context, store, index, name, settings, key)
            for index, name, settings, key in todo}


def serve(conn):
    """Worker process entry point: load once, then run the jobs the parent sends."""
    from optlib.engine import sweep
    from optlib.engine.store import Store

    _die_with_parent()
    _silence_native_logs()
    model_src, data_src, trusted, store_path = conn.recv()

    def report(*event):
        conn.send(("event", event))

    @contextlib.contextmanager
    def quiet():
        conn.send(("quiet",))
        conn.recv()  # "go": the other workers are paused
        try:
            yield
        finally:
            conn.send(("loud",))

    try:
        context = sweep.Context(model_src, data_src, trusted, report, quiet)
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
            job = None
        if job is None:  # every result is in the store: skip TensorFlow's seconds-long teardown
            os._exit(0)
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
    """A ``python -m optlib.engine.executor`` process joined to this one by a socket pair.

    Started as a fresh interpreter (not multiprocessing's spawn, which would
    import the parent's main script — under Streamlit, the app itself).
    """

    def __init__(self, model_src, data_src, trusted, store_path):
        ours, theirs = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(paths.REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
        self.process = subprocess.Popen([sys.executable, "-m", "optlib.engine.executor", str(theirs.fileno())],
                                        pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self.conn = Connection(ours.detach())
        self.conn.send((model_src, data_src, trusted, str(store_path)))
        self.ready, self.job, self.started, self.paused_at = False, None, 0.0, None

    def start_job(self, job):
        self.job, self.started = job, time.monotonic()
        self.conn.send(job)

    def pause(self):
        if self.paused_at is None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGSTOP)
            self.paused_at = time.monotonic()

    def resume(self):
        if self.paused_at is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGCONT)
            self.started += time.monotonic() - self.paused_at  # a paused job's clock stops
            self.paused_at = None

    def wait_exit(self):
        """Return the exit code of a worker that has stopped talking (killing it if needed)."""
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        return self.process.returncode

    @property
    def pid(self):
        return self.process.pid

    def stop(self, kill=False):
        self.resume()
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


def default_workers(model_src):
    """Two workers on two or more cores for small models; one for big ones (each loads the model)."""
    small = model_src.ref == "digits_cnn" or (model_src.path is not None and model_src.path.is_file()
                                              and model_src.path.stat().st_size < 50_000_000)
    return min(2, os.cpu_count() or 1) if small else 1


class Workers:
    """Worker processes for one model and dataset, kept from one sweep to the next.

    A sweep makes its own and closes them at the end; a caller that runs many
    small sweeps on the same model (the search, one trial at a time) opens
    them once and passes them to each sweep, so TensorFlow, the model and the
    data load once, not once per trial::

        with executor.Workers(model_src, data_src, trusted, store) as workers:
            sweep.run(..., workers=workers)
    """

    def __init__(self, model_src, data_src, trusted, store, count=1):
        self.model_src, self.data_src, self.trusted, self.store = model_src, data_src, trusted, store
        self.count, self.pool = count, []

    def serves(self, model_src, data_src, trusted, store):
        return (self.model_src.fingerprint, self.data_src.fingerprint, self.trusted, str(self.store.path)) == \
            (model_src.fingerprint, data_src.fingerprint, trusted, str(store.path))

    def grow(self, wanted):
        """Start workers until there are ``wanted`` (at most ``count``); return the new ones."""
        new = []
        while len(self.pool) < min(self.count, wanted):
            new.append(_Worker(self.model_src, self.data_src, self.trusted, self.store.path))
            self.pool.append(new[-1])
        return new

    def close(self):
        for worker in self.pool:
            worker.stop()
        self.pool.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_in_workers(workers, todo, report, budget_s=None):
    """Run jobs on ``workers`` (a :class:`Workers`), each with a time budget; return {scheme: row}.

    Jobs go to whichever worker is free (the first worker from the front of
    the list, the others from the back). A worker that dies or runs over the
    budget costs its job one row and is replaced; the other jobs go on.

    Raises:
        InputError: a worker could not load the model or the data.
    """
    pending, results, pool, store = list(todo), {}, workers.pool, workers.store
    quiet = _Quiet(pool)
    try:
        while pending or any(w.job for w in pool):
            for worker in workers.grow(len(pending) + sum(1 for w in pool if w.job)):
                if quiet.owner:
                    worker.pause()
            for worker in pool:
                if worker.ready and worker.job is None and worker.paused_at is None and pending:
                    worker.start_job(pending.pop(0 if worker is pool[0] else -1))
            for worker, message in _messages(pool, timeout=1.0):
                kind = message[0]
                if kind == "event":
                    report(*message[1])
                elif kind == "quiet":
                    quiet.ask(worker)
                elif kind == "loud":
                    quiet.done(worker)
                elif kind == "ready":
                    worker.ready = True
                elif kind == "fatal":
                    raise InputError(message[1])
                elif kind == "done":
                    results[worker.job[1]] = message[1]
                    worker.job = None
                elif kind == "died" and not worker.ready:
                    raise InputError("The worker process stopped while loading the model and data "
                                     f"(exit code {message[1]}); the model may be too large for this machine.")
                elif kind == "died" and worker.job is None:  # an idle worker kept from an earlier sweep
                    pool.remove(worker)
                elif kind == "died":
                    quiet.gone(worker)
                    _give_up(store, worker, results, report, "failed", CRASHED.format(code=message[1]))
                    pool.remove(worker)
            for worker in list(pool):
                if worker.job and worker.paused_at is None and budget_s \
                        and time.monotonic() - worker.started > budget_s:
                    quiet.gone(worker)
                    worker.stop(kill=True)
                    _give_up(store, worker, results, report, "timeout", TIMED_OUT.format(budget=budget_s))
                    pool.remove(worker)
    except BaseException:
        workers.close()  # a worker may be half-way through a job: these workers cannot be reused
        raise
    for worker in pool:
        worker.resume()
    return results


class _Quiet:
    """One worker at a time times a latency while the others are paused."""

    def __init__(self, pool):
        self.pool, self.owner, self.waiting = pool, None, []

    def ask(self, worker):
        self.waiting.append(worker)
        self._next()

    def done(self, worker):
        if worker is self.owner:
            self.owner = None
            for other in self.pool:
                other.resume()
        self._next()

    def gone(self, worker):
        if worker in self.waiting:
            self.waiting.remove(worker)
        self.done(worker)

    def _next(self):
        if self.owner is None and self.waiting:
            self.owner = self.waiting.pop(0)
            for other in self.pool:
                if other is not self.owner:
                    other.pause()
            self.owner.conn.send("go")


def _messages(pool, timeout):
    """Yield (worker, message) for every running worker with something to say (or that died).

    A paused worker is not read from: it may have been stopped half-way
    through writing a message, and reading would wait for the rest forever.
    Its messages are read once it runs again.
    """
    from multiprocessing.connection import wait

    running = [w for w in pool if w.paused_at is None]
    ready = wait([w.conn for w in running], timeout) if running else []
    for worker in running:
        if worker.paused_at is not None:  # paused by a message handled a moment ago
            continue
        if worker.conn in ready:
            try:
                while worker.paused_at is None and worker.conn.poll():
                    yield worker, worker.conn.recv()
                continue
            except (EOFError, OSError):
                pass
        elif worker.process.poll() is None:
            continue
        yield worker, ("died", worker.wait_exit())


def _give_up(store, worker, results, report, status, error):
    index, name, _, key = worker.job
    results[name] = _abandoned(store, worker, key, name, status, error)
    report(index, name, status, 1.0, error, results[name])


def _abandoned(store, worker, key, name, status, error):
    """Mark the worker's unfinished row and return it as a result row."""
    from optlib.engine.sweep import result_row

    run_id = store.abandon(worker.pid, key, status, error)
    if run_id is not None:
        return result_row(store.get(run_id))
    return {"scheme": name, "status": status, "error": error, "cached": False, "tflite_path": None}


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
