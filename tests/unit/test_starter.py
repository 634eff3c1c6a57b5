"""The starter (optlib/engine/starter.py): children are forks of one process that imported TensorFlow once, and
each is what a fresh ``python -m optlib.engine.child`` would be — its own session, folder, environment, command
line and sandbox, holding no socket but its own. One starter serves the user's processes (this one, a CLI, an app
server) that import TensorFlow alike; a process that goes takes its children along; a sandboxed one is never served.

Tests that kill a starter or wait for one to end give theirs import settings of their own (``own_starter``), so
that the starter the other tests of this machine share is never touched.

The child here is this module run as one (``_report`` below): it answers with what it sees of itself.
"""

import contextlib
import os
import signal
import sys
import time

import psutil
import pytest

from optlib.engine import messages, processes, sandbox, starter, sweep
from optlib.engine.store import Store


def _child(pythonpath=tuple(sys.path), **where):
    return processes.Child(__name__, os.getpid(), pythonpath=pythonpath, **where)


def _serving():
    """The starter this process's children are forked from now."""
    return starter._starter_for(sandbox.environment())


@pytest.fixture
def own_starter(monkeypatch):
    """Import settings no other test has (a TF_ variable: children carry it, starters are keyed by it), so this
    test's children come from a starter of its own, which no other test shares; closed after the test."""
    import uuid

    setting = ("TF_OPTLIB_TEST_STARTER", uuid.uuid4().hex)
    monkeypatch.setenv(*setting)
    monkeypatch.setenv(starter.IDLE_ENV, "1")  # read by the starter as it starts: gone a second after the test
    yield
    for (key, _), started in list(starter._STARTERS.items()):
        if setting in key:
            started.close()  # a shared starter left with nobody ends after its idle time


# A starter is shared only where Landlock keeps sandboxed children from reaching abstract sockets (its scoping,
# Linux 6.12); elsewhere each process has its own, which test_with_sharing_off_... checks on every kernel.
SHARED_HERE = pytest.mark.skipif(not starter._may_share(), reason="a starter is shared only where Landlock scopes "
                                 "abstract sockets (ABI 6, Linux 6.12), and not under no_new_privs")


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
        assert one["parent"] == two["parent"] == _serving().pid != os.getpid()  # both forked by our starter
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


def test_a_child_killed_from_outside_says_so_and_a_killed_starter_takes_its_children_and_is_replaced(own_starter):
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
        assert _facts(child)["parent"] == started.pid
    finally:
        child.end(0)


def test_a_workers_start_is_timed_from_the_sweeps_request_the_starters_import_of_tensorflow_included(
        tiny_model_path, digits_npz, tmp_path, own_starter):
    starter.close_all()
    result = sweep.run(str(tiny_model_path), str(digits_npz), "float32", {"runs": "3", "warmup": "1"},
                       Store(tmp_path / "r.sqlite"))
    (started,) = starter._STARTERS.values()  # made for this sweep's first worker, which waited for it
    (row,) = result["results"]
    assert row["phases_s"]["worker_start"] >= started.ready_at - started.created_at > 0


# Another process of the user's: it asks for a child, says which starter forked it, and waits to be killed.
OTHER_PROCESS = """import sys, time
import test_starter
child = test_starter._child()
facts = test_starter._facts(child)
print(facts["parent"], facts["pid"], flush=True)
child.send("hang")  # it no longer reads its socket: only the starter's kill can end it once we are gone
time.sleep(600)
"""


def _gone(pid, seconds=30):
    """Wait until ``pid`` has ended (or is a zombie no one has reaped yet); True if it did."""
    import time

    until = time.monotonic() + seconds
    while time.monotonic() < until:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


