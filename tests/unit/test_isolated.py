"""Page work in a process of its own (optlib/engine/isolated.py): its answer, progress and errors come back;
memory over the budget and a crash are messages, and the asking process never loads TensorFlow."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from optlib.engine import isolated
from optlib.errors import InputError

MB = 2 ** 20


def where_and_steps(steps, progress):
    for step in range(steps):
        progress(step / steps, f"step {step}")
    return {"pid": os.getpid(), "array": np.arange(3)}


def refuse(kind):
    if kind == "input":
        raise InputError("the model is not a model: load another on Model & data")
    if kind == "value":
        raise ValueError("a bad setting")
    if kind == "decode":
        b"\xff".decode()
    raise KeyError("deep inside")


def hold(megabytes):
    block = np.ones(megabytes * MB, dtype=np.uint8)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the parent stops it, or a minute: no watchdog then
        block[::4096] += 1
        time.sleep(0.01)
    return "not stopped"


def span(seconds):
    started = time.time()
    time.sleep(seconds)
    return started, time.time()


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def test_the_answer_and_its_progress_come_back_from_another_process():
    events = []
    answer = isolated.call(where_and_steps, 3, progress=lambda fraction, message: events.append((fraction, message)))
    assert answer["pid"] != os.getpid()
    assert answer["array"].tolist() == [0, 1, 2]
    assert events == [(0.0, "step 0"), (1 / 3, "step 1"), (2 / 3, "step 2")]


def test_errors_come_back_as_they_were_raised():
    with pytest.raises(InputError, match="the model is not a model: load another on Model & data"):
        isolated.call(refuse, "input")
    with pytest.raises(ValueError, match="a bad setting"):
        isolated.call(refuse, "value")
    with pytest.raises(KeyError):  # a built-in type keeps its type
        isolated.call(refuse, "key")
    with pytest.raises(RuntimeError, match="^UnicodeDecodeError: 'utf-8' codec can't decode"):
        isolated.call(refuse, "decode")  # one that is not made from a message alone


def test_work_over_the_memory_budget_is_stopped_with_a_message_saying_so():
    with pytest.raises(InputError) as refused:
        isolated.call(hold, 400, what="The layer comparison", memory=200 * MB)
    message = str(refused.value)
    assert message.startswith("The layer comparison ran out of memory: it used ")
    assert "of the 209.72 MB limit per worker process, so it was stopped" in message, message
    assert "OPTLIB_WORKER_MEMORY_MB" in message


def test_a_crash_is_a_message_and_the_asking_process_goes_on():
    with pytest.raises(InputError, match="The per-tensor validation stopped: its process was killed by SIGKILL"):
        isolated.call(die, what="The per-tensor validation")
    assert isolated.call(where_and_steps, 0, progress=lambda *event: None)["pid"] != os.getpid()


def test_the_asking_process_never_loads_tensorflow(tmp_path):
    script = ("import sys\n"
              "from optlib.engine import isolated\n"
              "import test_isolated\n"
              "print(isolated.call(test_isolated.tensorflow_version))\n"
              "print('tensorflow' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    version, loaded = done.stdout.split()[-2:]
    assert version.startswith("2.") and loaded == "False"


def tensorflow_version():
    from optlib._keras import tf

    return tf().__version__


def test_page_work_takes_turns_machine_wide(tmp_path, monkeypatch):
    import threading

    monkeypatch.setenv("OPTLIB_HOME", str(tmp_path))
    monkeypatch.setenv("OPTLIB_MAX_PAGE_WORK", "1")
    spans = []
    threads = [threading.Thread(target=lambda: spans.append(isolated.call(span, 1.0))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    (_, first_end), (second_start, _) = sorted(spans)
    assert second_start >= first_end  # one at a time: the second waited for the first


def test_a_function_the_child_cannot_find_is_an_error_not_a_silent_exit(monkeypatch):
    def parent_only():
        """Set on this module here, at run time: the child's fresh import of the module has no such name."""

    parent_only.__qualname__ = "parent_only"
    monkeypatch.setattr(sys.modules[__name__], "parent_only", parent_only, raising=False)
    with pytest.raises(AttributeError, match="Can't get attribute 'parent_only'"):  # not "exited with status 1"
        isolated.call(parent_only)


