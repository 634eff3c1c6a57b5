"""The engine's child processes (the sweep's workers, the TFLM helper): how they start, end and are reaped.

Each is a fresh interpreter running ``python -m MODULE FD ...`` and joined to its parent by a socket pair
(not multiprocessing's spawn, which would import the parent's main script: under Streamlit, the app itself;
nor a fork of a process running TensorFlow's threads).
"""

import os
import signal
import socket
import subprocess
import sys
from multiprocessing.connection import Connection


def start(module, *args, pythonpath):
    """Start ``python -m module FD *args``; return (its Popen, our Connection to it; FD is its end).

    ``pythonpath``: the folders it imports from.
    """
    ours, theirs = socket.socketpair()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in pythonpath if p)}
    with theirs:
        process = subprocess.Popen([sys.executable, "-m", module, str(theirs.fileno()), *map(str, args)],
                                   pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL)
    return process, Connection(ours.detach())


def reap(process, seconds=5):
    """Wait for a child that has stopped talking, killing it if it does not end; return its exit status."""
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(seconds)
    return process.returncode


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
