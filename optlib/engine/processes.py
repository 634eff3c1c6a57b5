"""The engine's child processes (the sweep's workers, page work, the TFLM helper): how they start, are
watched, end and are reaped.

Each is a fresh interpreter running ``python -m optlib.engine.child MODULE FD ...``, joined to its parent by
a socket pair (not multiprocessing's spawn, which would import the parent's main script: under Streamlit, the
app itself; nor a fork of a process running TensorFlow's threads). Every child enters its sandbox
(:mod:`optlib.engine.sandbox`) before its module is imported: it reads only the system, Python, optlib and
the inputs named here, and writes only its own scratch folder (its ``TMPDIR``, removed when it is reaped)
and the folders named here.

:class:`Child` is the one way the engine holds such a process: it starts it (:func:`start`), keeps it under a
memory budget and a deadline, pauses and resumes it, receives its typed messages, and says in one value why it
ended (:class:`OutOfMemory`, :class:`OutOfTime`, :class:`Died`).

    child = Child("optlib.engine.micro_process", os.getpid(), pythonpath=sys.path, memory=2 * 10**9)
    child.deadline(300)
    child.send(request)
    try:
        answer = child.receive(messages.Answer, messages.Failure)
    except Ended as ended:  # ended.why: OutOfMemory(used, limit), OutOfTime(seconds) or Died(code)
        ...
"""

import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

from optlib.engine import messages, sandbox, starter, wire


def start(module, *args, pythonpath, read=(), write=(), packages=(), network=False, preload=True):
    """Start ``python -m module FD *args`` in its sandbox; return (its Popen, our Connection to it; FD is its end).

    Args:
        pythonpath: the folders it imports from.
        read: files and folders it may read besides the system's, Python's and optlib's (its inputs).
        write: folders it may write besides its scratch folder.
        packages: folders of other top-level packages it imports code from (besides optlib), readable too.
        network: it may use the network (the tfds download child only).
        preload: it may be forked from the starter (:mod:`optlib.engine.starter`), which has imported
            TensorFlow; False for a child that needs none (a fresh interpreter starts faster than a starter).
    """
    remove_orphans()
    ours, theirs = socket.socketpair()
    scratch = tempfile.mkdtemp(prefix=f"{SCRATCH}{os.getpid()}-")
    # optlib is imported through a link in the scratch folder: the sandbox lets the child read optlib/, not list
    # the repository's folder (which holds the data folder).
    code = os.path.join(scratch, ".code")
    os.mkdir(code)
    for folder in (sandbox.code_folder(), *packages):
        os.symlink(folder, os.path.join(code, os.path.basename(folder)))
    code_paths = sandbox.importable(pythonpath)  # where it imports from, the data folder's ancestors left out
    policy = sandbox.Policy(tuple(str(p) for p in (*read, *packages, *code_paths)),
                            (scratch, *(str(p) for p in write)), network)
    inherited = {k: v for k, v in sandbox.environment().items() if k != starter.PARENT_ENV}  # not our starter's pid
    env = {**inherited, "PYTHONPATH": os.pathsep.join([code, *(p for p in pythonpath if p)]),
           sandbox.ENV: policy.to_env(), "TMPDIR": scratch,
           ASKED_AT_ENV: repr(time.time())}  # its start, the starter's import of TensorFlow included, is timed from here
    # A message that stops half-way for this long is a child that will not finish it (a running child writes on).
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", STALLED_S, 0))
    with theirs:
        # A copy of the starter, which has imported TensorFlow already; else a fresh interpreter. Either way a
        # session of its own: no controlling terminal, so it cannot type into the operator's (TIOCSTI).
        process = (starter.spawn(module, [str(a) for a in args], env, scratch, theirs.fileno(), ours.sendall)
                   if preload else None)
        if process is None:
            process = subprocess.Popen([sys.executable, "-m", "optlib.engine.child", module, str(theirs.fileno()),
                                        *map(str, args)], pass_fds=[theirs.fileno()], env=env,
                                       stdin=subprocess.DEVNULL, cwd=scratch, start_new_session=True)
    process.scratch = scratch
    return process, Connection(ours.detach())


def prestart():
    """Start the process children are forked from (:mod:`optlib.engine.starter`) now, so that the first child
    does not wait 3-4 s for its import of TensorFlow (the app calls this as it starts)."""
    starter.prestart(sandbox.environment())


ASKED_AT_ENV = "OPTLIB_CHILD_ASKED_AT"  # when the parent asked for the child (seconds since the epoch)
STALLED_S = 60
SCRATCH = "optlib-child-"  # scratch folders are optlib-child-<parent's pid>-<random>
_LOOKED = set()


