"""The engine's child processes (the sweep's workers, page work, the TFLM helper): how they start, end and
are reaped.

Each is a fresh interpreter running ``python -m optlib.engine.child MODULE FD ...``, joined to its parent by
a socket pair (not multiprocessing's spawn, which would import the parent's main script: under Streamlit, the
app itself; nor a fork of a process running TensorFlow's threads). Every child enters its sandbox
(:mod:`optlib.engine.sandbox`) before its module is imported: it reads only the system, Python, optlib and
the inputs named here, and writes only its own scratch folder (its ``TMPDIR``, removed when it is reaped)
and the folders named here.
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
from multiprocessing.connection import Connection

from optlib.engine import sandbox


def start(module, *args, pythonpath, read=(), write=(), packages=(), network=False):
    """Start ``python -m module FD *args`` in its sandbox; return (its Popen, our Connection to it; FD is its end).

    Args:
        pythonpath: the folders it imports from.
        read: files and folders it may read besides the system's, Python's and optlib's (its inputs).
        write: folders it may write besides its scratch folder.
        packages: folders of other top-level packages it imports code from (besides optlib), readable too.
        network: it may use the network (the tfds download child only).
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
    env = {**sandbox.environment(), "PYTHONPATH": os.pathsep.join([code, *(p for p in pythonpath if p)]),
           sandbox.ENV: policy.to_env(), "TMPDIR": scratch}
    # A message that stops half-way for this long is a child that will not finish it (a running child writes on).
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", STALLED_S, 0))
    with theirs:
        # A session of its own: no controlling terminal, so it cannot type into the operator's (TIOCSTI).
        process = subprocess.Popen([sys.executable, "-m", "optlib.engine.child", module, str(theirs.fileno()),
                                    *map(str, args)], pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL,
                                   cwd=scratch, start_new_session=True)
    process.scratch = scratch
    return process, Connection(ours.detach())


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


def die_with_parent():
    """Ask Linux to kill this process when its parent dies: a killed sweep leaves no worker finishing a job
    that the next sweep would run again, and a killed worker no TFLM helper."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: it stops at its next request instead (its pipe is closed)