@SHARED_HERE
def test_the_users_processes_share_one_starter_and_one_that_dies_takes_its_children_along():
    import subprocess

    mine = _child()
    other = subprocess.Popen([sys.executable, "-c", OTHER_PROCESS], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        their_parent, theirs = map(int, other.stdout.readline().split())
        ours = _facts(mine)
        assert their_parent == ours["parent"] == _serving().pid  # one import of TensorFlow for both processes
        other.kill()
        other.wait(10)
        assert _gone(theirs)  # the starter saw its process go and ended its child
        assert _facts(mine)["pid"] == ours["pid"] and psutil.pid_exists(ours["parent"])  # ours goes on
    finally:
        mine.end(0)
        other.kill()


# A process that is not sandboxed by Landlock but runs under no_new_privs, as the sandbox sets it: it connects and
# says whether the starter answered ("served": its first message) or closed on it ("refused").
NO_NEW_PRIVS = """import ctypes, socket, sys
if sys.argv[2] == "1":
    assert ctypes.CDLL("libc.so.6").prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS
sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
sock.settimeout(60)
sock.connect("\\0" + sys.argv[1])
answer = sock.recv(1 << 16)
print("refused" if answer == b"" or b"refused" in answer else "served")
"""


@SHARED_HERE
def test_no_sandboxed_process_gets_a_child_from_the_shared_starter():
    import subprocess

    serving = _serving()
    assert serving.ready.wait(120) and serving.process is None  # shared (Landlock ABI 6 or newer here)
    address = starter._address(starter._import_key(sandbox.environment()))
    for network in (False, True):  # in a network namespace of its own, and in the host's (Landlock alone)
        child = _child(network=network)
        try:
            child.send("reach")
            child.send(address)
            reached = child.receive(messages.Answer).value
            # Landlock's scope (PermissionError); without a network of its own, the name is not even there
            assert reached == "PermissionError" or (not network and reached == "ConnectionRefusedError"), reached
        finally:
            child.end(0)
    answers = [subprocess.run([sys.executable, "-c", NO_NEW_PRIVS, address, flag], capture_output=True, text=True,
                              timeout=120).stdout.strip() for flag in ("0", "1")]
    assert answers == ["served", "refused"]


def test_with_sharing_off_a_process_has_a_starter_of_its_own_that_ends_with_it(own_starter, monkeypatch):
    monkeypatch.setenv(starter.SHARED_ENV, "0")
    child = _child()
    try:
        facts = _facts(child)
        own = _serving()
        assert own.process is not None and facts["parent"] == own.pid == own.process.pid  # our own child
        assert psutil.Process(own.pid).ppid() == os.getpid() and facts["tensorflow_before_import"]
    finally:
        child.end(0)


@SHARED_HERE
def test_a_name_taken_by_a_sandboxed_child_is_never_trusted(own_starter, monkeypatch):
    """A sandboxed child in the host's network namespace cannot connect to a starter's name, but it can bind one
    that no starter holds yet: a process finding it there must not send it what its children are to become."""
    import uuid

    squatter = _child(network=True)  # forked by this test's starter; it takes the name of settings to come
    later = ("TF_OPTLIB_TEST_SQUATTED", uuid.uuid4().hex)
    address = starter._address(starter._import_key({**sandbox.environment(), later[0]: later[1]}))
    try:
        squatter.send("squat")
        squatter.send(address)
        assert squatter.receive(messages.Answer).value == "bound"
        assert starter._connect(address) == (None, False)  # refused, and no shared starter started for it
        monkeypatch.setenv(*later)
        child = _child()  # served all the same, by a starter of this process's own
        try:
            facts = _facts(child)
            assert facts["parent"] == _serving().pid == _serving().process.pid and facts["tensorflow_before_import"]
        finally:
            child.end(0)
            _serving().close()
    finally:
        squatter.end(0)


@SHARED_HERE
def test_a_shared_starter_with_no_process_to_serve_ends(own_starter, monkeypatch):
    monkeypatch.setenv(starter.IDLE_ENV, "1")  # read by the starter when it starts
    child = _child()
    parent = _facts(child)["parent"]
    child.end(0)
    own = _serving()
    assert own.pid == parent and own.process is None  # shared: not this process's child
    assert not _gone(parent, seconds=3)  # still serving us
    own.close()
    assert _gone(parent)  # a second after its last process left


def _report(conn, parent):
    if not processes.die_with_parent(parent):
        return
    tensorflow_before = "tensorflow" in sys.modules
    from optlib.engine import wire

    descriptors = sorted(int(fd) for fd in os.listdir("/proc/self/fd") if _link(fd))
    kinds = ["socket" if _link(fd).startswith("socket:") else "pipe or file" for fd in descriptors]
    held = []
    while (asked := conn.recv()) in ("facts", "reach", "squat", "hang"):
        if asked == "reach":  # the shared starter's name, from inside the sandbox
            wire.send(conn, messages.Answer(_reach(conn.recv())))
            continue
        if asked == "squat":  # take a starter's name before any starter does
            held.append(_squat(conn.recv()))
            wire.send(conn, messages.Answer("bound"))
            continue
        if asked == "hang":  # go on whatever happens to the process that asked for us: only a kill ends this
            time.sleep(600)
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


def _reach(address):
    """What connecting to the abstract socket ``address`` gives: "connected", or the error's name."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect("\0" + address)
        return "connected"
    except OSError as refused:
        return type(refused).__name__
    finally:
        sock.close()


def _squat(address):
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.bind("\0" + address)
    sock.listen(4)
    return sock


def _link(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # the listing's own descriptor, closed by now
        return ""


if __name__ == "__main__":
    from multiprocessing.connection import Connection

    _report(Connection(int(sys.argv[1])), int(sys.argv[2]))