def remove_orphans(prefix=SCRATCH):
    """Once per process and prefix: remove the temporary folders ``<prefix><pid>-...`` whose process is gone
    (a crash, a kill): children's scratch folders, a crashed server's uploads."""
    if prefix in _LOOKED:
        return
    _LOOKED.add(prefix)
    root = tempfile.gettempdir()
    for name in os.listdir(root):
        pid = name[len(prefix):].split("-")[0] if name.startswith(prefix) else ""
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def asked_by(*pids, module=""):
    """The live engine children (running ``module``, any if "") that the processes ``pids`` asked for, wherever they
    were forked: by a starter of their own, or by the one the user's processes share (:mod:`optlib.engine.starter`),
    whose children are no descendants of theirs. A child works in its scratch folder, which carries its asker's
    pid. One pass over the machine's processes, however many askers."""
    import psutil

    root = os.path.realpath(tempfile.gettempdir())
    prefixes = tuple(os.path.join(root, f"{SCRATCH}{pid}-") for pid in pids)
    found = []
    for process in psutil.process_iter(["cmdline", "cwd", "status"]):
        try:
            if (process.info["status"] != psutil.STATUS_ZOMBIE and (process.info["cwd"] or "").startswith(prefixes)
                    and module in " ".join(process.info["cmdline"] or ())):
                found.append(process)
        except psutil.Error:
            pass
    return found


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True


def reap(process, seconds=5):
    """Wait for a child that has stopped talking, killing it if it does not end; remove its scratch folder;
    return its exit status."""
    if seconds:
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            pass
    if process.poll() is None:
        process.kill()
        process.wait(5)
    scratch = getattr(process, "scratch", None)
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)
    return process.returncode


class Memory:
    """The resident memory of a child and of its own children (a worker's TFLM helper counts against the
    worker's budget), as the memory budget of every child is read. An address-space limit (RLIMIT_AS) cannot
    serve: TensorFlow reserves far more virtual memory than it uses.

    Taken while the child surely runs: :meth:`kill` checks it is still that process (its start time), so a pid
    the system gave to another process is never signalled. Raises ``psutil.Error`` once the child is gone.
    """

    def __init__(self, process):
        import psutil

        self.process, self.children, self.reads = psutil.Process(process.pid), 0, 0

    def used(self):
        """Bytes: the child's resident memory, plus its children's (listed once every ten reads: it scans /proc)."""
        import psutil

        if self.reads % 10 == 0:
            self.children = 0
            for child in self.process.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    self.children += child.memory_info().rss
        self.reads += 1
        return self.process.memory_info().rss + self.children

    def kill(self):
        self.process.kill()


def how_it_ended(code):
    """Say how a child process ended, from its exit status (a negative status is the signal that ended it)."""
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"
        why = (" (the kernel's out-of-memory killer ends processes this way when memory runs out)"
               if -code == signal.SIGKILL else "")
        return f"was killed by {name}{why}"
    return f"exited with status {code} before it finished"


