"""Where a sweep's jobs run. An executor takes jobs and hands back their Results as they finish.

The interface is small, like ``concurrent.futures``: :meth:`Executor.map`
runs a list of jobs on shared inputs and yields each :class:`~optlib.engine.job.Result`
as it completes; :meth:`Executor.close` (or ``with``) shuts it down. An executor
writes nothing: the sweep's driver persists every Result.

- :class:`InProcess` runs the jobs here, one after another.
- :class:`LocalWorkers` runs them in worker processes on this machine. Each
  worker loads TensorFlow, the model and the dataset once; the parent never
  imports TensorFlow, and it watches the clock: a job over its time budget is
  stopped (the worker is killed) and returned as ``timeout``; a worker that
  dies (a native crash in a converter, say) costs one ``failed`` Result.
  Either way a fresh worker takes the remaining jobs. Several workers share
  the jobs from both ends of the list: the first takes them in the order given
  (a sweep's is the quickest first, :func:`optlib.engine.sweep.dispatch_order`),
  the others take the longest (the fine-tuning schemes) from the end. While
  one worker times a latency, the others are paused (SIGSTOP, then SIGCONT),
  so no figure is taken beside a busy converter; a
  paused worker's clock stops too. Workers are kept from one ``map`` to the
  next while the inputs stay the same (the search runs many small sweeps).
"""

import contextlib
import dataclasses
import os
import socket
import sys
import time
from multiprocessing.connection import Connection

from optlib import paths
from optlib.engine import job, machine, messages, processes, sandbox, wire
from optlib.engine.processes import die_with_parent
from optlib.errors import InputError, first_line

CRASHED = "the worker process {how} while running this scheme; the rest of the sweep went on"


TIMED_OUT = "stopped after {budget:g} s, its time budget per scheme"
OUT_OF_MEMORY = ("out of memory: used {used} of the {limit} limit per worker process, so it was stopped; the rest "
                 "of the sweep went on (the limit is OPTLIB_WORKER_MEMORY_MB, in megabytes)")
LOADING_OUT_OF_MEMORY = ("used {used} of the {limit} limit per worker process; use a smaller model or dataset, or "
                         "raise OPTLIB_WORKER_MEMORY_MB (megabytes) if this machine has the memory")


class Cancelled(Exception):
    """The sweep was stopped on request (the app's Stop button); jobs in flight were abandoned."""


