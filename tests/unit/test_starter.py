"""The starter (optlib/engine/starter.py): children are forks of one process that imported TensorFlow once, and
each is what a fresh ``python -m optlib.engine.child`` would be — its own session, folder, environment, command
line and sandbox, holding no socket but its own.

The child here is this module run as one (``_report`` below): it answers with what it sees of itself.
"""

import contextlib
import os
import signal
import sys

import psutil
import pytest

from optlib.engine import messages, processes, starter, sweep
from optlib.engine.store import Store


def _child(pythonpath=tuple(sys.path), **where):
    return processes.Child(__name__, os.getpid(), pythonpath=pythonpath, **where)


def _facts(child):
    child.send("facts")
    return child.receive(messages.Answer).value


def test_children_are_forks_of_one_starter_with_tensorflow_imported_and_their_own_everything():
    # The first names every folder of our sys.path (as page work does), the second only this test's folder (as a
    # worker names the repository): each imports from its own path, the interpreter's own folders included.
    first, second = _child(), _child([os.path.dirname(__file__)])
    try:
        one, two = _facts(first), _facts(second)
        assert one["tensorflow_before_import"] and two["tensorflow_before_import"]  # imported once, in the starter
        assert one["parent"] == two["parent"] != os.getpid()  # both forked by the same starter
        assert psutil.Process(one["parent"]).ppid() == os.getpid()  # which is ours
        for facts, child in ((one, first), (two, second)):
            assert facts["pid"] == child.process.pid
            assert facts["session"] == facts["pid"]  # a session of its own, as Popen(start_new_session=True)
            assert facts["cwd"] == os.path.realpath(child.scratch) == facts["tmpdir"]  # its scratch folder
            assert facts["sandboxed"]  # the policy its parent gave it, applied by itself
            assert facts["sockets"] == 1  # its own: never the starter's, which could start unsandboxed children
            assert facts["cmdline"].split()[1:4] == ["-m", "optlib.engine.child", __name__]  # ps says what it is
            assert facts["optlib_from"].startswith(os.path.realpath(child.scratch))  # optlib through its own link
            assert facts["sqlite3_imports"]  # the standard library, though the starter never imported this module
        assert one["cwd"] != two["cwd"]
    finally:
        first.end(0)
        second.end(0)


def test_with_preload_off_a_child_is_a_fresh_interpreter(monkeypatch):
    monkeypatch.setenv(starter.ENV_SWITCH, "0")
    child = _child()
    try:
        facts = _facts(child)
        assert facts["parent"] == os.getpid() and not facts["tensorflow_before_import"]
        assert facts["sandboxed"] and facts["sockets"] == 1
    finally:
        child.end(0)


def test_a_child_killed_from_outside_says_so_and_a_killed_starter_takes_its_children_and_is_replaced():
    child = _child()
    _facts(child)
    os.kill(child.process.pid, signal.SIGKILL)
    with pytest.raises(processes.Ended) as ended:
        child.receive(messages.Answer)
    assert ended.value.why == processes.Died(-signal.SIGKILL)

    orphan = _child()
    parent = _facts(orphan)["parent"]
    os.kill(parent, signal.SIGKILL)  # the starter dies: its children with it
    with pytest.raises(processes.Ended):
        orphan.receive(messages.Answer, timeout=30)
    with contextlib.suppress(psutil.NoSuchProcess):  # killed, then reaped by init
        psutil.Process(orphan.process.pid).wait(30)
    assert not psutil.pid_exists(orphan.process.pid)

    fresh = _child()  # a new starter serves the next child
    try:
        facts = _facts(fresh)
        assert facts["parent"] != parent and facts["tensorflow_before_import"]
    finally:
        fresh.end(0)


def test_prestart_starts_the_starter_the_next_child_is_forked_from():
    starter.close_all()
    processes.prestart()  # as the app does when it starts
    (started,) = starter._STARTERS.values()
    assert started.ready.wait(120) and started.alive  # TensorFlow imported before any child was asked for
    child = _child()
    try:
        assert _facts(child)["parent"] == started.process.pid
    finally:
        child.end(0)


def test_a_workers_start_is_timed_from_the_sweeps_request_the_starters_import_of_tensorflow_included(
        tiny_model_path, digits_npz, tmp_path):
    starter.close_all()
    result = sweep.run(str(tiny_model_path), str(digits_npz), "float32", {"runs": "3", "warmup": "1"},
                       Store(tmp_path / "r.sqlite"))
    (started,) = starter._STARTERS.values()  # made for this sweep's first worker, which waited for it
    (row,) = result["results"]
    assert row["phases_s"]["worker_start"] >= started.ready_at - started.created_at > 0


def _report(conn, parent):
    if not processes.die_with_parent(parent):
        return
    tensorflow_before = "tensorflow" in sys.modules
    from optlib.engine import sandbox, wire

    sockets = sum(1 for fd in os.listdir("/proc/self/fd") if _link(fd).startswith("socket:"))
    while conn.recv() == "facts":
        import sqlite3

        import optlib

        wire.send(conn, messages.Answer({
            "pid": os.getpid(), "parent": os.getppid(), "session": os.getsid(0), "cwd": os.getcwd(),
            "tmpdir": os.path.realpath(os.environ["TMPDIR"]), "sandboxed": bool(os.environ.get(sandbox.ENV)),
            "tensorflow_before_import": tensorflow_before, "sockets": sockets,
            "cmdline": open("/proc/self/cmdline").read().replace("\0", " ").strip(),
            "optlib_from": os.path.dirname(os.path.dirname(optlib.__file__)), "sqlite3_imports": bool(sqlite3.connect)}))


def _link(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # the listing's own descriptor, closed by now
        return ""


if __name__ == "__main__":
    from multiprocessing.connection import Connection

    _report(Connection(int(sys.argv[1])), int(sys.argv[2]))