def die_with_parent(parent=None):
    """Ask Linux to kill this process when its parent dies: a killed sweep leaves no worker finishing a job
    that the next sweep would run again, and a killed worker no TFLM helper.

    Returns False when ``parent`` (the pid of the process that asked for this child) is gone already: it died
    before this was in place, and the child should stop. A child forked by the starter
    (:mod:`optlib.engine.starter`) has the starter for its parent, which ends its children when it is left.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: it stops at its next request instead (its pipe is closed)
    return parent is None or os.getppid() in (parent, int(os.environ.get(starter.PARENT_ENV) or -1))


@dataclass(frozen=True)
class OutOfMemory:
    """The child was stopped: its resident memory (its helpers' included) passed its budget (bytes)."""

    used: int
    limit: int


@dataclass(frozen=True)
class OutOfTime:
    """The child was stopped: it ran past its deadline (``seconds`` of running, paused time not counted)."""

    seconds: float


@dataclass(frozen=True)
class Died:
    """The child ended by itself (or by a signal from outside) with exit status ``code``; or, when ``garbled``,
    it was stopped for sending what no such child sends (it may have been subverted)."""

    code: int
    garbled: bool = False

    def how(self):
        """How it ended, in words: "was killed by SIGABRT", "exited with status 1 before it finished", ..."""
        if self.garbled:
            return "sent a message no such child sends, so it was stopped"
        return how_it_ended(self.code)


class Ended(Exception):
    """The child ended or was stopped; ``why`` says which (:class:`OutOfMemory`, :class:`OutOfTime`, :class:`Died`)."""

    def __init__(self, why):
        super().__init__(why)
        self.why = why


class Child:
    """One engine child process (:func:`start`), joined to this one by ``conn``, watched while it runs.

    A thread of this process (running once there is a memory budget or a deadline) reads the child's memory
    (:class:`Memory`) and its clock every :attr:`INTERVAL_S` seconds and kills it when it is over either; the
    next :meth:`receive` then raises :class:`Ended` saying which. A paused child's clock stops.

    Args:
        module, args, where: what :func:`start` takes (``pythonpath``, ``read``, ``write``, ``packages``, ``preload``).
        memory: its memory budget in bytes (None: none).

    Attributes:
        process, conn, scratch: its Popen, our end of its connection, its scratch folder.
        paused_at: when :meth:`pause` stopped it (``time.monotonic()``), or None while it runs.
        stopped: why this process stopped it (:class:`OutOfMemory`, :class:`OutOfTime`), or None.
    """

    INTERVAL_S = 0.1

    def __init__(self, module, *args, memory=None, **where):
        self.process, self.conn = start(module, *args, **where)
        self.scratch, self.memory = self.process.scratch, memory
        self.paused_at, self.stopped, self.ended = None, None, None
        self._ends, self._budget_s, self._garbled = None, None, False
        self._helpers, self._watched, self._watch = [], None, None
        self._lock = threading.Lock()  # the clock and the stop, shared with the watching thread
        if memory:
            self._start_watching()

    def send(self, value):
        """Send ``value`` to the child (pickled: what goes from parent to child is the parent's own).

        Raises:
            OSError: it is gone.
        """
        self.conn.send(value)

    def deadline(self, seconds):
        """Stop the child once it has run ``seconds`` more (paused time not counted); None: no deadline."""
        with self._lock:
            self._budget_s = seconds
            since = time.monotonic() if self.paused_at is None else self.paused_at  # resume() adds the pause
            self._ends = None if seconds is None else since + seconds
        if seconds is not None:
            self._start_watching()

    def receive(self, *kinds, timeout=None, fields=None):
        """The child's next message, one of ``kinds`` (:func:`optlib.engine.messages.receive`); None if none came
        within ``timeout`` seconds (None: wait while it runs).

        Raises:
            Ended: it ended, was stopped, or sent what no such child sends (it is stopped then).
        """
        until = None if timeout is None else time.monotonic() + timeout
        while True:
            wait_s = self.INTERVAL_S if until is None else max(0.0, min(self.INTERVAL_S, until - time.monotonic()))
            if self.conn.poll(wait_s):
                try:
                    return messages.receive(self.conn, *kinds, fields=fields)
                except wire.WireError:
                    raise Ended(self.refuse()) from None
                except (EOFError, OSError):  # it died, or stalled half-way through a message
                    raise Ended(self.end()) from None
            # Gone, or stopped while a process it started holds its end open: once its last words are read.
            if (self.stopped is not None or self.process.poll() is not None) and not self.conn.poll(0):
                raise Ended(self.end())
            if until is not None and time.monotonic() >= until:
                return None

    def alive(self):
        return self.ended is None and self.process.poll() is None

    def pause(self):
        """Stop the child (SIGSTOP) and its own helper processes (a worker's TFLM helper); its clock stops."""
        with self._lock:
            if self.paused_at is not None or not self.alive():
                return
            self._helpers = self._children()
            for helper in self._helpers:
                with contextlib.suppress(Exception):
                    helper.suspend()
            try:
                os.kill(self.process.pid, signal.SIGSTOP)
            except ProcessLookupError:  # it died since alive() said so: nothing to pause, its end comes as Ended
                self._resume_helpers()
                return
            self.paused_at = time.monotonic()

    def resume(self):
        """Let a paused child and its helpers run on (the helpers even if the child is gone meanwhile)."""
        with self._lock:
            if self.paused_at is None:
                return
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGCONT)
            self._resume_helpers()
            if self._ends is not None:
                self._ends += time.monotonic() - self.paused_at  # a paused child's clock stops
            self.paused_at = None

    def _resume_helpers(self):
        """Let the helpers that :meth:`pause` suspended run on (under the lock)."""
        for helper in self._helpers:
            with contextlib.suppress(Exception):
                helper.resume()
        self._helpers = []

    def refuse(self):
        """Stop a child that sent what no such child sends; return why it ended (a garbled :class:`Died`)."""
        self._garbled = True
        return self.end(0)

    def end(self, wait_s=5):
        """Reap a child that has stopped talking (killed if it does not end within ``wait_s`` seconds), close its
        connection and remove its scratch folder; return why it ended (the same value each time)."""
        if self.ended is None:
            code = reap(self.process, wait_s)
            self.conn.close()
            self.ended = self.stopped or Died(code, self._garbled)
        return self.ended

    def _children(self):
        """The child's own processes, as psutil.Process objects (which check their pid's owner)."""
        import psutil

        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.Error:
            return []

    def _start_watching(self):
        with self._lock:
            if self._watch is not None or not self.alive():
                return
            import psutil

            try:
                self._watched = Memory(self.process)  # now, while the child surely is this pid's process
            except psutil.Error:
                return
            self._watch = threading.Thread(target=self._watching, name="optlib-child-watch", daemon=True)
            self._watch.start()

    def _watching(self):
        import psutil

        while self.alive() and self.stopped is None:
            time.sleep(self.INTERVAL_S)
            try:
                used = self._watched.used() if self.memory else 0
            except psutil.Error:  # ending: its pipe says how
                return
            with self._lock:
                if self.ended is not None:
                    return
                if self.memory and used > self.memory:
                    self.stopped = OutOfMemory(used, self.memory)
                elif self._ends is not None and self.paused_at is None and time.monotonic() > self._ends:
                    self.stopped = OutOfTime(self._budget_s)
                else:
                    continue
                with contextlib.suppress(psutil.Error):
                    self._watched.kill()