class Executor:
    """Runs a sweep's jobs and yields their Results as they finish."""

    def map(self, inputs, specs, events, cancel=None):
        """Run ``specs`` on ``inputs``; yield each Result as it completes.

        Args:
            inputs: the :class:`~optlib.engine.job.Inputs` every job shares.
            specs: the :class:`~optlib.engine.job.Spec` of each job.
            events: called with each :class:`~optlib.engine.job.Event`.
            cancel: a ``threading.Event``; once it is set, the executor stops its jobs and raises
                :class:`Cancelled`.

        Raises:
            InputError: the model or the data could not be loaded.
            Cancelled: ``cancel`` was set.
        """
        raise NotImplementedError

    def close(self):
        """Release what the executor holds (processes, loaded models)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class InProcess(Executor):
    """Runs the jobs in this process, one after another (no time budget, no crash isolation)."""

    def __init__(self):
        self.context = None

    def map(self, inputs, specs, events, cancel=None):
        """Run the jobs one after another; a cancel takes effect between jobs (a job here cannot be killed)."""
        if self.context is None or self.context.inputs.identity != inputs.identity:
            self.context = None
            self.context = job.Context(inputs, events)
        self.context.events = events
        for spec in specs:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            yield job.run(self.context, spec)

    def close(self):
        self.context = None


def serve(conn):
    """Worker process entry point: load once, then run the jobs the parent sends."""
    die_with_parent()
    _silence_native_logs()
    inputs = conn.recv()

    @contextlib.contextmanager
    def quiet():
        wire.send(conn, messages.Quiet())
        conn.recv()  # "go": the other workers are paused, and no other sweep on the machine is timing
        try:
            yield
        finally:
            wire.send(conn, messages.Loud())

    try:
        context = job.Context(inputs, lambda event: wire.send(conn, messages.Reported(event)), quiet,
                              worker_start_s=_since_started())
    except InputError as problem:
        wire.send(conn, messages.Fatal(str(problem)))
        return
    except Exception as problem:
        wire.send(conn, messages.Fatal(f"{type(problem).__name__}: {first_line(problem)}"))
        return
    wire.send(conn, messages.Ready())
    while True:
        try:
            spec = conn.recv()
        except EOFError:  # the parent went away
            spec = None
        if spec is None:  # every result went to the parent: skip TensorFlow's seconds-long teardown
            os._exit(0)
        result = job.run(context, spec)
        try:
            wire.send(conn, messages.Done(result))
        except (TypeError, ValueError) as problem:  # e.g. a plugin's figure that is not plain data
            wire.send(conn, messages.Done(job.gave_up(spec, "failed", f"the result could not be sent back: "
                                                      f"{type(problem).__name__}: {first_line(problem)}",
                                                      result.started_at, result.host, result.pid)))


def _since_started():
    """Seconds since the sweep asked for this process (a starter's import of TensorFlow or a fresh Python's
    start, its imports, its sandbox; :data:`processes.ASKED_AT_ENV`), else since it started; None if unknown."""
    import psutil

    try:
        return max(0.0, time.time() - float(os.environ[processes.ASKED_AT_ENV]))
    except (KeyError, ValueError):
        pass
    try:
        return max(0.0, time.time() - psutil.Process().create_time())
    except psutil.Error:
        return None


def _silence_native_logs():
    """The worker reports through its pipe; its stderr would carry only TensorFlow's and LiteRT's
    native log lines (some printed when objects are freed, outside any quiet block)."""
    if not os.environ.get("OPTLIB_NATIVE_LOGS"):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)


class _Worker(processes.Child):
    """A ``python -m optlib.engine.executors`` process (a :class:`processes.Child` under the worker memory budget)
    and the job it runs, if any; the job's time budget is the child's deadline."""

    def __init__(self, inputs, memory):
        read, write = sandbox.reach(inputs.model, inputs.data)  # its inputs only: not the store, not the network
        super().__init__("optlib.engine.executors", pythonpath=(str(paths.REPO_ROOT), os.environ.get("PYTHONPATH", "")),
                         read=read, write=write, memory=memory)
        self.send(inputs)
        self.ready, self.spec, self.started_at = False, None, 0.0

    def run(self, spec, budget_s):
        """Give it ``spec``, to finish within ``budget_s`` seconds of running (None: no limit)."""
        self.spec, self.started_at = spec, time.time()
        self.deadline(budget_s)
        self.send(spec)

    def finished(self):
        """Its job's Result came: return the job's spec; it is free again, with no deadline."""
        spec, self.spec = self.spec, None
        self.deadline(None)
        return spec

    def gave_up(self, status, error):
        """The Result of this worker's job, stopped or lost."""
        return job.gave_up(self.spec, status, error, self.started_at, socket.gethostname(), self.process.pid)

    def stop(self, kill=False):
        self.resume()
        if not kill:
            with contextlib.suppress(OSError):
                self.send(None)
        self.end(0 if kill else 10)  # killed if it is still there; its scratch folder goes


# What a worker needs, roughly: TensorFlow's own memory, plus this many times the model's weight bytes (its
# activations in batches of 64, calibration keeping every intermediate tensor, conversions, fine-tuning's clones).
# Measured here: digits_cnn's workers peak at 0.8-1.1 GB; MobileNetV2's (14 MB of weights) at 2.1 GB.
WORKER_BASE_BYTES = 1_000_000_000
WORKER_BYTES_PER_WEIGHT_BYTE = 100


def model_weight_bytes(model_src):
    """The bytes of a model's weights, known without loading it (a zoo architecture's parameter count, a file's
    declared weights); 0 for the built-in demos, which are small."""
    from optlib.inputs import limits, models

    if model_src.kind == "zoo":
        entry = models.ZOO.get(model_src.ref)
        return 4 * entry.params if entry is not None else 0
    path = model_src.path
    if path is None or not path.exists():
        return 0
    try:
        declared = limits.declared_weight_bytes(path, model_src.kind)  # from headers; 0 for an archive (zip)
    except limits.UNREADABLE:  # a damaged file, which the loader will refuse: counted by its bytes
        declared = 0
    if declared:
        return declared
    return path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def worker_bytes(model_src):
    """The memory one worker is expected to need for this model (see :data:`WORKER_BYTES_PER_WEIGHT_BYTE`)."""
    return WORKER_BASE_BYTES + WORKER_BYTES_PER_WEIGHT_BYTE * model_weight_bytes(model_src)


