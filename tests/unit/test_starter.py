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
            assert facts["sandboxed"] == [True, "PermissionError"]  # no new privileges, no write beside its folder
            assert facts["descriptors"] == ["pipe or file", "pipe or file", "pipe or file", "socket"]  # 0-2, its own
            assert facts["cmdline"].split()[1:4] == ["-m", "optlib.engine.child", __name__]  # ps says what it is
            assert facts["optlib_from"].startswith(os.path.realpath(child.scratch))  # optlib through its own link
            assert facts["sqlite3_imports"]  # the standard library, though the starter never imported this module
        assert one["cwd"] != two["cwd"]
    finally:
        first.end(0)
        second.end(0)


def test_a_forked_child_has_the_import_path_and_environment_a_fresh_interpreter_gets(monkeypatch):
    forked = _child([os.path.dirname(__file__)])
    fresh = _child([os.path.dirname(__file__)], preload=False)
    try:
        one, two = _facts(forked), _facts(fresh)
        assert one["tensorflow_before_import"] and not two["tensorflow_before_import"]
        assert one["path"] == two["path"]  # its folder, its PYTHONPATH, then the interpreter's own, each once
        assert set(one["environment"]) == {*two["environment"], starter.PARENT_ENV}  # and the starter's pid
    finally:
        forked.end(0)
        fresh.end(0)


def test_children_asked_for_at_once_from_several_threads_each_get_their_own():
    import threading

    children = [None] * 6

    def ask(index):
        children[index] = _child([os.path.dirname(__file__)])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(children))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        facts = [_facts(child) for child in children]
        assert [f["pid"] for f in facts] == [child.process.pid for child in children]
        assert len({f["cwd"] for f in facts}) == len(children) and all(f["tensorflow_before_import"] for f in facts)
    finally:
        for child in children:
            child.end(0)


def test_with_preload_off_a_child_is_a_fresh_interpreter(monkeypatch):
    monkeypatch.setenv(starter.ENV_SWITCH, "0")
    child = _child()
    try:
        facts = _facts(child)
        assert facts["parent"] == os.getpid() and not facts["tensorflow_before_import"]
        assert facts["sandboxed"] == [True, "PermissionError"]
        assert facts["descriptors"] == ["pipe or file", "pipe or file", "pipe or file", "socket"]
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
    from optlib.engine import wire

    descriptors = sorted(int(fd) for fd in os.listdir("/proc/self/fd") if _link(fd))
    kinds = ["socket" if _link(fd).startswith("socket:") else "pipe or file" for fd in descriptors]
    while conn.recv() == "facts":
        import sqlite3

        import optlib

        scratch = os.path.realpath(os.environ["TMPDIR"])
        try:  # beside its scratch folder: the sandbox refuses
            open(os.path.join(os.path.dirname(scratch), f"written-by-{os.getpid()}"), "w").close()
            written = "written"
        except OSError as refused:
            written = type(refused).__name__
        no_new_privileges = "NoNewPrivs:\t1" in open("/proc/self/status").read()

        wire.send(conn, messages.Answer({
            "pid": os.getpid(), "parent": os.getppid(), "session": os.getsid(0), "cwd": os.getcwd(),
            "tmpdir": scratch, "sandboxed": [no_new_privileges, written], "descriptors": kinds,
            "tensorflow_before_import": tensorflow_before,
            "path": [p.replace(scratch, "<scratch>") for p in map(os.path.realpath, sys.path)],
            "environment": sorted(os.environ),
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
