"""TensorFlow Lite for Microcontrollers in a process of its own.

TFLM's C++ can abort the process it runs in (it did on MobileNetV2's int8 file). Run here, an abort
costs the microcontroller check of one model, not the job that made the model: the entry says TFLM
stopped on it, and the next check starts a new helper. One helper per asking process, started at its
first check; it dies with that process (Linux's parent-death signal, and its pipe closing).

    entry = micro_process.run(targets.micro, tflite_bytes, x, y, reference)  # as targets._micro_isolated does
"""

import os
import sys
import threading
from multiprocessing.connection import Connection

from optlib.engine import messages, wire

TIMEOUT_S = 300  # loading, one invoke and the accuracy subset (targets.MICRO_BUDGET_S) of a model under the cap

_helper = None
_lock = threading.Lock()  # one request at a time on the helper's pipe


class CheckFailed(RuntimeError):
    """The check raised a Python error in the helper (not TFLM stopping): the check failed, not the model."""


class Stopped(RuntimeError):
    """The helper process died (TFLM aborted it) or took too long and was stopped; the message says which."""


def run(work, *args, timeout_s=TIMEOUT_S):
    """Return ``work(*args)`` run in the helper process (``work`` and its arguments are pickled to it).

    Raises:
        Stopped: the helper died on it (e.g. TFLM aborted: "... (it was killed by SIGABRT)") or hung past
            ``timeout_s``; the next call starts a new helper.
        CheckFailed: ``work`` raised (its type and message), as it would have in this process.
    """
    global _helper
    from optlib.engine import processes

    with _lock:
        if _helper is None or not _helper.alive():
            # It imports what this process can (its sys.path), wherever this one runs (a sweep's worker, a Ray task).
            # A fresh interpreter: it needs no TensorFlow, so no starter (optlib.engine.starter) is worth one.
            _helper = processes.Child("optlib.engine.micro_process", os.getpid(), pythonpath=sys.path, preload=False)
        try:
            answer = _ask(_helper, (work, args), timeout_s)
        except processes.Ended as ended:
            _helper = None
            raise Stopped(_stopped(ended.why)) from None
    if isinstance(answer, messages.Failure):
        raise CheckFailed(answer.text)
    return answer.value


def _ask(helper, request, timeout_s):
    """The helper's answer to ``request`` (a :class:`processes.Child`; ``Ended`` if it died or took too long)."""
    from optlib.engine import processes

    helper.deadline(timeout_s)
    try:
        helper.send(request)
    except OSError:  # it died before the request reached it
        raise processes.Ended(helper.end()) from None
    answer = helper.receive(messages.Answer, messages.Failure)
    helper.deadline(None)
    return answer


def _stopped(why):
    """Why the helper stopped, in words (``why``, from :class:`processes.Ended`: it has no memory budget)."""
    from optlib.engine import processes

    if isinstance(why, processes.OutOfTime):
        return f"not finished after {why.seconds:g} s on TensorFlow Lite for Microcontrollers, so it was stopped"
    if why.garbled:
        return "its helper process answered with something no helper sends, so it was stopped"
    return ("TensorFlow Lite for Microcontrollers stopped its process on this model (it "
            f"{why.how().removesuffix(' before it finished')})")


def _serve(conn, parent):
    """The helper's loop: run each request, send back ("ok", value) or ("error", text), until the parent goes."""
    from optlib.engine.processes import die_with_parent
    from optlib.errors import first_line

    if not die_with_parent(parent):  # a worker stopped by its watchdog or its sweep takes its helper with it
        return  # (it died before that was in place)
    while True:
        try:
            work, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            answer = messages.Answer(work(*args))
        except Exception as problem:  # noqa: BLE001 — reported to the asking process as the check's failure
            answer = messages.Failure(type(problem).__name__, f"{type(problem).__name__}: {first_line(problem)}")
        try:
            wire.send(conn, answer)
        except (TypeError, ValueError) as problem:  # an answer that is not plain data
            wire.send(conn, messages.Failure(type(problem).__name__, f"{type(problem).__name__}: {first_line(problem)}"))


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])), int(sys.argv[2]))