def default_workers(model_src, memory=None):
    """How many workers a sweep of this model gets by default: as many as
    :data:`~optlib.inputs.limits.WORKERS_PER_SWEEP` (at most the cores) when one worker's expected memory
    (:func:`worker_bytes`) fits in the budget of each worker (``memory``, default
    :func:`optlib.inputs.limits.worker_memory`, which already shares the machine among that many workers);
    one otherwise, since each worker loads the model.

    MobileNetV2 (3.5 million parameters: 2.4 GB expected) gets two on two cores with a budget of 2.4 GB or more;
    InceptionV3 (24 million: 10.5 GB) and ResNet101V2 (45 million: 18.9 GB) get one on a machine of 24 GB.
    """
    from optlib.inputs import limits

    budget = memory or limits.worker_memory()
    fits = worker_bytes(model_src) <= budget
    return max(1, min(limits.WORKERS_PER_SWEEP, os.cpu_count() or 1)) if fits else 1


class LocalWorkers(Executor):
    """Worker processes on this machine, kept from one :meth:`map` to the next for the same inputs.

    Args:
        count: at most this many workers (None: :func:`default_workers` of the first inputs).
        budget_s: a job running longer than this (paused time not counted) is stopped: ``timeout``.
        memory: a worker whose resident memory grows past this many bytes is stopped and its job
            marked out of memory (None: ``OPTLIB_WORKER_MEMORY_MB`` or the machine's default,
            :func:`optlib.inputs.limits.worker_memory`).
    """

    def __init__(self, count=None, budget_s=None, memory=None):
        from optlib.inputs import limits

        self.count, self.budget_s = count, budget_s
        self.memory = memory or limits.worker_memory()
        self.inputs, self.pool = None, []

    def close(self):
        for worker in self.pool:
            worker.stop()
        self.pool.clear()

    def _grow(self, inputs, wanted):
        """Start workers until there are ``wanted`` (at most ``count``); return the new ones."""
        if self.inputs is None or self.inputs.identity != inputs.identity:
            self.close()  # workers load one model and dataset: another needs new ones
            self.inputs = inputs
        count = self.count or default_workers(inputs.model, self.memory)
        new = []
        while len(self.pool) < min(count, wanted):
            new.append(_Worker(inputs, self.memory))
            self.pool.append(new[-1])
        return new

    def map(self, inputs, specs, events, cancel=None):
        """Run jobs on the workers, each within the time budget; yield Results as they finish.

        Jobs go to whichever worker is free (the first worker from the front of
        the list, the others from the back). A worker that dies or runs over the
        budget costs its job one Result and is replaced; the other jobs go on.
        """
        pending, pool = list(specs), self.pool
        quiet = _Quiet(pool)
        try:
            while pending or any(w.spec for w in pool):
                if cancel is not None and cancel.is_set():  # checked at least once a second
                    raise Cancelled()
                for worker in self._grow(inputs, len(pending) + sum(1 for w in pool if w.spec)):
                    if quiet.owner:
                        worker.pause()
                for worker in pool:
                    if worker.ready and worker.spec is None and worker.paused_at is None and pending:
                        worker.run(pending.pop(0 if worker is pool[0] else -1), self.budget_s)
                quiet.retry()
                for worker, message in _messages(pool, timeout=0.05 if quiet.blocked else 1.0):
                    ended = isinstance(message, ENDINGS)
                    if isinstance(message, messages.Reported):
                        events(message.event)
                    elif isinstance(message, messages.Quiet):
                        quiet.ask(worker)
                    elif isinstance(message, messages.Loud):
                        quiet.done(worker)
                    elif isinstance(message, messages.Ready):
                        worker.ready = True
                    elif isinstance(message, messages.Fatal):
                        raise InputError(message.text)
                    elif isinstance(message, messages.Done) and worker.spec is not None:
                        # the job it was given, whatever it says
                        yield dataclasses.replace(message.result, spec=worker.finished())
                    elif ended and not worker.ready and isinstance(message, processes.OutOfMemory):
                        raise InputError("The worker process ran out of memory while loading the model and data ("
                                         + _out_of_memory(message, LOADING_OUT_OF_MEMORY) + ").")
                    elif ended and not worker.ready:
                        raise InputError("The worker process stopped while loading the model and data "
                                         f"(it {message.how()}).")
                    elif ended and worker.spec is None:  # an idle worker kept from an earlier sweep
                        pool.remove(worker)
                    elif ended:
                        quiet.gone(worker)
                        pool.remove(worker)
                        yield _gave_up(worker, message)
        except BaseException:  # an abandoned sweep: a worker half-way through a job cannot be reused
            for worker in self.pool:
                worker.stop(kill=worker.spec is not None)
            self.pool.clear()
            raise
        finally:
            quiet.release()
        for worker in pool:
            worker.resume()