def test_work_waiting_for_its_turn_is_told_its_place(tmp_path, monkeypatch):
    import threading

    from optlib.engine import admission

    monkeypatch.setenv("OPTLIB_HOME", str(tmp_path))
    monkeypatch.setenv("OPTLIB_MAX_PAGE_WORK", "1")
    monkeypatch.setattr(admission, "POLL_S", 0.05)
    first = threading.Thread(target=isolated.call, args=(span, 3.0))
    first.start()
    deadline = time.monotonic() + 60
    while not list(admission.queue_dir("page-work").glob("*.ticket")):  # the first holds the one turn
        assert time.monotonic() < deadline
        time.sleep(0.02)
    places = []
    isolated.call(span, 0.0, waiting=lambda place, limit: places.append((place, limit)))
    first.join(60)
    assert places == [(1, 1)]
    assert admission.describe(1, 1, "page-work").startswith(
        "waiting in line, number 1 (it is next): 1 page computation runs at a time on this machine, each in a "
        "process of its own (OPTLIB_MAX_PAGE_WORK)")


@pytest.mark.timeout(300)  # a hang guard: a nap that was not stopped would sleep out its 600 s
def test_page_work_past_its_deadline_is_stopped_and_says_so():
    # Stopped, not slept out: time.sleep returns None, so only a stopped child raises this.
    with pytest.raises(InputError, match=r"^The nap was stopped after 1 s, the deadline for a page's work"):
        isolated.call(time.sleep, 600, what="The nap", deadline_s=1)


def test_a_page_work_child_cannot_read_the_store_or_write_outside_its_scratch(tmp_path, monkeypatch):
    """The sandbox of every engine child: the data folder (the store) and other folders are out of reach."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "results.sqlite").write_text("the store")
    monkeypatch.setenv("OPTLIB_HOME", str(home))
    outside = tmp_path / "outside.txt"
    said = isolated.call(_try_to_escape, str(home / "results.sqlite"), str(outside), what="Escaping")
    assert said == {"read store": "PermissionError", "write outside": "PermissionError",
                    "connect": "PermissionError", "udp": "OSError", "write scratch": "ok"}
    assert not outside.exists()


def _try_to_escape(store, outside):
    import socket
    import tempfile

    said = {}
    for name, attempt in (("read store", lambda: open(store).read()),
                          ("write outside", lambda: open(outside, "w").write("x")),
                          ("connect", lambda: socket.create_connection(("127.0.0.1", 9), timeout=2)),
                          ("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 9))),
                          ("write scratch", lambda: open(tempfile.mktemp(), "w").write("x"))):
        try:
            attempt()
            said[name] = "ok"
        except OSError as problem:
            said[name] = type(problem).__name__
    return said


def test_scratch_folders_of_a_process_that_died_are_removed_at_the_next_start(tmp_path, monkeypatch):
    from optlib.engine import processes

    monkeypatch.setattr(processes.tempfile, "gettempdir", lambda: str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan, ours = tmp_path / f"optlib-child-{dead.pid}-x", tmp_path / f"optlib-child-{os.getpid()}-y"
    (orphan / "deep").mkdir(parents=True)
    ours.mkdir()
    monkeypatch.setattr(processes, "_LOOKED", set())
    processes.remove_orphans()
    assert not orphan.exists() and ours.exists()


def _environment_variable(name):
    return os.environ.get(name)


def test_a_child_gets_the_settings_but_not_the_servers_secrets(monkeypatch):
    monkeypatch.setenv("RAY_AUTH_TOKEN", "s3cr3t")
    monkeypatch.setenv("OPTLIB_WORKER_MEMORY_MB", "3000")
    assert isolated.call(_environment_variable, "RAY_AUTH_TOKEN", what="Reading") is None
    assert isolated.call(_environment_variable, "OPTLIB_WORKER_MEMORY_MB", what="Reading") == "3000"


def test_only_a_child_working_on_a_built_in_model_may_write_the_zoo_cache(tiny_model_path):
    from optlib import paths
    from optlib.engine import sandbox
    from optlib.inputs import data_refs, models

    zoo = str(paths.zoo_dir())
    _, writes = sandbox.reach(models.resolve(str(tiny_model_path)), data_refs.resolve("digits"))
    assert zoo not in writes and str(tiny_model_path) not in writes
    _, writes = sandbox.reach(models.resolve("digits_cnn"), data_refs.resolve("digits"))
    assert zoo in writes
