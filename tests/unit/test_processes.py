"""One child-process primitive (optlib/engine/processes.py, ``Child``): a tiny child under a memory budget and a
deadline is stopped when it passes either, a paused child's clock stops, and why it ended is one typed value.

The tiny child is this module run as a child (``_serve`` below): for each request it holds some megabytes for
some seconds, then answers.
"""

import os
import sys
import time

import numpy as np
import psutil
import pytest

from optlib.engine import messages, processes, wire

MB = 2 ** 20


def _tiny_child(memory=None):
    return processes.Child(__name__, os.getpid(), pythonpath=sys.path, memory=memory)


def _ask(child, megabytes, seconds, timeout=None):
    child.send((megabytes, seconds))
    return child.receive(messages.Answer, timeout=timeout)


def test_a_child_answers_and_then_ends_with_its_exit_status():
    child = _tiny_child()
    try:
        assert _ask(child, 1, 0) == messages.Answer(MB)
        assert _ask(child, 0, 2, timeout=0.5) is None  # nothing yet: it is still at it
        child.send("exit")  # read once it has answered: it exits with status 3
        assert child.receive(messages.Answer) == messages.Answer(0)
        with pytest.raises(processes.Ended) as ended:
            child.receive(messages.Answer)
        assert ended.value.why == processes.Died(3)
        assert ended.value.why.how() == "exited with status 3 before it finished"
        assert not os.path.exists(child.scratch)  # its scratch folder goes with it
    finally:
        child.end(0)


def test_a_child_over_its_memory_budget_is_stopped_and_says_by_how_much():
    child = _tiny_child(memory=300 * MB)
    try:
        with pytest.raises(processes.Ended) as ended:
            _ask(child, 600, 60)
        why = ended.value.why
        assert isinstance(why, processes.OutOfMemory) and why.limit == 300 * MB and 300 * MB < why.used < 1000 * MB
        assert child.process.returncode == -9  # killed, not left to finish
    finally:
        child.end(0)


@pytest.mark.timeout(300)  # a hang guard: a child that was not stopped would answer only after its 600 s
def test_a_child_past_its_deadline_is_stopped():
    child = _tiny_child()
    try:
        child.deadline(1)
        with pytest.raises(processes.Ended) as ended:
            _ask(child, 0, 600)
        assert ended.value.why == processes.OutOfTime(1)
        assert child.process.returncode == -9  # killed at its deadline, not left to finish its nap
    finally:
        child.end(0)


def test_a_paused_childs_clock_stops():
    """Paused for longer than its deadline, a child that runs for less than its deadline still answers."""
    child = _tiny_child()
    try:
        child.deadline(3)
        child.send((0, 1))
        child.pause()
        time.sleep(4)  # over the deadline on the wall clock, not counted
        assert child.stopped is None
        assert psutil.Process(child.process.pid).status() == psutil.STATUS_STOPPED
        child.resume()
        assert child.receive(messages.Answer) == messages.Answer(0)
    finally:
        child.end(0)


def test_pausing_a_child_that_has_just_died_is_nothing_and_its_end_is_reported(monkeypatch):
    """A worker can die (killed from outside, out of memory) between the check that it lives and the pause that a
    latency turn asks for: the pause is then nothing, and its end comes as Ended, a failed row, not an error that
    takes the sweep down (seen once in a whole run: ProcessLookupError from the pause)."""
    import signal

    child = _tiny_child()
    try:
        os.kill(child.process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while psutil.pid_exists(child.process.pid) and time.monotonic() < deadline:  # gone, and reaped
            time.sleep(0.05)
        monkeypatch.setattr(child, "alive", lambda: True)  # as it still looks in that moment
        child.pause()
        assert child.paused_at is None
        child.resume()
        monkeypatch.undo()
        with pytest.raises(processes.Ended):  # what the executor reads next: the worker's job fails, nothing else
            child.receive(messages.Answer)
    finally:
        child.end(0)


def test_a_child_that_says_what_no_such_child_says_is_stopped():
    child = _tiny_child()
    try:
        child.send("nonsense")
        with pytest.raises(processes.Ended) as ended:
            child.receive(messages.Answer)
        assert ended.value.why == processes.Died(-9, garbled=True)
        assert not child.alive()
    finally:
        child.end(0)


def _serve(conn, parent):
    """The tiny child: hold ``megabytes`` for ``seconds``, then answer how many bytes it held."""
    if not processes.die_with_parent(parent):
        return
    while True:
        request = conn.recv()
        if request == "exit":
            sys.exit(3)
        if request == "nonsense":
            wire.send(conn, messages.Ready())  # a worker's message, on a pipe that expects answers
            continue
        megabytes, seconds = request
        held = np.ones(megabytes * MB, np.uint8)  # ones, not zeros: resident
        time.sleep(seconds)
        wire.send(conn, messages.Answer(held.size))


if __name__ == "__main__":
    from multiprocessing.connection import Connection

    _serve(Connection(int(sys.argv[1])), int(sys.argv[2]))