def _gave_up(worker, why):
    """The Result of the job of a worker that was stopped (its memory budget, its job's time budget) or died."""
    if isinstance(why, processes.OutOfTime):
        return worker.gave_up("timeout", TIMED_OUT.format(budget=why.seconds))
    if isinstance(why, processes.OutOfMemory):
        return worker.gave_up("failed", _out_of_memory(why))
    return worker.gave_up("failed", CRASHED.format(how=why.how()))


def _out_of_memory(why, text=OUT_OF_MEMORY):
    from optlib.units import format_bytes

    return text.format(used=format_bytes(why.used), limit=format_bytes(why.limit))


class _Quiet:
    """One worker at a time times a latency while the others are paused, and one sweep at a time on the
    machine (:func:`optlib.engine.machine.try_latency_turn`), whatever its data folder."""

    def __init__(self, pool):
        self.pool, self.owner, self.waiting, self.turn = pool, None, [], None

    def ask(self, worker):
        self.waiting.append(worker)
        self._next()

    def done(self, worker):
        if worker is self.owner:
            self.owner = None
            self.release()
            for other in self.pool:
                other.resume()
        self._next()

    def release(self):
        """Give the machine's latency turn back (at the end of a latency, and when the sweep ends)."""
        if self.turn is not None:
            self.turn.close()
            self.turn = None

    @property
    def blocked(self):
        """A worker waits to time a latency while another sweep on this machine times one."""
        return self.owner is None and bool(self.waiting)

    def retry(self):
        self._next()

    def gone(self, worker):
        if worker in self.waiting:
            self.waiting.remove(worker)
        self.done(worker)

    def _next(self):
        if self.owner is None and self.waiting:
            self.turn = machine.try_latency_turn()
            if self.turn is None:
                return  # another sweep on this machine is timing: retry() asks again
            self.owner = self.waiting.pop(0)
            for other in self.pool:
                if other is not self.owner:
                    other.pause()
            self.owner.conn.send("go")


def _messages(pool, timeout):
    """Yield (worker, message) for every running worker with something to say; for one that ended, (worker, why)
    (one of :data:`ENDINGS`).

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
                    message = messages.receive(worker.conn, *WORKER_SAYS, fields=WORKER_FIELDS)
                    if isinstance(message, messages.Done) and not isinstance(message.result.spec, job.Spec):
                        raise wire.WireError("a result of no job")
                    yield worker, message
                continue
            except wire.WireError:  # it sent what no worker sends: it is stopped
                yield worker, worker.refuse()
                continue
            except (EOFError, OSError):  # gone
                pass
        elif worker.process.poll() is None:
            continue
        yield worker, worker.end()


# What a worker may say; anything else counts as the worker dying.
WORKER_SAYS = (messages.Ready, messages.Fatal, messages.Reported, messages.Quiet, messages.Loud, messages.Done)
WORKER_FIELDS = {messages.Reported: {"event": job.Event}, messages.Done: {"result": job.Result}}
# Not messages: why a worker ended (its pipe closed), as :func:`_messages` yields it.
ENDINGS = (processes.OutOfMemory, processes.OutOfTime, processes.Died)


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
