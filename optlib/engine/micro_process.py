"""TensorFlow Lite for Microcontrollers in a process of its own.

TFLM's C++ can abort the process it runs in (it did on MobileNetV2's int8 file). Run here, an abort
costs the microcontroller check of one model, not the job that made the model: the entry says TFLM
stopped on it, and the next check starts a new helper. One helper per asking process, started at its
first check; it ends when that process does (its end of the pipe closes).

    entry = micro_process.run(tflite_bytes, x, y, reference)  # what optlib.engine.targets.micro returns
"""

import os
import signal
import socket
import subprocess
import tempfile
import sys
from multiprocessing.connection import Connection

TIMEOUT_S = 300  # loading, one invoke and the accuracy subset (targets.MICRO_BUDGET_S) of a model under the cap

_helper = None


def run(tflite, x=None, y=None, reference=None, timeout_s=TIMEOUT_S, work=None):
    """:func:`optlib.engine.targets.micro` on ``tflite`` in the helper process; never raises for TFLM's sake.

    ``work`` replaces the function the helper runs (tests make it crash).
    """
    global _helper
    if _helper is None or not _helper.alive():
        _helper = _Helper()
    entry = _helper.ask((work, bytes(tflite), x, y, reference), timeout_s)
    if entry is None:  # it stopped or hung: say so in the check's own terms
        from optlib.engine import targets

        entry = targets.micro_entry(tflite, _helper.why)
        _helper = None
    return entry


class _Helper:
    def __init__(self):
        # A new interpreter (not a fork of one running TensorFlow's threads), as the sweep's workers are started.
        # It imports what this process can (its sys.path), wherever this one runs (a sweep's worker, a Ray task).
        ours, theirs = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.stderr = tempfile.TemporaryFile()  # TFLM's last words when it aborts
        with theirs:
            self.process = subprocess.Popen([sys.executable, "-m", "optlib.engine.micro_process", str(theirs.fileno())],
                                            pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL,
                                            stderr=self.stderr)
        self.conn = Connection(ours.detach())
        self.why = None

    def alive(self):
        return self.process.poll() is None

    def ask(self, request, timeout_s):
        """The helper's answer, or None with ``why`` set when it died or took longer than ``timeout_s``."""
        try:
            self.conn.send(request)
            if self.conn.poll(timeout_s):
                return self.conn.recv()
            self.process.kill()
            self.why = f"not finished after {timeout_s} s on TensorFlow Lite for Microcontrollers, so it was stopped"
        except (EOFError, OSError):
            self._wait()
            self.why = (f"TensorFlow Lite for Microcontrollers stopped its process on this model ({_how(self.process)})"
                        + self._last_words())
        self._wait()
        self.conn.close()
        self.stderr.close()
        return None

    def _last_words(self):
        self.stderr.seek(0)
        lines = [line.strip() for line in self.stderr.read().decode("utf-8", "replace").splitlines() if line.strip()]
        return f": {lines[-1][:300]}" if lines else ""

    def _wait(self):
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def _how(process):
    code = process.returncode
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _serve(conn):
    """The helper's loop: run each request, send back its entry, until the asking process goes away."""
    from optlib.engine import targets

    while True:
        try:
            work, tflite, x, y, reference = conn.recv()
        except (EOFError, OSError):
            return
        conn.send((work or targets.micro)(tflite, x, y, reference))


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])))
